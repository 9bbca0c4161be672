"""The B2BUA call model under a fake clock: messages in, messages and call actions out."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest

from edge.auth import PhoneAuth
from edge.b2bua import B2BUA
from edge.call_model import Action, Call, CallEnded, CallState, MediaPlanned, MediaTarget, OpenMedia
from edge.config import parse_config
from edge.limits import AuthFailureThrottle
from edge.location import Binding, LocationService
from media.sdp import parse_sdp
from sip.digest import DigestAuthenticator
from sip.flow import Flow
from sip.message import Request, Response
from sip.parser import parse_message
from sip.transaction import (
    RequestReceived,
    ResponseReceived,
    Send,
    TimerConfig,
    TransactionLayer,
    TransactionTimeout,
)
from sip.uri import SipUri
from sip.validate import validate_request, validate_response
from tests.digest_client import authorization

CONFIG = """
[edge]
name = "e1"
domain = "voxedge.test"
advertise = "192.0.2.10"
media_address = "192.0.2.20"
data_dir = "."
no_answer_timeout = 20

[listen.phones]
udp = "127.0.0.1:5060"

[[phones]]
name = "alice"
type = "generic_sip"
extension = "1001"
password = "alice-secret"
digest_algorithms = ["MD5"]

[[phones]]
name = "bob"
type = "generic_sip"
extension = "1002"
password = "bob-secret"

[[phones]]
name = "carol"
type = "generic_sip"
extension = "1003"
password = "carol-secret"
"""

EDGE = ("127.0.0.1", 5060)
ALICE = Flow("udp", ("127.0.0.1", 7001), EDGE)
BOB1 = Flow("udp", ("127.0.0.1", 7002), EDGE)
BOB2 = Flow("udp", ("127.0.0.1", 7003), EDGE)
PORTS = {"a": 30000, "b": 30002}

OFFER = (
    "v=0\r\no=alice 1 1 IN IP4 10.1.1.1\r\ns=baresip\r\nc=IN IP4 10.1.1.1\r\nt=0 0\r\n"
    "m=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-15\r\na=sendrecv\r\n"
)
ANSWER = (
    "v=0\r\no=bob 7 7 IN IP4 10.2.2.2\r\ns=-\r\nc=IN IP4 10.2.2.2\r\nt=0 0\r\n"
    "m=audio 5000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
)


def sdp_with(direction: str, base: str = OFFER) -> str:
    return base.replace("a=sendrecv", f"a={direction}")


class Harness:
    """The B2BUA with its transaction layer; the test plays the phones and the glue."""

    def __init__(self) -> None:
        self.config = parse_config(CONFIG, Path("."))
        self.now = 100.0
        self.wall = 1_800_000_000.0
        self.tl = TransactionLayer(TimerConfig(0.5, 4.0, 5.0))
        self.location = LocationService()
        self.rejects: collections.Counter[str] = collections.Counter()
        auth = PhoneAuth(
            DigestAuthenticator(b"k" * 32, "voxedge.test", 300),
            AuthFailureThrottle(self.config.edge.auth_failures, 60),
            lambda reason, flow, detail: self.rejects.update([reason]),
        )
        self.b2bua = B2BUA(
            self.tl,
            auth,
            self.location,
            lambda: self.config,
            lambda reason, flow, detail: self.rejects.update([reason]),
            self._wall,
        )
        self.wire: list[tuple[Flow, bytes]] = []
        self.actions: list[Action] = []
        self.ended: list[Call] = []
        self.cseq = 0
        self.opened = 0

    def _wall(self) -> float:
        return self.wall + self.now

    def register(self, extension: str, flow: Flow, user: str = "bob") -> None:
        aor = f"sip:{extension}@voxedge.test"
        contact = f"sip:{user}@{flow.remote[0]}:{flow.remote[1]}"
        binding = Binding(
            aor, contact, SipUri("sip", flow.remote[0], user, flow.remote[1]), 1.0,
            self.now + 3600, f"reg-{flow.remote[1]}", 1, flow,
        )  # fmt: skip
        current = self.location.lookup(aor, self.now)
        self.location.commit(aor, [*current, binding], self.now)

    # --- feeding the engine ------------------------------------------------------------

    def _apply(self, actions: list[Action]) -> None:
        for action in actions:
            self.actions.append(action)
            if isinstance(action, Send):
                self.wire.append((action.flow, action.data))
            elif isinstance(action, OpenMedia):
                offset = 4 * self.opened  # each call its own relay ports
                self.opened += 1
                action.call.media_ports = {"a": PORTS["a"] + offset, "b": PORTS["b"] + offset}
                self._apply(self.b2bua.media_ready(action.call, self.now))
            elif isinstance(action, CallEnded):
                self.ended.append(action.call)
            elif isinstance(action, ResponseReceived) and action.transaction is not None:
                self._apply(
                    self.b2bua.handle_response(action.transaction, action.response, self.now)
                )
            elif isinstance(action, TransactionTimeout):
                txn = action.transaction
                if txn.context is not None:
                    self._apply(self.b2bua.handle_failure(txn, self.now))  # type: ignore[arg-type]

    def request_from(self, flow: Flow, data: str) -> None:
        message = parse_message(data.encode())
        assert isinstance(message, Request)
        info = validate_request(message)
        for event in self.tl.receive_request(message, flow, self.now, info):
            if isinstance(event, RequestReceived):
                txn = event.transaction
                if txn is None:
                    self._apply(self.b2bua.handle_in_dialog(None, message, info, self.now))
                elif message.method == "CANCEL":
                    self._apply(self.b2bua.handle_cancel(txn, message, info, self.now))
                elif info.to.tag is not None:
                    self._apply(self.b2bua.handle_in_dialog(txn, message, info, self.now))
                else:
                    self._apply(self.b2bua.handle_invite(txn, message, info, self.now))
            else:
                self._apply([event])

    def response_from(self, flow: Flow, data: str) -> None:
        message = parse_message(data.encode())
        assert isinstance(message, Response)
        info = validate_response(message)
        self._apply(list(self.tl.receive_response(message, flow, self.now, info)))

    def tick(self, seconds: float) -> None:
        end = self.now + seconds
        while True:
            deadlines = [d for d in (self.tl.next_deadline(), self.b2bua.next_deadline()) if d]
            due = min(deadlines, default=None)
            if due is None or due > end:
                break
            self.now = max(self.now, due)
            self._apply(list(self.tl.handle_timer(self.now)))
            self._apply(self.b2bua.handle_timer(self.now))
        self.now = end

    # --- reading what went out -----------------------------------------------------------

    def sent(self, flow: Flow) -> list[Request | Response]:
        """Messages sent to ``flow``'s phone since the last call (and forget them)."""
        mine = [parse_message(data) for f, data in self.wire if f.remote == flow.remote]
        self.wire = [(f, d) for f, d in self.wire if f.remote != flow.remote]
        return mine  # type: ignore[return-value]

    def last_request(self, flow: Flow, method: str) -> Request:
        found = [m for m in self.sent(flow) if isinstance(m, Request) and m.method == method]
        assert found, f"no {method} to {flow.remote}"
        return found[-1]

    def statuses(self, flow: Flow) -> list[int]:
        return [m.status for m in self.sent(flow) if isinstance(m, Response)]

    # --- the caller ----------------------------------------------------------------------

    def invite(
        self,
        target: str = "1002",
        *,
        body: str = OFFER,
        auth: str | None = None,
        branch: str = "z9hG4bKinv1",
        cseq: int = 1,
        user: str = "1001",
        extra: str = "",
        flow: Flow = ALICE,
        call_id: str = "alice-call-1@10.1.1.1",
        content_type: str = "application/sdp",
    ) -> str:
        lines = [
            f"INVITE sip:{target}@voxedge.test SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{flow.remote[1]};branch={branch};rport",
            "Max-Forwards: 70",
            f'From: "Alice" <sip:{user}@voxedge.test>;tag=atag',
            f"To: <sip:{target}@voxedge.test>",
            f"Call-ID: {call_id}",
            f"CSeq: {cseq} INVITE",
            "Contact: <sip:alice@127.0.0.1:7001>",
            "User-Agent: secret-phone/1.0",
        ]
        if auth:
            lines.append(f"Proxy-Authorization: {auth}")
        if extra:
            lines.append(extra)
        if body:
            lines.append(f"Content-Type: {content_type}")
        text = "\r\n".join(lines) + f"\r\nContent-Length: {len(body)}\r\n\r\n{body}"
        self.request_from(flow, text)
        return text

    def call(
        self,
        body: str = OFFER,
        target: str = "1002",
        *,
        user: str = "1001",
        password: str = "alice-secret",
        flow: Flow = ALICE,
        call_id: str = "alice-call-1@10.1.1.1",
        extra: str = "",
        content_type: str = "application/sdp",
    ) -> None:
        """INVITE, 407, authenticated INVITE (``extra`` header lines in that one)."""
        self.invite(target, body=body, user=user, flow=flow, call_id=call_id)
        challenge = [m for m in self.sent(flow) if isinstance(m, Response)][-1]
        assert challenge.status == 407
        self.request_from(flow, ack_for(challenge, "z9hG4bKinv1"))
        auth = authorization(
            challenge, user, password, uri=f"sip:{target}@voxedge.test", method="INVITE"
        )
        self.invite(
            target, body=body, auth=auth, branch="z9hG4bKinv2", cseq=2, user=user, flow=flow,
            call_id=call_id, extra=extra, content_type=content_type,
        )  # fmt: skip


