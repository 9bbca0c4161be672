"""Dialogs (RFC 3261 §12, §13.2.2.4, §14), both roles, from literal messages on 127.0.0.1.

The call: Alice (UAC, 127.0.0.1:5070) -> proxy P1 (:5081) -> proxy P2 (:5082) -> Bob (UAS,
127.0.0.1:5090). Both proxies record-route, so Bob's INVITE carries P2 above P1.
"""

from __future__ import annotations

import dataclasses

import pytest

from sip.dialog import (
    Dialog,
    DialogError,
    DialogId,
    DialogState,
    build_cancel,
    dialog_id_for_request,
    dialog_id_for_response,
)
from sip.message import Request, Response
from sip.parser import parse_message
from sip.validate import validate_request, validate_response

P1 = "<sip:127.0.0.1:5081;lr>"
P2 = "<sip:127.0.0.1:5082;lr>"
ALICE_CONTACT = "<sip:alice@127.0.0.1:5070>"
BOB_CONTACT = "<sip:bob@127.0.0.1:5090;transport=udp>"
VIA = "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKnew1"


def _request(text: str) -> Request:
    message = parse_message(text.replace("\n", "\r\n").encode())
    assert isinstance(message, Request)
    return message


def _response(text: str) -> Response:
    message = parse_message(text.replace("\n", "\r\n").encode())
    assert isinstance(message, Response)
    return message


def _lines(name: str, values: list[str]) -> str:
    return "".join(f"{name}: {v}\n" for v in values)


def invite(
    *,
    record_route: tuple[str, ...] = (P2, P1),
    contact: str | None = ALICE_CONTACT,
    from_tag: str | None = "a1",
    uri: str = "sip:bob@127.0.0.1:5090",
    cseq: int = 314,
) -> Request:
    """The INVITE as Bob receives it (Alice's is the same without the proxies' fields)."""
    tag = f";tag={from_tag}" if from_tag else ""
    return _request(
        f"INVITE {uri} SIP/2.0\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5082;branch=z9hG4bKp2\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKa1\n"
        "Max-Forwards: 68\n"
        + _lines("Record-Route", list(record_route))
        + f'From: "Alice" <sip:alice@127.0.0.1>{tag}\n'
        "To: <sip:bob@127.0.0.1>\n"
        "Call-ID: call-1@127.0.0.1\n"
        f"CSeq: {cseq} INVITE\n" + _lines("Contact", [contact] if contact else []) + "\n"
    )


def answer(
    status: int,
    *,
    to_tag: str | None = "b1",
    record_route: tuple[str, ...] = (P2, P1),
    contact: str | None = BOB_CONTACT,
    cseq: int = 314,
    method: str = "INVITE",
) -> Response:
    """Bob's response, Record-Route mirrored as §12.1.1 requires."""
    tag = f";tag={to_tag}" if to_tag else ""
    return _response(
        f"SIP/2.0 {status} Whatever\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKa1\n"
        + _lines("Record-Route", list(record_route))
        + 'From: "Alice" <sip:alice@127.0.0.1>;tag=a1\n'
        f"To: <sip:bob@127.0.0.1>{tag}\n"
        "Call-ID: call-1@127.0.0.1\n"
        f"CSeq: {cseq} {method}\n" + _lines("Contact", [contact] if contact else []) + "\n"
    )


def in_dialog(
    method: str, cseq: int, *, contact: str | None = None, from_tag: str = "a1"
) -> Request:
    """A request from Alice to Bob within the dialog, as Bob receives it."""
    return _request(
        f"{method} sip:bob@127.0.0.1:5090 SIP/2.0\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKx\n"
        "Max-Forwards: 70\n"
        f"From: <sip:alice@127.0.0.1>;tag={from_tag}\n"
        "To: <sip:bob@127.0.0.1>;tag=b1\n"
        "Call-ID: call-1@127.0.0.1\n"
        f"CSeq: {cseq} {method}\n" + _lines("Contact", [contact] if contact else []) + "\n"
    )


def uas(status: int = 200, **kwargs: bool) -> Dialog:
    return Dialog.from_uas(
        invite(), answer(status), local_contact=BOB_CONTACT, secure=kwargs.get("secure", False)
    )


