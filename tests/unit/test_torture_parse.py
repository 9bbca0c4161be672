"""RFC 4475 / RFC 5118 torture messages through the parse + validate layer.

The messages and what the edge must do with each are in ``../shared/sip-torture`` (index.md,
index.json). Here each one is held to what *this* layer owes: valid messages parse and validate,
invalid requests raise ``SipParseError`` with the status index.md expects, malformed responses
raise so that they are dropped. Application answers (registrar 400 for unksm2, 420 for bext01,
415/406 for invut/sdp01, 405/501 for unknown methods) are the edge's tests; here they only have
to parse. Decided where the RFCs allow two answers: the liberal lwsstart, trws, badaspec and
ipv6-bug-abnf-3-colons get 400 (RFC 5118 §4.10 recommends the correct ABNF); escruri, baddate
and regbadct are accepted at this layer (regbadct's Contact is refused when parsed).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sip.errors import SipParseError
from sip.framer import StreamFramer
from sip.headers import parse_name_addr, parse_via, unquote
from sip.message import Request, Response, response_to
from sip.parser import parse_message
from sip.uri import AbsoluteUri, SipUri, parse_uri
from sip.validate import MessageInfo, RequestInfo, validate_request, validate_response

TORTURE = Path(__file__).parents[3] / "shared" / "sip-torture"


def _rows() -> list[dict[str, Any]]:
    index = TORTURE / "index.json"
    return json.loads(index.read_bytes()) if index.is_file() else []


ROWS = {row["name"]: row for row in _rows()}


@dataclass(frozen=True)
class Valid:
    """Parses and validates. ``response``: it is a response (the edge drops it unsolicited)."""

    response: bool = False


@dataclass(frozen=True)
class Refused:
    """A request this layer refuses with ``status``; ``reason`` is part of the phrase."""

    status: int
    reason: str


@dataclass(frozen=True)
class Dropped:
    """A response this layer refuses; nobody is answered."""

    reason: str


EXPECTED: dict[str, Valid | Refused | Dropped] = {
    # RFC 4475 §3.1.1: valid messages.
    "wsinv": Valid(),
    "intmeth": Valid(),
    "esc01": Valid(),
    "escnull": Valid(),
    "esc02": Valid(),
    "lwsdisp": Valid(),
    "longreq": Valid(),
    "dblreq": Valid(),
    "semiuri": Valid(),
    "transports": Valid(),
    "mpart01": Valid(),
    "unreason": Valid(response=True),
    "noreason": Valid(response=True),
    # §3.1.2: invalid messages.
    "badinv01": Refused(400, "Malformed Via"),
    "clerr": Refused(400, "Content-Length larger than body"),
    "ncl": Refused(400, "Malformed Content-Length"),
    "scalar02": Refused(400, "CSeq out of range"),
    "scalarlg": Dropped("CSeq out of range"),
    "quotbal": Refused(400, "Unterminated quoted string in To"),
    "ltgtruri": Refused(400, "Malformed Request-URI"),
    "lwsruri": Refused(400, "Malformed request line"),
    "lwsstart": Refused(400, "Malformed request line"),
    "trws": Refused(400, "Malformed request line"),
    "escruri": Valid(),
    "baddate": Valid(),
    "regbadct": Valid(),
    "badaspec": Refused(400, "Malformed To URI"),
    # The archive's file has no empty line after the last header (see its own test below).
    "baddn": Refused(400, "Header section not terminated"),
    "badvers": Refused(505, "Version Not Supported"),
    "mismatch01": Refused(400, "CSeq method mismatch"),
    # 501 is preferred by the RFC but needs the method table: the edge's business. 400 is
    # also correct and is what this layer says.
    "mismatch02": Refused(400, "CSeq method mismatch"),
    "bigcode": Dropped("Malformed status code"),
    # §3.2, §3.3: transaction layer and application semantics.
    "badbranch": Valid(),
    "insuf": Refused(400, "Missing From header"),
    "unkscm": Refused(416, "Unsupported URI Scheme"),
    "novelsc": Refused(416, "Unsupported URI Scheme"),
    "unksm2": Valid(),
    "bext01": Valid(),
    "invut": Valid(),
    "regaut01": Valid(),
    "multi01": Refused(400, "Multiple From headers"),
    "mcl01": Refused(400, "Conflicting Content-Length headers"),
    "bcast": Valid(response=True),
    "zeromf": Valid(),
    "cparam01": Valid(),
    "cparam02": Valid(),
    "regescrt": Valid(),
    "sdp01": Valid(),
    "inv2543": Valid(),
    "test": Refused(400, "Malformed request line"),
    # RFC 5118.
    "ipv6-good": Valid(),
    "ipv6-bad": Refused(400, "Malformed Request-URI"),
    "port-ambiguous": Valid(),
    "port-unambiguous": Valid(),
    "via-received-param-with-delim": Valid(),
    "via-received-param-no-delim": Valid(),
    "ipv6-in-sdp": Valid(),
    "mult-ip-in-header": Valid(),
    "mult-ip-in-sdp": Valid(),
    "ipv4-mapped-ipv6": Valid(),
    "ipv6-correct-abnf-2-colons": Valid(),
    "ipv6-bug-abnf-3-colons": Refused(400, "Malformed Request-URI"),
}


def data_of(name: str) -> bytes:
    return (TORTURE / ROWS[name]["file"]).read_bytes()


def accept(name: str) -> tuple[Request | Response, MessageInfo]:
    message = parse_message(data_of(name))
    if isinstance(message, Request):
        return message, validate_request(message)
    return message, validate_response(message)


def accept_request(name: str) -> tuple[Request, RequestInfo]:
    message, info = accept(name)
    assert isinstance(message, Request)
    assert isinstance(info, RequestInfo)
    return message, info


# --- the corpus itself -------------------------------------------------------------------------


def test_torture_corpus_is_beside_the_repository_and_intact() -> None:
    assert TORTURE.is_dir(), f"{TORTURE} missing: clone shared/ beside the repository"
    assert len(ROWS) == 62
    for row in ROWS.values():
        data = (TORTURE / row["file"]).read_bytes()
        assert len(data) == row["bytes"], row["file"]
        assert hashlib.sha256(data).hexdigest() == row["sha256"], row["file"]


def test_every_torture_message_has_an_expectation() -> None:
    assert set(EXPECTED) == set(ROWS)


def test_expectations_agree_with_the_rfc_class() -> None:
    for name, row in ROWS.items():
        if row["rfc_class"] == "valid":
            assert isinstance(EXPECTED[name], Valid), name
        if row["rfc_class"] == "invalid":
            assert not isinstance(EXPECTED[name], Valid), name


# --- outcome of each message -------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_torture_message_gets_its_expected_outcome(name: str) -> None:
    expected = EXPECTED[name]
    if isinstance(expected, Valid):
        message, _ = accept(name)
        assert isinstance(message, Response) == expected.response
        return
    with pytest.raises(SipParseError) as caught:
        accept(name)
    assert expected.reason in caught.value.reason
    if isinstance(expected, Refused):
        assert caught.value.status == expected.status
        assert not data_of(name).startswith(b"SIP/")
    else:
        assert data_of(name).startswith(b"SIP/")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_torture_message_on_a_stream_raises_only_sip_parse_error(name: str) -> None:
    framer = StreamFramer()
    try:
        frames = framer.feed(data_of(name))
    except SipParseError:
        return
    for frame in frames:
        if isinstance(frame, bytes):
            with contextlib.suppress(SipParseError):
                message = parse_message(frame, datagram=False)
                if isinstance(message, Request):
                    validate_request(message)
                else:
                    validate_response(message)


# README rule 3: over a stream these wait for more bytes (then time out) or break framing.
STREAM_OUTCOME: dict[str, str | int] = {
    "clerr": "waits",
    "baddn": "waits",
    "ncl": "Malformed Content-Length",
    "mcl01": "Conflicting Content-Length",
    # The trailing octets are a second request on a stream; its body is one octet longer than
    # its Content-Length, and that octet then starts a third (unparseable) message.
    "dblreq": 3,
}


@pytest.mark.parametrize("name", sorted(STREAM_OUTCOME))
def test_framing_breakers_wait_or_raise_on_a_stream(name: str) -> None:
    expected = STREAM_OUTCOME[name]
    framer = StreamFramer()
    if isinstance(expected, int):
        frames = framer.feed(data_of(name))
        assert len(frames) == expected
        first, second, rest = frames
        assert isinstance(first, bytes) and isinstance(second, bytes)
        assert [parse_message(f, datagram=False).headers.get("CSeq") for f in (first, second)] == [
            "8 REGISTER",
            "8 INVITE",
        ]
        assert rest == b"C\r\n\r\n"
        with pytest.raises(SipParseError):
            parse_message(rest, datagram=False)
    elif expected == "waits":
        assert framer.feed(data_of(name)) == []
        assert 0 < framer.buffered <= len(data_of(name))
    else:
        with pytest.raises(SipParseError, match=expected):
            framer.feed(data_of(name))


# --- what the valid ones must be read as -------------------------------------------------------


def test_wsinv_folding_compact_forms_and_leading_zeros() -> None:
    message, info = accept_request("wsinv")
    assert (info.cseq, info.cseq_method, info.max_forwards) == (9, "INVITE", 68)
    assert [(v.transport, v.host) for v in info.vias] == [
        ("UDP", "192.0.2.2"),
        ("TCP", "spindle.example.com"),
        ("UDP", "192.168.255.111"),
    ]
    assert info.vias[2].branch == "z9hG4bK30239"
    assert info.to.tag == "1918181833n"
    assert info.from_.display is not None
    assert unquote(info.from_.display) == 'J Rosenberg \\"'
    assert info.from_.tag == "98asjd8"
    assert message.headers.get("Subject") == ""
    assert message.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    assert message.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    contact = parse_name_addr(message.headers.get("Contact") or "", "Contact")
    assert contact.params == {"newparam": "newvalue", "secondparam": None, "q": "0.33"}
    assert len(message.body) == 150


def test_intmeth_odd_method_uri_and_quoted_control_characters() -> None:
    message, info = accept_request("intmeth")
    assert message.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert info.cseq_method == message.method
    assert isinstance(info.uri, SipUri)
    assert info.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert info.uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert info.to.display is not None
    assert unquote(info.to.display) == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert info.vias[0].branch == "z9hG4bK-.!%66*_+`'~"
    assert info.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert info.max_forwards == 255


def test_esc01_escaped_sips_user_is_not_a_sips_uri() -> None:
    _, info = accept_request("esc01")
    assert isinstance(info.uri, SipUri)
    assert (info.uri.scheme, info.uri.user, info.uri.host) == (
        "sip",
        "sips%3Auser%40example.com",
        "example.net",
    )
    to_uri = info.to.parsed_uri()
    assert isinstance(to_uri, SipUri)
    assert to_uri.aor() == "sip:user@example.com"


def test_escnull_keeps_the_nul_in_the_aor_and_two_contacts() -> None:
    message, info = accept_request("escnull")
    to_uri = info.to.parsed_uri()
    assert isinstance(to_uri, SipUri)
    assert to_uri.aor() == "sip:null-\x00-null@example.com"
    contacts = [parse_name_addr(v, "Contact").uri for v in message.headers.values("Contact")]
    assert contacts == ["sip:%00@host5.example.com", "sip:%00%00@host5.example.com"]


def test_esc02_is_an_unknown_method_with_two_contacts() -> None:
    message, info = accept_request("esc02")
    assert message.method == "RE%47IST%45R" != "REGISTER"
    assert info.to.display == '"%Z%45"'
    assert len(message.headers.values("Contact")) == 2
    assert message.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"


def test_lwsdisp_display_name_without_space() -> None:
    _, info = accept_request("lwsdisp")
    assert (info.from_.display, info.from_.tag) == ("caller", "323")


def test_longreq_keeps_34_vias_and_long_values() -> None:
    message, info = accept_request("longreq")
    assert len(info.vias) == 34
    assert info.call_id.startswith("longreq.onereally") and info.call_id.endswith("longcallid")
    assert len(info.from_.tag or "") > 100
    response = response_to(message, 100)
    assert response.headers.values("Via") == message.headers.values("Via")
    assert response.headers.get("Call-ID") == info.call_id
    assert response.headers.get("From") == message.headers.get("From")


def test_dblreq_datagram_is_the_register_only() -> None:
    message, info = accept_request("dblreq")
    assert (message.method, info.cseq, message.body) == ("REGISTER", 8, b"")


def test_semiuri_user_part_keeps_its_semicolon() -> None:
    _, info = accept_request("semiuri")
    assert isinstance(info.uri, SipUri)
    assert (info.uri.user, info.uri.host, info.uri.params) == (
        "user;par=u%40example.net",
        "example.com",
        {},
    )


def test_transports_keeps_unknown_transport_tokens() -> None:
    _, info = accept_request("transports")
    assert [v.transport for v in info.vias] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]


def test_mpart01_body_is_framed_by_content_length_with_its_nuls() -> None:
    message, _ = accept_request("mpart01")
    assert len(message.body) == int(message.headers.get("Content-Length") or "-1")
    assert b"\x00" in message.body


def test_unusual_and_empty_reason_phrases() -> None:
    unreason, _ = accept("unreason")
    assert isinstance(unreason, Response)
    assert (unreason.status, unreason.reason.split(" ")[:5]) == (
        200,
        ["=", "2**3", "*", "5**2", "но"],
    )
    noreason, _ = accept("noreason")
    assert isinstance(noreason, Response)
    assert (noreason.status, noreason.reason) == (100, "")


def test_escruri_headers_stay_inside_the_request_uri() -> None:
    message, info = accept_request("escruri")
    assert isinstance(info.uri, SipUri)
    assert info.uri.headers == {"Route": "%3Csip:example.com%3E"}
    assert "Route" not in message.headers


def test_regbadct_contact_with_uri_headers_outside_angle_brackets_is_refused() -> None:
    message, _ = accept_request("regbadct")
    with pytest.raises(SipParseError, match="enclosed in <>"):
        parse_name_addr(message.headers.get("Contact") or "", "Contact")


def test_regescrt_escaped_route_stays_a_uri_header_of_the_contact() -> None:
    message, _ = accept_request("regescrt")
    contact = parse_name_addr(message.headers.get("Contact") or "", "Contact").parsed_uri()
    assert isinstance(contact, SipUri)
    assert contact.headers == {"Route": "%3Csip:sip.example.com%3E"}
    assert "Route" not in message.headers


def test_cparam01_param_belongs_to_the_contact_and_cparam02_to_the_uri() -> None:
    one, _ = accept_request("cparam01")
    contact = parse_name_addr(one.headers.get("Contact") or "", "Contact")
    assert (contact.uri, contact.params) == (
        "sip:+19725552222@gw1.example.net",
        {"unknownparam": None},
    )
    two, _ = accept_request("cparam02")
    contact = parse_name_addr(two.headers.get("Contact") or "", "Contact")
    assert (contact.uri, contact.params) == ("sip:+19725552222@gw1.example.net;unknownparam", {})


def test_unksm2_non_sip_schemes_in_fields_parse() -> None:
    message, info = accept_request("unksm2")
    assert isinstance(info.to.parsed_uri(), AbsoluteUri)
    assert isinstance(info.from_.parsed_uri(), AbsoluteUri)
    contact = parse_name_addr(message.headers.get("Contact") or "", "Contact")
    assert isinstance(contact.parsed_uri(), AbsoluteUri)


def test_zeromf_max_forwards_zero_and_badbranch_bare_cookie() -> None:
    assert accept_request("zeromf")[1].max_forwards == 0
    assert accept_request("badbranch")[1].vias[0].branch == "z9hG4bK"


def test_inv2543_without_branch_tag_or_length_takes_the_rest_as_body() -> None:
    message, info = accept_request("inv2543")
    assert info.vias[0].branch is None
    assert info.from_.tag is None
    assert info.max_forwards is None
    assert "Content-Length" not in message.headers
    assert message.body.startswith(b"v=0\r\n") and message.body.endswith(b"\r\n")


def test_bcast_response_parses_with_its_broadcast_via() -> None:
    message, info = accept("bcast")
    assert isinstance(message, Response)
    assert [v.host for v in info.vias] == ["192.0.2.198", "255.255.255.255"]


def test_scalar02_overlarge_fields_never_wrap() -> None:
    message = parse_message(data_of("scalar02"))
    assert isinstance(message, Request)
    with pytest.raises(SipParseError, match="CSeq out of range"):
        validate_request(message)
    message.headers.set("CSeq", "1 REGISTER")
    with pytest.raises(SipParseError, match="Max-Forwards out of range"):
        validate_request(message)
    message.headers.set("Max-Forwards", "70")
    with pytest.raises(SipParseError, match="Expires out of range"):
        validate_request(message)


def test_baddn_with_its_missing_empty_line_added_is_refused_for_the_display_name() -> None:
    message = parse_message(data_of("baddn") + b"\r\n")
    assert isinstance(message, Request)
    with pytest.raises(SipParseError, match="Malformed display name in From") as caught:
        validate_request(message)
    assert caught.value.status == 400


@pytest.mark.parametrize(
    ("name", "check"),
    [
        ("ipv6-good", lambda u: (u.host, u.port) == ("[2001:db8::10]", None)),
        ("port-ambiguous", lambda u: (u.host, u.port) == ("[2001:db8::10:5070]", None)),
        ("port-unambiguous", lambda u: (u.host, u.port) == ("[2001:db8::10]", 5070)),
        ("ipv6-correct-abnf-2-colons", lambda u: u.host == "[2001:db8::192.0.2.1]"),
    ],
)
def test_rfc5118_request_uri_hosts_and_ports(name: str, check: Callable[[SipUri], bool]) -> None:
    _, info = accept_request(name)
    assert isinstance(info.uri, SipUri)
    assert check(info.uri)


def test_rfc5118_received_with_and_without_brackets_name_the_same_address() -> None:
    received = []
    for name in ("via-received-param-with-delim", "via-received-param-no-delim"):
        _, info = accept_request(name)
        received.append((info.vias[0].params["received"] or "").strip("[]"))
    assert received == ["2001:db8::9:255", "2001:db8::9:255"]


def test_rfc5118_mixed_and_mapped_addresses_in_vias() -> None:
    _, info = accept_request("mult-ip-in-header")
    assert [(v.host, v.port) for v in info.vias] == [
        ("[2001:db8::9:1]", 6050),
        ("192.0.2.1", None),
        ("[2001:db8::9:255]", None),
    ]
    assert info.vias[2].params["received"] == "192.0.2.200"
    _, mapped = accept_request("ipv4-mapped-ipv6")
    assert [(v.host, v.port) for v in mapped.vias] == [
        ("[::ffff:192.0.2.10]", 19823),
        ("[::ffff:192.0.2.2]", None),
    ]


def test_rfc5118_three_colon_reference_is_refused_everywhere() -> None:
    # Decided: 400, following RFC 5118 §4.10's recommended (correct) ABNF.
    with pytest.raises(SipParseError):
        parse_uri("sip:user@[2001:db8:::192.0.2.1]")
    with pytest.raises(SipParseError):
        parse_via("SIP/2.0/UDP [2001:db8:::192.0.2.1];branch=z9hG4bK1")