def ack_for(response: Response, branch: str) -> str:
    h = response.headers
    return (
        f"ACK sip:1002@voxedge.test SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:7001;branch={branch};rport\r\nMax-Forwards: 70\r\n"
        f"From: {h.get('From')}\r\nTo: {h.get('To')}\r\nCall-ID: {h.get('Call-ID')}\r\n"
        f"CSeq: {(h.get('CSeq') or '').split()[0]} ACK\r\nContent-Length: 0\r\n\r\n"
    )


def reply(
    request: Request,
    status: int,
    *,
    tag: str = "btag",
    body: str = "",
    contact: str = "sip:bob@127.0.0.1:7002",
) -> str:
    """The callee's response to ``request`` (Via, From, Call-ID, CSeq copied)."""
    h = request.headers
    to = h.get("To") or ""
    if status > 100 and ";tag=" not in to:
        to += f";tag={tag}"
    lines = [f"SIP/2.0 {status} X"]
    lines += [f"Via: {v}" for v in h.get_all("Via")]
    lines += [
        f"From: {h.get('From')}",
        f"To: {to}",
        f"Call-ID: {h.get('Call-ID')}",
        f"CSeq: {h.get('CSeq')}",
    ]
    if 100 < status < 300:
        lines.append(f"Contact: <{contact}>")
    if body:
        lines.append("Content-Type: application/sdp")
    return "\r\n".join(lines) + f"\r\nContent-Length: {len(body)}\r\n\r\n{body}"


def in_dialog(
    method: str,
    dialog_msg: Request | Response,
    *,
    from_caller: bool,
    cseq: int,
    branch: str,
    via_port: int,
    body: str = "",
    content_type: str = "application/sdp",
) -> str:
    """A request within the dialog ``dialog_msg`` belongs to, sent by the phone at its far
    end (the caller: ``dialog_msg`` is the edge's 2xx to it; the callee: the edge's INVITE)."""
    h = dialog_msg.headers
    if from_caller:  # the caller keeps its From; the edge's tag is in To
        from_, to = h.get("From"), h.get("To")
    else:  # the callee writes the edge's From as To
        from_, to = h.get("To"), h.get("From")
    if not from_caller and ";tag=" not in (from_ or ""):
        from_ = f"{from_};tag=btag"
    lines = [
        f"{method} sip:edge@127.0.0.1:5060 SIP/2.0",
        f"Via: SIP/2.0/UDP 127.0.0.1:{via_port};branch={branch};rport",
        "Max-Forwards: 70",
        f"From: {from_}",
        f"To: {to}",
        f"Call-ID: {h.get('Call-ID')}",
        f"CSeq: {cseq} {method}",
        f"Contact: <sip:x@127.0.0.1:{via_port}>",
    ]
    if body:
        lines.append(f"Content-Type: {content_type}")
    return "\r\n".join(lines) + f"\r\nContent-Length: {len(body)}\r\n\r\n{body}"


def alice_sends(
    h: Harness, method: str, ok: Response, *, cseq: int, branch: str, body: str = ""
) -> None:
    """The caller's request in its dialog with the edge (``ok``: the edge's 2xx to it)."""
    h.request_from(
        ALICE,
        in_dialog(method, ok, from_caller=True, cseq=cseq, branch=branch, via_port=7001, body=body),
    )


def bob_sends(
    h: Harness, method: str, invite: Request, *, cseq: int, branch: str, body: str = ""
) -> None:
    """The callee's request in its dialog with the edge (``invite``: the edge's INVITE)."""
    h.request_from(
        BOB1,
        in_dialog(
            method, invite, from_caller=False, cseq=cseq, branch=branch, via_port=7002, body=body
        ),
    )


@pytest.fixture
def h() -> Harness:
    harness = Harness()
    harness.register("1002", BOB1)
    return harness