def uac(status: int = 200) -> Dialog:
    return Dialog.from_uac(invite(), answer(status))


def receive(dialog: Dialog, request: Request) -> int | None:
    return dialog.receive_request(request, validate_request(request))


# --- creation ------------------------------------------------------------------------------


def test_uas_dialog_takes_the_request_state_and_record_route_in_order() -> None:
    d = uas()
    assert d.id == DialogId("call-1@127.0.0.1", "b1", "a1")
    assert d.state is DialogState.CONFIRMED
    assert d.route_set == [P2, P1]  # §12.1.1: as in the request
    assert d.remote_target == "sip:alice@127.0.0.1:5070"
    assert (d.local_seq, d.remote_seq) == (None, 314)
    assert d.local_uri == "<sip:bob@127.0.0.1>"
    assert d.remote_uri == '"Alice" <sip:alice@127.0.0.1>'
    assert d.local_contact == BOB_CONTACT
    assert not d.secure


def test_uac_dialog_takes_the_response_record_route_reversed() -> None:
    d = uac()
    assert d.id == DialogId("call-1@127.0.0.1", "a1", "b1")
    assert d.state is DialogState.CONFIRMED
    assert d.route_set == [P1, P2]  # §12.1.2: reverse order
    assert d.remote_target == "sip:bob@127.0.0.1:5090;transport=udp"
    assert (d.local_seq, d.remote_seq) == (314, None)
    assert d.local_uri == '"Alice" <sip:alice@127.0.0.1>'
    assert d.remote_uri == "<sip:bob@127.0.0.1>"
    assert d.local_contact == ALICE_CONTACT


def test_dialog_without_record_route_has_an_empty_route_set() -> None:
    d = Dialog.from_uac(invite(record_route=()), answer(200, record_route=()))
    assert d.route_set == []


@pytest.mark.parametrize(
    ("uri", "over_tls", "secure"),
    [
        ("sips:bob@127.0.0.1:5091", True, True),
        ("sip:bob@127.0.0.1:5091;transport=tls", True, False),
        ("sips:bob@127.0.0.1:5091", False, False),
    ],
)
def test_uas_dialog_is_secure_only_for_a_sips_uri_over_tls(
    uri: str, over_tls: bool, secure: bool
) -> None:
    d = Dialog.from_uas(invite(uri=uri), answer(200), local_contact="x", secure=over_tls)
    assert d.secure is secure


def test_uac_dialog_is_secure_for_a_sips_request_uri() -> None:
    assert Dialog.from_uac(invite(uri="sips:bob@127.0.0.1"), answer(200)).secure
    assert not uac().secure


def test_uas_dialog_accepts_an_rfc2543_peer_without_from_tag() -> None:
    d = Dialog.from_uas(invite(from_tag=None), answer(200), local_contact="x", secure=False)
    assert d.id.remote_tag is None
    request = in_dialog("BYE", 315).headers
    request.set("From", "<sip:alice@127.0.0.1>")
    bye = Request("BYE", "sip:bob@127.0.0.1:5090", request)
    assert dialog_id_for_request(validate_request(bye)) == d.id


def test_uas_early_dialog_is_confirmed_by_the_2xx_it_sends() -> None:
    d = uas(180)
    assert d.state is DialogState.EARLY
    d.response_sent(answer(200))
    assert d.is_confirmed


def test_uas_early_dialog_ends_with_a_final_error() -> None:
    d = uas(183)
    d.response_sent(answer(486))
    assert d.state is DialogState.TERMINATED


# --- early -> confirmed (UAC) --------------------------------------------------------------


def test_uac_early_dialog_is_confirmed_and_route_set_recomputed_from_the_2xx() -> None:
    # RFC 2543 proxies need not mirror Record-Route in 1xx: §13.2.2.4 recomputes on the 2xx.
    d = Dialog.from_uac(invite(), answer(180, record_route=(P1,), contact="<sip:bob@127.0.0.1:1>"))
    assert d.state is DialogState.EARLY
    assert d.route_set == [P1]
    d.local_seq = 320  # e.g. an UPDATE/PRACK in the early dialog
    d.update_from_response(answer(200))
    assert d.is_confirmed
    assert d.route_set == [P1, P2]
    assert d.remote_target == "sip:bob@127.0.0.1:5090;transport=udp"  # §12.2.1.2
    assert d.local_seq == 320  # §13.2.2.4: only the route set is recomputed