def answered(h: Harness) -> tuple[Request, Response]:
    """A call from 1001 to 1002 answered by BOB1: (the edge's INVITE, the edge's 200)."""
    h.call()
    invite = h.last_request(BOB1, "INVITE")
    h.response_from(BOB1, reply(invite, 180))
    h.response_from(BOB1, reply(invite, 200, body=ANSWER))
    ok = [m for m in h.sent(ALICE) if isinstance(m, Response) and m.status == 200][-1]
    h.request_from(ALICE, ack_for(ok, "z9hG4bKack1"))
    return invite, ok


# ---------------------------------------------------------------------------- set-up


def test_invite_is_challenged_with_407(h: Harness) -> None:
    h.invite()
    (response,) = [m for m in h.sent(ALICE) if isinstance(m, Response)]
    assert response.status == 407
    assert "MD5" in (response.headers.get("Proxy-Authenticate") or "")
    assert not h.b2bua.calls


def test_wrong_password_is_refused(h: Harness) -> None:
    h.invite()
    challenge = h.sent(ALICE)[-1]
    assert isinstance(challenge, Response)
    auth = authorization(challenge, "1001", "nope", uri="sip:1002@voxedge.test", method="INVITE")
    h.invite(auth=auth, branch="z9hG4bKinv2", cseq=2)
    assert h.statuses(ALICE)[-1] == 403
    assert h.rejects["AUTH_FAILED"] == 1


def test_unknown_extension_gets_404_after_authentication(h: Harness) -> None:
    h.call(target="1999")
    assert h.statuses(ALICE)[-1] == 404


def test_known_but_unregistered_gets_480(h: Harness) -> None:
    h.call(target="1003")
    assert h.statuses(ALICE)[-1] == 480
    assert h.rejects["NOT_REGISTERED"] == 1


def test_bad_sdp_gets_400_naming_it(h: Harness) -> None:
    h.call(body="v=0\r\nbogus\r\n")
    last = [m for m in h.sent(ALICE) if isinstance(m, Response)][-1]
    assert last.status == 400 and "SDP" in last.reason


def test_offer_without_audio_gets_488(h: Harness) -> None:
    h.call(body=OFFER.replace("m=audio", "m=video"))
    assert h.statuses(ALICE)[-1] == 488


def test_fork_hides_the_caller_and_points_sdp_at_the_relay(h: Harness) -> None:
    h.register("1002", BOB2, user="bob2")
    h.call()
    first = h.last_request(BOB1, "INVITE")
    second = h.last_request(BOB2, "INVITE")
    for invite in (first, second):
        text = invite.to_bytes().decode()
        for leak in ("alice-call-1", ":7001", "atag", "secret-phone", "10.1.1.1", "baresip"):
            assert leak not in text
        assert (invite.headers.get("From") or "").startswith('"Alice" <sip:1001@voxedge.test>')
        sdp = parse_sdp(invite.body)
        assert sdp.media[0].port == PORTS["b"]
        assert sdp.connection is not None and sdp.connection.address == "192.0.2.20"
        assert sdp.origin.username == "voxedge" and sdp.origin.address == "192.0.2.20"
    assert first.headers.get("Call-ID") != second.headers.get("Call-ID")
    assert first.uri == "sip:bob@127.0.0.1:7002"
    targets = [a for a in h.actions if isinstance(a, MediaTarget)]
    assert targets[-1].leg == "a" and targets[-1].address == ("10.1.1.1", 4000)


def test_first_2xx_wins_and_other_forks_are_cancelled(h: Harness) -> None:
    h.register("1002", BOB2, user="bob2")
    h.call()
    first = h.last_request(BOB1, "INVITE")
    second = h.last_request(BOB2, "INVITE")
    h.response_from(BOB2, reply(second, 180, tag="b2"))
    h.response_from(BOB1, reply(first, 183, body=ANSWER))
    to_alice = [m for m in h.sent(ALICE) if isinstance(m, Response)]
    assert [m.status for m in to_alice if m.status > 100] == [180, 183]
    early = to_alice[-1]
    assert parse_sdp(early.body).media[0].port == PORTS["a"]  # early media via the relay
    h.response_from(BOB1, reply(first, 200, body=ANSWER))
    cancel = h.last_request(BOB2, "CANCEL")
    assert cancel.headers.get("Call-ID") == second.headers.get("Call-ID")
    ack = h.last_request(BOB1, "ACK")
    assert ack.headers.get("CSeq") == "1 ACK"
    ok = [m for m in h.sent(ALICE) if isinstance(m, Response) and m.status == 200][-1]
    assert parse_sdp(ok.body).media[0].port == PORTS["a"]
    assert "10.2.2.2" not in ok.to_bytes().decode()
    assert ok.headers.get("Contact") == "<sip:192.0.2.10:5060>"
    (call,) = h.b2bua.calls.values()
    assert call.state is CallState.ANSWERED and call.codec == "PCMU"


def test_fork_without_provisional_is_cancelled_once_it_rings(h: Harness) -> None:
    h.register("1002", BOB2, user="bob2")
    h.call()
    first = h.last_request(BOB1, "INVITE")
    second = h.last_request(BOB2, "INVITE")
    h.response_from(BOB1, reply(first, 200, body=ANSWER))
    assert not [m for m in h.sent(BOB2) if isinstance(m, Request) and m.method == "CANCEL"]
    h.response_from(BOB2, reply(second, 180, tag="b2"))  # RFC 3261 §9.1: now it may go
    assert h.last_request(BOB2, "CANCEL")


def test_late_2xx_of_a_losing_fork_is_acked_and_hung_up(h: Harness) -> None:
    h.register("1002", BOB2, user="bob2")
    h.call()
    first = h.last_request(BOB1, "INVITE")
    second = h.last_request(BOB2, "INVITE")
    h.response_from(BOB1, reply(first, 200, body=ANSWER))
    h.response_from(
        BOB2, reply(second, 200, tag="b2", body=ANSWER, contact="sip:b2@127.0.0.1:7003")
    )
    sent = h.sent(BOB2)
    methods = [m.method for m in sent if isinstance(m, Request)]
    assert "ACK" in methods and "BYE" in methods


def test_ack_stops_2xx_retransmission(h: Harness) -> None:
    answered(h)
    h.tick(10)
    assert h.statuses(ALICE) == []


def test_2xx_is_retransmitted_until_ack_then_the_call_ends(h: Harness) -> None:
    h.call()
    invite = h.last_request(BOB1, "INVITE")
    h.response_from(BOB1, reply(invite, 200, body=ANSWER))
    h.sent(ALICE)
    h.tick(2)  # T1 0.5: resent at 0.5, 1.5
    assert h.statuses(ALICE) == [200, 200]
    h.tick(40)  # 64*T1 = 32 s with no ACK: RFC 3261 §13.3.1.4, BYE
    assert h.last_request(BOB1, "BYE")
    (call,) = h.ended
    assert call.end_cause == "failed" and call.hung_up_by == "edge"


def test_callee_2xx_retransmission_gets_the_ack_again(h: Harness) -> None:
    invite, _ = answered(h)
    h.sent(BOB1)
    h.response_from(BOB1, reply(invite, 200, body=ANSWER))
    assert h.last_request(BOB1, "ACK")


# ---------------------------------------------------------------------------- failures


def test_busy_callee_maps_to_486(h: Harness) -> None:
    h.call()
    invite = h.last_request(BOB1, "INVITE")
    h.response_from(BOB1, reply(invite, 486))
    assert h.statuses(ALICE)[-1] == 486
    (call,) = h.ended
    assert (call.end_cause, call.sip_code) == ("busy", 486)


@pytest.mark.parametrize(
    ("callee", "caller", "cause"),
    [(600, 486, "busy"), (603, 603, "busy"), (488, 488, "failed"), (404, 480, "failed"),
     (503, 480, "failed"), (302, 480, "failed"), (480, 480, "no-answer")],
)  # fmt: skip
def test_final_responses_are_mapped(h: Harness, callee: int, caller: int, cause: str) -> None:
    h.call()
    h.response_from(BOB1, reply(h.last_request(BOB1, "INVITE"), callee))
    assert h.statuses(ALICE)[-1] == caller
    assert h.ended[0].end_cause == cause


def test_all_forks_must_fail_before_the_caller_hears(h: Harness) -> None:
    h.register("1002", BOB2, user="bob2")
    h.call()
    h.response_from(BOB1, reply(h.last_request(BOB1, "INVITE"), 486))
    assert 486 not in h.statuses(ALICE)
    h.response_from(BOB2, reply(h.last_request(BOB2, "INVITE"), 480, tag="b2"))
    assert h.statuses(ALICE)[-1] == 486


def test_no_answer_timeout_gives_480_and_cancels(h: Harness) -> None:
    h.call()
    invite = h.last_request(BOB1, "INVITE")
    h.response_from(BOB1, reply(invite, 180))
    h.sent(ALICE)
    h.tick(21)
    assert 480 in h.statuses(ALICE)
    assert h.last_request(BOB1, "CANCEL")
    assert h.ended[0].end_cause == "no-answer"


def test_callee_that_never_answers_times_out_as_408(h: Harness) -> None:
    h.config = parse_config(
        CONFIG.replace("no_answer_timeout = 20", "no_answer_timeout = 90"), Path(".")
    )
    h.call()
    h.tick(40)  # Timer B = 64*T1 = 32 s
    assert h.statuses(ALICE)[-1] == 480


def test_cancel_before_answer(h: Harness) -> None:
    h.call()
    invite = h.last_request(BOB1, "INVITE")
    h.response_from(BOB1, reply(invite, 180))
    h.request_from(
        ALICE,
        "CANCEL sip:1002@voxedge.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:7001;branch=z9hG4bKinv2;rport\r\nMax-Forwards: 70\r\n"
        'From: "Alice" <sip:1001@voxedge.test>;tag=atag\r\nTo: <sip:1002@voxedge.test>\r\n'
        "Call-ID: alice-call-1@10.1.1.1\r\nCSeq: 2 CANCEL\r\nContent-Length: 0\r\n\r\n",
    )
    statuses = h.statuses(ALICE)
    assert 200 in statuses and 487 in statuses
    assert h.last_request(BOB1, "CANCEL")
    (call,) = h.ended
    assert (call.end_cause, call.hung_up_by, call.sip_code) == ("cancelled", "caller", 487)


def test_cancel_of_nothing_gets_481(h: Harness) -> None:
    h.request_from(
        ALICE,
        "CANCEL sip:1002@voxedge.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:7001;branch=z9hG4bKnone;rport\r\nMax-Forwards: 70\r\n"
        "From: <sip:1001@voxedge.test>;tag=atag\r\nTo: <sip:1002@voxedge.test>\r\n"
        "Call-ID: x\r\nCSeq: 2 CANCEL\r\nContent-Length: 0\r\n\r\n",
    )
    assert h.statuses(ALICE) == [481]


def test_media_failure_gives_503(h: Harness) -> None:
    h.invite()
    challenge = h.sent(ALICE)[-1]
    assert isinstance(challenge, Response)
    auth = authorization(
        challenge, "1001", "alice-secret", uri="sip:1002@voxedge.test", method="INVITE"
    )
    h._apply = lambda actions: h.wire.extend(
        (a.flow, a.data) for a in actions if isinstance(a, Send)
    )  # type: ignore[method-assign]
    h.invite(auth=auth, branch="z9hG4bKinv2", cseq=2)
    (call,) = h.b2bua.calls.values()
    h._apply(h.b2bua.media_failed(call, h.now))
    assert h.statuses(ALICE)[-1] == 503


# ---------------------------------------------------------------------------- in the dialog


def test_bye_from_callee_is_mirrored(h: Harness) -> None:
    invite, _ = answered(h)
    bob_sends(h, "BYE", invite, cseq=1, branch="z9hG4bKb1")
    assert h.statuses(BOB1) == [200]
    bye = h.last_request(ALICE, "BYE")
    assert bye.headers.get("Call-ID") == "alice-call-1@10.1.1.1"
    (call,) = h.ended
    assert (call.end_cause, call.hung_up_by, call.sip_code) == ("normal", "callee", 200)
    assert not h.b2bua.calls


def test_bye_from_caller_is_mirrored(h: Harness) -> None:
    invite, ok = answered(h)
    alice_sends(h, "BYE", ok, cseq=3, branch="z9hG4bKbye")
    assert h.statuses(ALICE) == [200]
    bye = h.last_request(BOB1, "BYE")
    assert bye.headers.get("Call-ID") == invite.headers.get("Call-ID")
    assert h.ended[0].hung_up_by == "caller"


def test_request_in_unknown_dialog_gets_481(h: Harness) -> None:
    _invite, ok = answered(h)
    alice_sends(h, "BYE", ok, cseq=3, branch="z9hG4bKbye")
    alice_sends(h, "BYE", ok, cseq=4, branch="z9hG4bKbye2")
    assert h.statuses(ALICE)[-1] == 481