def test_uac_early_dialog_without_contact_targets_the_request_uri_until_one_comes() -> None:
    d = Dialog.from_uac(invite(), answer(180, contact=None))
    assert d.remote_target == "sip:bob@127.0.0.1:5090"
    d.update_from_response(answer(183, contact="<sip:bob@127.0.0.1:5099>"))
    assert d.remote_target == "sip:bob@127.0.0.1:5099"
    assert d.state is DialogState.EARLY


def test_uac_early_dialog_ends_with_a_non_2xx_final() -> None:
    d = uac(180)
    d.update_from_response(answer(486))
    assert d.state is DialogState.TERMINATED


def test_confirmed_route_set_does_not_change_on_re_invite_2xx_but_target_does() -> None:
    d = uac()
    d.update_from_response(answer(200, cseq=315, record_route=(), contact="<sip:bob@127.0.0.1:7>"))
    assert d.route_set == [P1, P2]
    assert d.remote_target == "sip:bob@127.0.0.1:7"


def test_2xx_to_a_non_refresh_request_keeps_the_target() -> None:
    d = uac()
    d.update_from_response(answer(200, cseq=315, method="INFO", contact="<sip:bob@127.0.0.1:7>"))
    assert d.remote_target == "sip:bob@127.0.0.1:5090;transport=udp"
    assert d.is_confirmed


@pytest.mark.parametrize(("status", "method"), [(481, "INFO"), (408, "INVITE"), (200, "BYE")])
def test_uac_dialog_ends_on_481_408_or_bye_2xx(status: int, method: str) -> None:
    d = uac()
    d.update_from_response(answer(status, cseq=315, method=method))
    assert d.state is DialogState.TERMINATED


def test_response_of_another_dialog_is_refused() -> None:
    d = uac()
    with pytest.raises(DialogError, match="another dialog"):
        d.update_from_response(answer(200, to_tag="forked"))


# --- building requests (UAC side of §12.2.1.1) ---------------------------------------------


def test_loose_routing_keeps_the_remote_target_and_sends_every_route() -> None:
    req = uac().build_request("INFO", via=VIA)
    assert req.uri == "sip:bob@127.0.0.1:5090;transport=udp"
    assert req.headers.get_all("Route") == [P1, P2]


def test_empty_route_set_sends_no_route() -> None:
    d = Dialog.from_uac(invite(record_route=()), answer(200, record_route=()))
    req = d.build_request("BYE", via=VIA)
    assert req.uri == "sip:bob@127.0.0.1:5090;transport=udp"
    assert "Route" not in req.headers


def test_strict_router_takes_the_request_uri_and_the_target_goes_last() -> None:
    strict = "<sip:127.0.0.1:5081;maddr=127.0.0.1;method=INVITE?X-A=1>"
    d = Dialog.from_uac(invite(), answer(200, record_route=(P2, strict)))
    assert d.route_set == [strict, P2]
    req = d.build_request("BYE", via=VIA)
    # §12.2.1.1 with §19.1.1 Table 1: method and headers are not allowed in a Request-URI.
    assert req.uri == "sip:127.0.0.1:5081;maddr=127.0.0.1"
    assert req.headers.get_all("Route") == [P2, "<sip:bob@127.0.0.1:5090;transport=udp>"]


def test_request_carries_the_dialog_identity_and_grows_cseq() -> None:
    d = uac()
    first = d.build_request("INFO", via=VIA, body=b"x", content_type="text/plain")
    second = d.build_request("BYE", via=VIA, max_forwards=10)
    info = validate_request(parse_message(first.to_bytes()))  # type: ignore[arg-type]
    assert (info.cseq, info.cseq_method) == (315, "INFO")
    assert first.headers.get("To") == "<sip:bob@127.0.0.1>;tag=b1"
    assert first.headers.get("From") == '"Alice" <sip:alice@127.0.0.1>;tag=a1'
    assert first.headers.get("Call-ID") == "call-1@127.0.0.1"
    assert first.headers.get("Via") == VIA
    assert first.headers.get("Content-Type") == "text/plain"
    assert first.body == b"x"
    assert second.headers.get("CSeq") == "316 BYE"
    assert second.headers.get("Max-Forwards") == "10"
    assert d.local_seq == 316