def test_reinvite_hold_and_resume_are_mirrored(h: Harness) -> None:
    _invite, ok = answered(h)
    alice_sends(h, "INVITE", ok, cseq=3, branch="z9hG4bKh1", body=sdp_with("sendonly"))
    reinvite = h.last_request(BOB1, "INVITE")
    sdp = parse_sdp(reinvite.body)
    assert sdp.media[0].direction == "sendonly" and sdp.media[0].port == PORTS["b"]
    assert sdp.origin.session_version == 2  # RFC 3264 §8: changed, so one up
    (call,) = h.b2bua.calls.values()
    assert call.held
    h.response_from(BOB1, reply(reinvite, 200, body=sdp_with("recvonly", ANSWER)))
    assert h.last_request(BOB1, "ACK").headers.get("CSeq") == (
        reinvite.headers.get("CSeq") or ""
    ).replace("INVITE", "ACK")
    back = [m for m in h.sent(ALICE) if isinstance(m, Response)][-1]
    assert back.status == 200 and parse_sdp(back.body).media[0].direction == "recvonly"
    h.request_from(ALICE, ack_for(back, "z9hG4bKhack"))
    h.request_from(
        ALICE,
        in_dialog(
            "INVITE", ok, from_caller=True, cseq=4, branch="z9hG4bKh2", via_port=7001, body=OFFER
        ),
    )
    assert not call.held
    relatched = [a for a in h.actions if isinstance(a, MediaTarget) and a.relatch]
    assert relatched and relatched[0].leg == "a"


def test_glare_gets_491(h: Harness) -> None:
    invite, ok = answered(h)
    alice_sends(h, "INVITE", ok, cseq=3, branch="z9hG4bKg1", body=sdp_with("sendonly"))
    reinvite = h.last_request(BOB1, "INVITE")
    bob_sends(h, "INVITE", invite, cseq=1, branch="z9hG4bKg2", body=ANSWER)
    assert h.statuses(BOB1)[-1] == 491
    h.response_from(BOB1, reply(reinvite, 491))
    assert h.statuses(ALICE)[-1] == 491  # RFC 3261 §14.1: the caller retries later


def test_reinvite_without_offer_gets_our_last_sdp(h: Harness) -> None:
    _, ok = answered(h)
    alice_sends(h, "INVITE", ok, cseq=3, branch="z9hG4bKn1")
    back = [m for m in h.sent(ALICE) if isinstance(m, Response)][-1]
    assert back.status == 200 and back.body == ok.body
    assert not [m for m in h.sent(BOB1) if isinstance(m, Request) and m.method == "INVITE"]


def test_info_and_options_are_relayed(h: Harness) -> None:
    invite, ok = answered(h)
    h.request_from(
        ALICE,
        in_dialog("INFO", ok, from_caller=True, cseq=3, branch="z9hG4bKi1", via_port=7001,
                  body="Signal=5\r\nDuration=160\r\n", content_type="application/dtmf-relay"),
    )  # fmt: skip
    info = h.last_request(BOB1, "INFO")
    assert info.body == b"Signal=5\r\nDuration=160\r\n"
    assert info.headers.get("Content-Type") == "application/dtmf-relay"
    h.response_from(BOB1, reply(info, 200))
    assert h.statuses(ALICE)[-1] == 200
    h.request_from(
        BOB1,
        in_dialog("OPTIONS", invite, from_caller=False, cseq=1, branch="z9hG4bKo1", via_port=7002),
    )
    options = h.last_request(ALICE, "OPTIONS")
    h.response_from(ALICE, reply(options, 200))
    assert h.statuses(BOB1)[-1] == 200


def test_relayed_request_answered_481_ends_the_call(h: Harness) -> None:
    _invite, ok = answered(h)
    alice_sends(h, "OPTIONS", ok, cseq=3, branch="z9hG4bKo2")
    h.response_from(BOB1, reply(h.last_request(BOB1, "OPTIONS"), 481))
    sent = h.sent(ALICE)
    assert [m.status for m in sent if isinstance(m, Response)] == [481]
    assert [m.method for m in sent if isinstance(m, Request)] == ["BYE"]
    assert h.ended[0].end_cause == "failed"


def test_delayed_offer_answer_travels_in_the_ack(h: Harness) -> None:
    h.call(body="")
    invite = h.last_request(BOB1, "INVITE")
    assert invite.body == b""
    h.response_from(BOB1, reply(invite, 200, body=ANSWER))
    assert not [m for m in h.sent(BOB1) if isinstance(m, Request) and m.method == "ACK"]
    ok = [m for m in h.sent(ALICE) if isinstance(m, Response) and m.status == 200][-1]
    assert parse_sdp(ok.body).media[0].port == PORTS["a"]
    ack = ack_for(ok, "z9hG4bKdack").replace("Content-Length: 0\r\n\r\n", "")
    ack += f"Content-Type: application/sdp\r\nContent-Length: {len(OFFER)}\r\n\r\n{OFFER}"
    h.request_from(ALICE, ack)
    ack_b = h.last_request(BOB1, "ACK")
    assert parse_sdp(ack_b.body).media[0].port == PORTS["b"]


def test_media_timeout_hangs_up_both_sides(h: Harness) -> None:
    answered(h)
    (call,) = h.b2bua.calls.values()
    h._apply(h.b2bua.media_timeout(call, h.now))
    assert h.last_request(ALICE, "BYE") and h.last_request(BOB1, "BYE")
    assert (call.end_cause, call.hung_up_by) == ("media-timeout", "edge")


# ---------------------------------------------------------------------------- transfer

CAROL = BOB2


def refer(h: Harness, invite: Request, target: str, cseq: int = 2) -> None:
    """The callee (BOB1) asks the edge to transfer the caller to ``target``."""
    text = in_dialog(
        "REFER", invite, from_caller=False, cseq=cseq, branch=f"z9hG4bKr{cseq}", via_port=7002
    )
    text = text.replace("Content-Length", f"Refer-To: <{target}>\r\nContent-Length")
    h.request_from(BOB1, text)


def test_blind_transfer_puts_the_target_in_the_transferors_place(h: Harness) -> None:
    h.register("1003", CAROL, user="carol")
    invite, _ = answered(h)
    refer(h, invite, "sip:1003@voxedge.test")
    to_bob = h.sent(BOB1)
    assert [m.status for m in to_bob if isinstance(m, Response)] == [202]
    (trying,) = [m for m in to_bob if isinstance(m, Request) and m.method == "NOTIFY"]
    assert trying.method == "NOTIFY" and trying.body == b"SIP/2.0 100 Trying\r\n"
    assert trying.headers.get("Event") == "refer"
    assert (trying.headers.get("Subscription-State") or "").startswith("active")
    h.response_from(BOB1, reply(trying, 200))
    to_carol = h.last_request(CAROL, "INVITE")
    assert (to_carol.headers.get("From") or "").startswith("<sip:1001@voxedge.test>")
    assert parse_sdp(to_carol.body).media[0].port == PORTS["b"]
    h.response_from(CAROL, reply(to_carol, 180, tag="c1", contact="sip:carol@127.0.0.1:7003"))
    h.response_from(
        CAROL, reply(to_carol, 200, tag="c1", body=ANSWER, contact="sip:carol@127.0.0.1:7003")
    )
    assert h.last_request(CAROL, "ACK")
    done = h.last_request(BOB1, "NOTIFY")
    assert done.body == b"SIP/2.0 200 OK\r\n"
    assert (done.headers.get("Subscription-State") or "").startswith("terminated")
    relatched = [a for a in h.actions if isinstance(a, MediaTarget) and a.relatch]
    assert relatched[-1].leg == "b"
    # The transferor leaves; the call goes on between Alice and Carol.
    bob_sends(h, "BYE", invite, cseq=3, branch="z9hG4bKbb")
    assert h.statuses(BOB1) == [200]
    assert not h.ended and h.sent(ALICE) == []
    carol_dialog = to_carol
    bye = in_dialog(
        "BYE", carol_dialog, from_caller=False, cseq=1, branch="z9hG4bKcb", via_port=7003
    )
    h.request_from(CAROL, bye.replace("tag=btag", "tag=c1"))
    assert h.last_request(ALICE, "BYE")
    (call,) = h.ended
    assert call.hung_up_by == "callee" and call.b.uri == "sip:1003@voxedge.test"


def test_failed_blind_transfer_reports_and_keeps_the_call(h: Harness) -> None:
    h.register("1003", CAROL, user="carol")
    invite, _ = answered(h)
    refer(h, invite, "sip:1003@voxedge.test")
    h.sent(BOB1)
    h.response_from(CAROL, reply(h.last_request(CAROL, "INVITE"), 486, tag="c1"))
    notify = h.last_request(BOB1, "NOTIFY")
    assert notify.body == b"SIP/2.0 486 Busy Here\r\n"
    (call,) = h.b2bua.calls.values()
    assert call.state is CallState.ANSWERED and call.b.uri == "sip:1002@voxedge.test"


@pytest.mark.parametrize(
    ("target", "status"),
    [("sip:1999@voxedge.test", 404), ("sip:1003@voxedge.test", 480),
     ("sip:1003@evil.example", 403)],
)  # fmt: skip
def test_refer_refusals(h: Harness, target: str, status: int) -> None:
    invite, _ = answered(h)
    refer(h, invite, target)
    assert h.statuses(BOB1) == [status]


def test_refer_without_refer_to_gets_400(h: Harness) -> None:
    invite, _ = answered(h)
    h.request_from(
        BOB1,
        in_dialog("REFER", invite, from_caller=False, cseq=2, branch="z9hG4bKr", via_port=7002),
    )
    assert h.statuses(BOB1) == [400]


# ---------------------------------------------------------------------------- session timers


def test_session_interval_below_min_se_gets_422(h: Harness) -> None:
    h.call(extra="Supported: timer\r\nSession-Expires: 60")
    (response,) = [m for m in h.sent(ALICE) if isinstance(m, Response) and m.status >= 200]
    assert response.status == 422 and response.headers.get("Min-SE") == "90"


def test_session_timers_are_negotiated_per_leg_and_refreshed(h: Harness) -> None:
    h.call(extra="Supported: timer\r\nSession-Expires: 1800;refresher=uac")  # fmt: skip
    invite = h.last_request(BOB1, "INVITE")
    assert invite.headers.get("Supported") == "timer"
    assert invite.headers.get("Session-Expires") is not None
    # The callee picks 120 s and has the edge (its UAC) refresh.
    response = reply(invite, 200, body=ANSWER).replace(
        "Content-Type", "Require: timer\r\nSession-Expires: 120;refresher=uac\r\nContent-Type"
    )
    h.response_from(BOB1, response)
    ok = [m for m in h.sent(ALICE) if isinstance(m, Response) and m.status == 200][-1]
    assert ok.headers.get("Session-Expires") == "1800;refresher=uac"
    assert ok.headers.get("Require") == "timer"
    h.request_from(ALICE, ack_for(ok, "z9hG4bKack1"))
    h.sent(BOB1)
    h.tick(61)  # RFC 4028 §10: the refresher refreshes at half the interval
    refresh = h.last_request(BOB1, "INVITE")
    assert refresh.body == invite.body  # same SDP, same o= version: nothing changes
    h.response_from(BOB1, reply(refresh, 200, body=ANSWER).replace(
        "Content-Type", "Session-Expires: 120;refresher=uac\r\nContent-Type"))  # fmt: skip
    assert h.last_request(BOB1, "ACK")
    assert not h.ended


def test_session_expires_without_refresh_ends_the_call(h: Harness) -> None:
    h.call(extra="Supported: timer\r\nSession-Expires: 90;refresher=uac")  # fmt: skip
    invite = h.last_request(BOB1, "INVITE")
    h.response_from(BOB1, reply(invite, 200, body=ANSWER))
    ok = [m for m in h.sent(ALICE) if isinstance(m, Response) and m.status == 200][-1]
    h.request_from(ALICE, ack_for(ok, "z9hG4bKack1"))
    h.tick(100)  # the caller never refreshed: BYE at 90 - 30 s (§10)
    assert h.last_request(ALICE, "BYE") and h.last_request(BOB1, "BYE")
    assert h.ended[0].end_cause == "failed"


def test_422_from_the_callee_is_retried_with_its_min_se(h: Harness) -> None:
    h.call()
    invite = h.last_request(BOB1, "INVITE")
    too_small = reply(invite, 422).replace("Content-Length", "Min-SE: 2000\r\nContent-Length")
    h.response_from(BOB1, too_small)
    retry = h.last_request(BOB1, "INVITE")
    assert retry.headers.get("CSeq") == "2 INVITE"
    assert retry.headers.get("Session-Expires") == "2000"
    assert retry.headers.get("Call-ID") == invite.headers.get("Call-ID")
    assert 422 not in h.statuses(ALICE)
    h.response_from(BOB1, reply(retry, 200, body=ANSWER))
    assert [m.status for m in h.sent(ALICE) if isinstance(m, Response)][-1] == 200