def test_contact_only_in_target_refresh_requests() -> None:
    d = uac()
    assert d.build_request("INVITE", via=VIA).headers.get("Contact") == ALICE_CONTACT
    assert d.build_request("UPDATE", via=VIA).headers.get("Contact") == ALICE_CONTACT
    assert d.build_request("INFO", via=VIA).headers.get("Contact") is None
    assert d.build_request("BYE", via=VIA).headers.get("Contact") is None


def test_bare_local_contact_uri_is_written_as_name_addr() -> None:
    d = Dialog.from_uas(invite(), answer(200), local_contact="sip:bob@127.0.0.1", secure=False)
    assert d.build_request("INVITE", via=VIA).headers.get("Contact") == "<sip:bob@127.0.0.1>"


def test_uas_first_request_picks_a_fresh_cseq_below_2_pow_31_and_keeps_counting() -> None:
    d = uas()
    first = d.build_request("BYE", via=VIA)
    start = d.local_seq
    assert start is not None and 0 < start < 2**31
    assert first.headers.get("CSeq") == f"{start} BYE"
    # The UAS's requests go the other way: To = Alice with her tag.
    assert first.headers.get("To") == '"Alice" <sip:alice@127.0.0.1>;tag=a1'
    assert first.uri == "sip:alice@127.0.0.1:5070"
    assert first.headers.get_all("Route") == [P2, P1]
    d.build_request("INFO", via=VIA)
    assert d.local_seq == start + 1


def test_ack_for_2xx_uses_the_invite_cseq_and_keeps_the_local_seq() -> None:
    d = uac()
    reinvite = d.build_request("INVITE", via=VIA)
    ack = d.build_ack(315, via=VIA.replace("new1", "new2"), body=b"v=0", content_type="a/sdp")
    assert reinvite.headers.get("CSeq") == "315 INVITE"
    assert ack.method == "ACK"
    assert ack.headers.get("CSeq") == "315 ACK"  # §13.2.2.4
    assert ack.headers.get("Contact") is None
    assert ack.headers.get_all("Route") == [P1, P2]
    assert ack.uri == reinvite.uri
    assert d.local_seq == 315


def test_local_cseq_cannot_pass_32_bits() -> None:
    d = uac()
    d.local_seq = 2**32 - 1
    with pytest.raises(DialogError, match="exhausted"):
        d.build_request("INFO", via=VIA)


@pytest.mark.parametrize("method", ["ACK", "CANCEL"])
def test_ack_and_cancel_are_not_new_dialog_requests(method: str) -> None:
    with pytest.raises(DialogError):
        uac().build_request(method, via=VIA)


def test_body_needs_a_content_type() -> None:
    with pytest.raises(DialogError, match="Content-Type"):
        uac().build_request("INFO", via=VIA, body=b"x")


def test_terminated_dialog_builds_no_request() -> None:
    d = uac()
    d.terminate()
    with pytest.raises(DialogError, match="terminated"):
        d.build_request("INFO", via=VIA)


# --- CANCEL (§9.1) -------------------------------------------------------------------------


def test_cancel_copies_the_invite_with_its_top_via_and_routes() -> None:
    inv = invite()
    inv.headers.add("Route", P1)
    inv.headers.add("Route", P2)
    cancel = build_cancel(inv)
    assert cancel.method == "CANCEL"
    assert cancel.uri == inv.uri
    assert cancel.headers.get_all("Via") == ["SIP/2.0/UDP 127.0.0.1:5082;branch=z9hG4bKp2"]
    assert cancel.headers.get_all("Route") == [P1, P2]
    assert cancel.headers.get("To") == "<sip:bob@127.0.0.1>"  # no tag added
    assert cancel.headers.get("From") == inv.headers.get("From")
    assert cancel.headers.get("Call-ID") == "call-1@127.0.0.1"
    assert cancel.headers.get("CSeq") == "314 CANCEL"
    assert cancel.body == b""
    validate_request(parse_message(cancel.to_bytes()))  # type: ignore[arg-type]