def test_attended_transfer_joins_the_two_far_ends(h: Harness) -> None:
    h.register("1003", CAROL, user="carol")
    invite1, _ = answered(h)  # call 1: Alice -> Bob
    call1 = next(iter(h.b2bua.calls.values()))
    # Call 2: Bob -> Carol, answered.
    h.call(target="1003", user="1002", password="bob-secret", flow=BOB1, call_id="bob-call-2")
    invite2 = h.last_request(CAROL, "INVITE")
    h.response_from(
        CAROL, reply(invite2, 200, tag="c1", body=ANSWER, contact="sip:carol@127.0.0.1:7003")
    )
    ok2 = [m for m in h.sent(BOB1) if isinstance(m, Response) and m.status == 200][-1]
    h.request_from(BOB1, ack_for(ok2, "z9hG4bKack2"))
    call2 = next(c for c in h.b2bua.calls.values() if c is not call1)
    h.sent(CAROL)
    # Bob refers Alice (call 1) to Carol, replacing his dialog of call 2 with the edge.
    edge_tag = (ok2.headers.get("To") or "").split("tag=")[1]
    replaces = f"bob-call-2%3Bto-tag%3D{edge_tag}%3Bfrom-tag%3Datag"
    refer(h, invite1, f"sip:1003@voxedge.test?Replaces={replaces}")
    assert 202 in h.statuses(BOB1)
    reinvite = h.last_request(CAROL, "INVITE")
    assert reinvite.headers.get("Call-ID") == invite2.headers.get("Call-ID")  # her dialog
    offer = parse_sdp(reinvite.body)
    assert offer.media[0].port == call1.media_ports["b"]  # now call 1's relay
    assert offer.media[0].direction == "sendrecv"
    h.response_from(
        CAROL, reply(reinvite, 200, tag="c1", body=ANSWER, contact="sip:carol@127.0.0.1:7003")
    )
    assert h.last_request(CAROL, "ACK")
    to_bob = [m for m in h.sent(BOB1) if isinstance(m, Request) and m.method == "NOTIFY"]
    assert to_bob[-1].body == b"SIP/2.0 200 OK\r\n"
    assert call2.state is CallState.ENDED and call2 in h.ended
    assert call1.b.uri == "sip:1003@voxedge.test"
    assert h.sent(CAROL) == [] and h.sent(ALICE) == []  # nobody else heard a thing
    # Carol hangs up: Alice hears it.
    bye = in_dialog("BYE", invite2, from_caller=False, cseq=5, branch="z9hG4bKcb", via_port=7003)
    h.request_from(CAROL, bye.replace("tag=btag", "tag=c1"))
    assert h.last_request(ALICE, "BYE")
    assert call1 in h.ended


def test_attended_transfer_to_an_unknown_dialog_gets_481(h: Harness) -> None:
    invite, _ = answered(h)
    refer(h, invite, "sip:1003@voxedge.test?Replaces=nope%3Bto-tag%3Da%3Bfrom-tag%3Db")
    assert h.statuses(BOB1) == [481]


def test_unknown_body_type_gets_415_with_accept(h: Harness) -> None:
    h.call(body="hello", content_type="text/plain")
    response = [m for m in h.sent(ALICE) if isinstance(m, Response)][-1]
    assert response.status == 415 and response.headers.get("Accept") == "application/sdp"


def test_accept_without_sdp_gets_406(h: Harness) -> None:
    h.call(extra="Accept: text/nobodyKnowsThis")
    response = [m for m in h.sent(ALICE) if isinstance(m, Response)][-1]
    assert response.status == 406 and response.headers.get("Accept") == "application/sdp"


# ---------------------------------------------------------------------------- codecs, DTMF


def test_pcma_caller_and_pcmu_callee_are_transcoded(h: Harness) -> None:
    h.call(body=OFFER.replace("RTP/AVP 0 8 101", "RTP/AVP 8 101"))
    invite = h.last_request(BOB1, "INVITE")
    assert parse_sdp(invite.body).media[0].formats == ["8", "101", "0"]  # PCMU added
    h.response_from(BOB1, reply(invite, 200, body=ANSWER))  # bob picks PCMU
    ok = [m for m in h.sent(ALICE) if isinstance(m, Response) and m.status == 200][-1]
    assert parse_sdp(ok.body).media[0].formats == ["8", "101"]  # alice keeps PCMA
    (planned,) = [a for a in h.actions if isinstance(a, MediaPlanned)]
    assert planned.plan.payload_maps == {
        "b": {0: (8, "ulaw_to_alaw")},
        "a": {8: (0, "alaw_to_ulaw")},
    }


def test_dtmf_heard_on_a_leg_goes_as_info_to_the_other(h: Harness) -> None:
    answered(h)
    (call,) = h.b2bua.calls.values()
    h._apply(h.b2bua.dtmf(call, "a", "5", 160, h.now))
    info = h.last_request(BOB1, "INFO")
    assert info.headers.get("Content-Type") == "application/dtmf-relay"
    assert info.body == b"Signal=5\r\nDuration=160\r\n"


def test_callee_without_telephone_event_gets_caller_dtmf_as_info(h: Harness) -> None:
    h.call()
    invite = h.last_request(BOB1, "INVITE")
    no_events = ANSWER.replace("RTP/AVP 0 101", "RTP/AVP 0").replace(
        "a=rtpmap:101 telephone-event/8000\r\n", ""
    )
    h.response_from(BOB1, reply(invite, 200, body=no_events))
    (planned,) = [a for a in h.actions if isinstance(a, MediaPlanned)]
    assert planned.plan.dtmf_to_info == {"a": 101}


def test_update_is_mirrored_with_its_offer(h: Harness) -> None:
    invite, _ = answered(h)
    h.request_from(
        BOB1,
        in_dialog("UPDATE", invite, from_caller=False, cseq=1, branch="z9hG4bKu1", via_port=7002,
                  body=sdp_with("inactive", ANSWER)),
    )  # fmt: skip
    update = h.last_request(ALICE, "UPDATE")
    offer = parse_sdp(update.body)
    assert offer.media[0].direction == "inactive" and offer.media[0].port == PORTS["a"]
    assert update.headers.get("Call-ID") == "alice-call-1@10.1.1.1"
    (call,) = h.b2bua.calls.values()
    assert call.held
    h.response_from(ALICE, reply(update, 200, body=sdp_with("inactive")))
    back = [m for m in h.sent(BOB1) if isinstance(m, Response)][-1]
    assert back.status == 200 and parse_sdp(back.body).media[0].port == PORTS["b"]
    assert not [m for m in h.sent(ALICE) if isinstance(m, Request) and m.method == "ACK"]


def test_legacy_hold_with_c_zero_is_relayed_as_a_direction(h: Harness) -> None:
    _, ok = answered(h)
    legacy = OFFER.replace("c=IN IP4 10.1.1.1", "c=IN IP4 0.0.0.0")  # RFC 2543 hold
    h.request_from(
        ALICE,
        in_dialog("INVITE", ok, from_caller=True, cseq=3, branch="z9hG4bKl1", via_port=7001,
                  body=legacy),
    )  # fmt: skip
    relayed = parse_sdp(h.last_request(BOB1, "INVITE").body)
    assert relayed.connection is not None and relayed.connection.address == "192.0.2.20"
    assert relayed.media[0].direction == "sendonly"  # RFC 3264 §8.4: c=0.0.0.0 sendrecv
    (call,) = h.b2bua.calls.values()
    assert call.held
    targets = [a for a in h.actions if isinstance(a, MediaTarget) and a.leg == "a"]
    assert targets[-1].address is None  # nothing to send to while held


def test_bad_session_expires_gets_400_naming_it(h: Harness) -> None:
    h.call(extra="Session-Expires: soon")
    response = [m for m in h.sent(ALICE) if isinstance(m, Response)][-1]
    assert response.status == 400 and "Session-Expires" in response.reason


def test_bad_replaces_in_refer_to_gets_400(h: Harness) -> None:
    invite, _ = answered(h)
    refer(h, invite, "sip:1003@voxedge.test?Replaces=only-a-call-id")
    assert h.statuses(BOB1) == [400]


def test_in_dialog_body_without_content_type_gets_400(h: Harness) -> None:
    _, ok = answered(h)
    text = in_dialog(
        "INFO", ok, from_caller=True, cseq=3, branch="z9hG4bKi9", via_port=7001, body="Signal=5\r\n"
    ).replace("Content-Type: application/sdp\r\n", "")
    h.request_from(ALICE, text)
    response = [m for m in h.sent(ALICE) if isinstance(m, Response)][-1]
    assert response.status == 400 and "Content-Type" in response.reason
    assert not [m for m in h.sent(BOB1) if isinstance(m, Request) and m.method == "INFO"]


# ---------------------------------------------------------------------------- odd SDP

_NO_EVENTS = OFFER.replace("a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n", "")
ODD_SDP = {
    "no media": "v=0\r\no=x 1 1 IN IP4 10.9.9.9\r\ns=-\r\nc=IN IP4 10.9.9.9\r\nt=0 0\r\n",
    "rejected audio": OFFER.replace("m=audio 4000", "m=audio 0"),
    "video only": OFFER.replace("m=audio", "m=video"),
    "host name in c=": OFFER.replace("c=IN IP4 10.1.1.1", "c=IN IP4 phone.example.com"),
    "no c= at all": OFFER.replace("c=IN IP4 10.1.1.1\r\n", ""),
    "udptl": _NO_EVENTS.replace("RTP/AVP 0 8 101", "udptl t38"),
    "G.729 only": _NO_EVENTS.replace("RTP/AVP 0 8 101", "RTP/AVP 18"),
    "two audio streams": OFFER + "m=audio 4002 RTP/AVP 0\r\n",
    "events only": OFFER.replace("RTP/AVP 0 8 101", "RTP/AVP 101"),
    "multicast c=": OFFER.replace("c=IN IP4 10.1.1.1", "c=IN IP4 224.0.0.1/127"),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(ODD_SDP))
def test_odd_offers_get_a_final_answer_never_an_exception(h: Harness, name: str) -> None:
    h.call(body=ODD_SDP[name])
    invites = [m for m in h.sent(BOB1) if isinstance(m, Request) and m.method == "INVITE"]
    if invites:  # forwarded: the callee answers; the call must complete or fail cleanly
        h.response_from(BOB1, reply(invites[-1], 200, body=ANSWER))
        h.tick(1)
    finals = [m.status for m in h.sent(ALICE) if isinstance(m, Response) and m.status >= 200]
    assert finals, name


@pytest.mark.parametrize("name", sorted(ODD_SDP))
def test_odd_answers_never_raise(h: Harness, name: str) -> None:
    h.call()
    invite = h.last_request(BOB1, "INVITE")
    h.response_from(BOB1, reply(invite, 200, body=ODD_SDP[name]))
    finals = [m.status for m in h.sent(ALICE) if isinstance(m, Response) and m.status >= 200]
    assert finals, name


def test_answer_with_no_codec_in_common_fails_the_call_with_488(h: Harness) -> None:
    h.call()
    invite = h.last_request(BOB1, "INVITE")
    g729 = ANSWER.replace("RTP/AVP 0 101", "RTP/AVP 18")  # not offered, not transcodable
    h.response_from(BOB1, reply(invite, 200, body=g729))
    assert h.statuses(ALICE)[-1] == 488
    sent = [m.method for m in h.sent(BOB1) if isinstance(m, Request)]
    assert "ACK" in sent and "BYE" in sent  # RFC 3261 §13.2.2.4: ACK, then end it


def test_a_transfer_target_gets_its_own_session_timer(h: Harness) -> None:
    h.register("1003", CAROL, user="carol")
    invite, _ = answered(h)
    refer(h, invite, "sip:1003@voxedge.test")
    to_carol = h.last_request(CAROL, "INVITE")
    assert to_carol.headers.get("Session-Expires") is not None  # RFC 4028 §7.1
    answer = reply(to_carol, 200, tag="c1", body=ANSWER, contact="sip:carol@127.0.0.1:7003")
    h.response_from(
        CAROL, answer.replace("Content-Type", "Session-Expires: 120;refresher=uac\r\nContent-Type")
    )
    h.sent(CAROL)
    h.tick(61)  # the edge refreshes the target's leg at half its interval
    assert h.last_request(CAROL, "INVITE").headers.get("Call-ID") == to_carol.headers.get("Call-ID")


def test_shutdown_ends_every_call_and_reports_it(h: Harness) -> None:
    answered(h)
    h.register("1003", CAROL, user="carol")
    dave = Flow("udp", ("127.0.0.1", 7009), EDGE)
    h.call(target="1003", user="1002", password="bob-secret", flow=dave, call_id="second")
    h.sent(dave)  # the second call is still ringing
    h._apply(h.b2bua.shutdown(h.now))
    assert h.last_request(BOB1, "BYE") and h.last_request(ALICE, "BYE")  # the answered call
    assert h.statuses(dave)[-1] == 503  # the ringing one
    assert len(h.ended) == 2 and not h.b2bua.calls


def test_the_caller_can_transfer_the_callee(h: Harness) -> None:
    h.register("1003", CAROL, user="carol")
    _, ok = answered(h)
    text = in_dialog("REFER", ok, from_caller=True, cseq=3, branch="z9hG4bKra", via_port=7001)
    h.request_from(
        ALICE, text.replace("Content-Length", "Refer-To: <sip:1003@voxedge.test>\r\nContent-Length")
    )
    assert 202 in h.statuses(ALICE)
    to_carol = h.last_request(CAROL, "INVITE")
    offer = parse_sdp(to_carol.body)
    assert offer.media[0].port == PORTS["a"]  # the caller's side of the relay
    assert (to_carol.headers.get("From") or "").startswith("<sip:1002@voxedge.test>")  # Bob's
    h.response_from(
        CAROL, reply(to_carol, 200, tag="c1", body=OFFER, contact="sip:carol@127.0.0.1:7003")
    )
    (call,) = h.b2bua.calls.values()
    assert call.a.uri == "sip:1003@voxedge.test" and call.b.uri == "sip:1002@voxedge.test"
    assert h.last_request(ALICE, "NOTIFY").body == b"SIP/2.0 200 OK\r\n"