def test_cancel_with_a_comma_joined_via_takes_the_first_value() -> None:
    inv = invite()
    inv.headers.set("Via", "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKa, SIP/2.0/UDP 127.0.0.1:1")
    assert build_cancel(inv).headers.get_all("Via") == [
        "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKa"
    ]


def test_only_an_invite_is_cancelled() -> None:
    with pytest.raises(DialogError, match="INVITE"):
        build_cancel(in_dialog("BYE", 400))


# --- receiving requests (UAS side of §12.2.2) ----------------------------------------------


def test_lower_remote_cseq_gets_500_and_higher_is_recorded() -> None:
    d = uas()
    assert receive(d, in_dialog("INFO", 320)) is None
    assert d.remote_seq == 320
    assert receive(d, in_dialog("INFO", 319)) == 500
    assert d.remote_seq == 320
    assert receive(d, in_dialog("INFO", 330)) is None  # gaps are fine (§12.2.2)
    assert d.remote_seq == 330


def test_ack_and_cancel_are_exempt_from_ordering() -> None:
    d = uas()
    assert receive(d, in_dialog("INFO", 320)) is None
    assert receive(d, in_dialog("ACK", 314)) is None
    assert receive(d, in_dialog("CANCEL", 314)) is None
    assert d.remote_seq == 320


def test_re_invite_contact_refreshes_the_remote_target() -> None:
    d = uas()
    assert receive(d, in_dialog("INVITE", 315, contact="<sip:alice@127.0.0.1:6000>")) is None
    assert d.remote_target == "sip:alice@127.0.0.1:6000"
    assert d.build_request("BYE", via=VIA).uri == "sip:alice@127.0.0.1:6000"


def test_non_refresh_request_contact_is_ignored() -> None:
    d = uas()
    assert receive(d, in_dialog("INFO", 315, contact="<sip:alice@127.0.0.1:6000>")) is None
    assert d.remote_target == "sip:alice@127.0.0.1:5070"


def test_bad_contact_in_a_refresh_gets_400_and_changes_nothing() -> None:
    d = uas()
    assert receive(d, in_dialog("INVITE", 315, contact="<tel:+123>")) == 400
    assert (d.remote_seq, d.remote_target) == (314, "sip:alice@127.0.0.1:5070")


def test_bye_terminates_and_later_requests_get_481() -> None:
    d = uas()
    assert receive(d, in_dialog("BYE", 315)) is None
    assert d.state is DialogState.TERMINATED
    assert receive(d, in_dialog("INFO", 316)) == 481


def test_request_of_another_dialog_is_refused() -> None:
    with pytest.raises(DialogError, match="another dialog"):
        receive(uas(), in_dialog("INFO", 315, from_tag="zz"))


# --- matching ------------------------------------------------------------------------------


def test_dialog_ids_match_in_both_directions() -> None:
    caller_side = uas()
    callee_side = uac()
    table = {caller_side.id: caller_side, callee_side.id: callee_side}
    # Bob (UAS) gets an in-dialog request from Alice.
    assert table[dialog_id_for_request(validate_request(in_dialog("BYE", 315)))] is caller_side
    # Alice (UAC) gets a response from Bob.
    assert table[dialog_id_for_response(validate_response(answer(200)))] is callee_side
    hash(caller_side.id)
    with pytest.raises(dataclasses.FrozenInstanceError):
        caller_side.id.call_id = "x"  # type: ignore[misc]


def test_request_without_to_tag_has_no_dialog() -> None:
    with pytest.raises(DialogError, match="To tag"):
        dialog_id_for_request(validate_request(invite()))


def test_response_without_from_tag_has_no_dialog() -> None:
    resp = answer(200)
    resp.headers.set("From", "<sip:alice@127.0.0.1>")
    with pytest.raises(DialogError, match="From tag"):
        dialog_id_for_response(validate_response(resp))


# --- refusals ------------------------------------------------------------------------------


def test_uas_response_without_to_tag_is_refused() -> None:
    with pytest.raises(DialogError, match="To tag"):
        Dialog.from_uas(invite(), answer(200, to_tag=None), local_contact="x", secure=False)


def test_uas_request_without_contact_is_refused() -> None:
    with pytest.raises(DialogError, match="Contact"):
        Dialog.from_uas(invite(contact=None), answer(200), local_contact="x", secure=False)


def test_uac_request_without_from_tag_is_refused() -> None:
    with pytest.raises(DialogError, match="From tag"):
        Dialog.from_uac(invite(from_tag=None), answer(200))


def test_uac_provisional_without_to_tag_makes_no_dialog() -> None:
    with pytest.raises(DialogError, match="To tag"):
        Dialog.from_uac(invite(), answer(180, to_tag=None))


def test_uac_2xx_without_to_tag_is_an_rfc2543_dialog() -> None:
    assert Dialog.from_uac(invite(), answer(200, to_tag=None)).id.remote_tag is None


@pytest.mark.parametrize(
    "contact",
    [None, "*", "<tel:+15551234>", "<sip:bob@127.0.0.1", "<sip:a@127.0.0.1>, <sip:b@127.0.0.1>"],
)
def test_uac_2xx_without_one_usable_contact_is_refused(contact: str | None) -> None:
    with pytest.raises(DialogError):
        Dialog.from_uac(invite(), answer(200, contact=contact))


@pytest.mark.parametrize("status", [100, 302, 486])
def test_responses_that_create_no_dialog(status: int) -> None:
    with pytest.raises(DialogError, match="does not create"):
        Dialog.from_uac(invite(), answer(status))


def test_non_invite_creates_no_dialog() -> None:
    with pytest.raises(DialogError, match="does not create"):
        Dialog.from_uac(in_dialog("INFO", 1), answer(200, cseq=1, method="INFO"))


def test_response_to_another_request_is_refused() -> None:
    with pytest.raises(DialogError, match="does not answer"):
        Dialog.from_uac(invite(), answer(200, cseq=999))


def test_record_route_with_a_non_sip_uri_is_refused() -> None:
    with pytest.raises(DialogError, match="SIP"):
        Dialog.from_uac(invite(), answer(200, record_route=("<tel:+1555>",)))


def test_malformed_messages_become_dialog_errors() -> None:
    resp = answer(200)
    resp.headers.set("CSeq", "nope")
    with pytest.raises(DialogError, match="CSeq"):
        Dialog.from_uac(invite(), resp)


# --- both ends -----------------------------------------------------------------------------


def test_round_trip_between_a_uac_and_a_uas_dialog() -> None:
    # Alice's INVITE reaches Bob through P1 and P2; Bob answers 180 then 200 with the
    # Record-Route mirrored; each builds its dialog from what it saw.
    bob = Dialog.from_uas(invite(), answer(180), local_contact=BOB_CONTACT, secure=False)
    alice = Dialog.from_uac(invite(), answer(180))
    alice.update_from_response(answer(200))
    bob.response_sent(answer(200))
    assert alice.is_confirmed and bob.is_confirmed
    assert alice.route_set == bob.route_set[::-1]

    # Alice -> Bob: a re-INVITE moving her contact; the loose-routing proxies leave it intact.
    reinvite = alice.build_request("INVITE", via=VIA)
    reinvite.headers.set("Contact", "<sip:alice@127.0.0.1:6000>")
    wire = parse_message(reinvite.to_bytes())
    assert isinstance(wire, Request)
    info = validate_request(wire)
    assert dialog_id_for_request(info) == bob.id
    assert wire.uri == bob.local_contact.strip("<>")  # Alice targets Bob's Contact
    assert bob.receive_request(wire, info) is None
    assert bob.remote_seq == alice.local_seq == 315
    assert bob.remote_target == "sip:alice@127.0.0.1:6000"

    # Bob -> Alice: a BYE; Alice's view of its id is her dialog's id.
    bye = bob.build_request("BYE", via="SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bKb2")
    assert bye.uri == "sip:alice@127.0.0.1:6000"
    assert bye.headers.get_all("Route") == bob.route_set
    wire = parse_message(bye.to_bytes())
    assert isinstance(wire, Request)
    info = validate_request(wire)
    assert dialog_id_for_request(info) == alice.id
    assert alice.receive_request(wire, info) is None
    assert alice.state is DialogState.TERMINATED
    assert alice.remote_seq == bob.local_seq
