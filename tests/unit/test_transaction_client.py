"""Client transactions (RFC 3261 §17.1, RFC 6026 §7.2) under a fake clock."""

from __future__ import annotations

import pytest

from sip.flow import Flow
from sip.headers import BRANCH_COOKIE
from sip.message import Request
from sip.transaction import (
    ClientTransaction,
    Event,
    ResponseReceived,
    Send,
    TimerConfig,
    TransactionLayer,
    TransactionState,
    TransactionTableFull,
    TransactionTerminated,
    TransactionTimeout,
    TransportError,
    new_branch,
)
from tests.unit.test_transaction_support import (
    BRANCH,
    T0,
    TCP,
    UDP,
    advance,
    kinds,
    layer,
    only_response_received,
    parsed,
    request,
    response,
    send_times,
    sends,
)

S = TransactionState


def start(
    method: str = "INVITE", flow: Flow = UDP, timers: TimerConfig | None = None
) -> tuple[TransactionLayer, ClientTransaction, list[Event]]:
    engine = layer(timers)
    txn, events = engine.send_request(request(method), flow, T0)
    return engine, txn, events


# ---------------------------------------------------------------------------- INVITE client


def test_invite_client_sends_the_request_once_on_start() -> None:
    invite = request()
    engine = layer()
    txn, events = engine.send_request(invite, UDP, T0)
    assert kinds(events) == ["Send"]
    assert events[0] == Send(UDP, invite.to_bytes(), txn)
    assert txn.state is S.CALLING and txn.is_invite and txn.method == "INVITE"
    assert txn.request is invite and txn.flow is UDP and txn.key == (BRANCH, "INVITE")
    assert len(engine) == 1


def test_invite_client_retransmits_with_doubling_until_timer_b() -> None:
    engine, txn, events = start()
    timed = advance(engine, T0 + 100)
    # §17.1.1.2: Timer A = T1, 2*T1, 4*T1 ... (no T2 cap) until Timer B = 64*T1.
    assert send_times(timed) == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert all(e.data == sends(events)[0].data for e in sends([e for _, e in timed]))
    tail = [(round(t - T0, 6), type(e).__name__) for t, e in timed[-2:]]
    assert tail == [(32.0, "TransactionTimeout"), (32.0, "TransactionTerminated")]
    assert timed[-2][1] == TransactionTimeout(txn)
    assert txn.state is S.TERMINATED and len(engine) == 0
    assert engine.next_deadline() is None


def test_invite_client_stops_retransmitting_on_a_provisional_response() -> None:
    engine, txn, _ = start()
    event = only_response_received(engine.receive_response(response(180), UDP, T0 + 0.2))
    assert event == ResponseReceived(txn, event.response, UDP)
    assert txn.state is S.PROCEEDING and txn.last_response is event.response
    # §17.1.1.2: no more retransmissions and Timer B no longer applies in Proceeding.
    assert engine.next_deadline() is None
    assert advance(engine, T0 + 1000) == []
    assert txn.state is S.PROCEEDING


def test_invite_client_passes_every_provisional_response_up() -> None:
    engine, txn, _ = start()
    for status in (100, 180, 183, 180):
        assert only_response_received(engine.receive_response(response(status), UDP, T0))
    assert txn.state is S.PROCEEDING


def test_ack_for_non_2xx_is_generated_with_same_branch_and_to_tag() -> None:
    engine = layer()
    invite = request(
        extra=(
            "Route: <sip:proxy1.127.0.0.1;lr>\r\n"
            "Route: <sip:proxy2.127.0.0.1;lr>\r\n"
            "Content-Type: application/sdp\r\n"
        ),
        body="v=0\r\n",
    )
    txn, _ = engine.send_request(invite, UDP, T0)
    engine.receive_response(response(180, to_tag="callee-9"), UDP, T0 + 0.1)
    events = engine.receive_response(response(486, to_tag="callee-9"), UDP, T0 + 0.2)
    assert kinds(events) == ["ResponseReceived", "Send"]
    assert txn.state is S.COMPLETED
    ack_send = events[1]
    assert isinstance(ack_send, Send) and ack_send.flow is UDP and ack_send.transaction is txn
    ack = parsed(ack_send)
    assert isinstance(ack, Request)
    # §17.1.1.3: same Request-URI, Call-ID, From, CSeq number; the INVITE's top Via only; the
    # response's To (with its tag); the INVITE's Route header fields; no body.
    assert (ack.method, ack.uri) == ("ACK", invite.uri)
    assert ack.headers.get_all("Via") == [f"SIP/2.0/UDP 127.0.0.1:5070;branch={BRANCH}"]
    assert ack.headers.get("To") == "<sip:bob@127.0.0.1>;tag=callee-9"
    assert ack.headers.get("From") == invite.headers.get("From")
    assert ack.headers.get("Call-ID") == invite.headers.get("Call-ID")
    assert ack.headers.get("CSeq") == "1 ACK"
    assert ack.headers.get_all("Route") == [
        "<sip:proxy1.127.0.0.1;lr>",
        "<sip:proxy2.127.0.0.1;lr>",
    ]
    assert ack.body == b"" and ack.headers.get("Content-Type") is None
    assert ack.headers.get("Content-Length") == "0"


def test_invite_client_resends_ack_for_each_retransmitted_final_and_absorbs_it() -> None:
    engine, txn, _ = start()
    first = engine.receive_response(response(503), UDP, T0 + 0.1)
    ack = first[1]
    assert isinstance(ack, Send)
    for i in range(3):
        again = engine.receive_response(response(503), UDP, T0 + 0.6 + i)
        assert again == [Send(UDP, ack.data, txn)]  # §17.1.1.2: not passed up again
    # Provisional responses in Completed are absorbed.
    assert engine.receive_response(response(180), UDP, T0 + 4) == []


def test_timer_d_terminates_a_completed_invite_client_after_32_seconds() -> None:
    engine, _, _ = start()
    engine.receive_response(response(404), UDP, T0 + 1.0)
    assert engine.next_deadline() == pytest.approx(T0 + 33.0)
    timed = advance(engine, T0 + 100)
    assert [(round(t - T0, 6), type(e).__name__) for t, e in timed] == [
        (33.0, "TransactionTerminated")
    ]
    # After Timer D, a late retransmission matches nothing.
    late = only_response_received(engine.receive_response(response(404), UDP, T0 + 40))
    assert late.transaction is None


def test_timer_d_on_a_reliable_flow_is_zero() -> None:
    engine, txn, _ = start(flow=TCP)
    events = engine.receive_response(response(480), TCP, T0 + 1)
    assert kinds(events) == ["ResponseReceived", "Send", "TransactionTerminated"]
    assert txn.state is S.TERMINATED and len(engine) == 0


def test_timer_d_follows_the_configured_value() -> None:
    engine, _, _ = start(timers=TimerConfig(timer_d_unreliable=40.0))
    engine.receive_response(response(404), UDP, T0)
    assert engine.next_deadline() == pytest.approx(T0 + 40.0)


def test_2xx_moves_invite_client_to_accepted_and_passes_retransmissions_until_timer_m() -> None:
    engine, txn, _ = start()
    first = only_response_received(engine.receive_response(response(200), UDP, T0 + 1))
    assert first.transaction is txn and txn.state is S.ACCEPTED
    # RFC 6026 §7.2: no ACK from the transaction for a 2xx; each 2xx (retransmission or
    # another fork) goes to the TU, which ACKs it; other responses are absorbed.
    assert only_response_received(engine.receive_response(response(200), UDP, T0 + 1.5))
    fork = engine.receive_response(response(200, to_tag="fork-2"), UDP, T0 + 2)
    assert only_response_received(fork).transaction is txn
    assert engine.receive_response(response(180), UDP, T0 + 2) == []
    assert engine.receive_response(response(486), UDP, T0 + 2) == []
    assert engine.next_deadline() == pytest.approx(T0 + 1 + 32.0)  # Timer M = 64*T1
    assert kinds([e for _, e in advance(engine, T0 + 100)]) == ["TransactionTerminated"]
    stray = only_response_received(engine.receive_response(response(200), UDP, T0 + 101))
    assert stray.transaction is None


def test_2xx_after_a_6xx_still_reaches_the_tu() -> None:
    # RFC 3261 §16.7 step 5: a proxy forwards a 2xx even after a final response.
    engine, txn, _ = start()
    engine.receive_response(response(603), UDP, T0)
    late = only_response_received(engine.receive_response(response(200, to_tag="x"), UDP, T0))
    assert late.transaction is txn and txn.state is S.COMPLETED


def test_reliable_flow_starts_no_retransmit_timers() -> None:
    engine, _, _ = start(flow=TCP)
    # §17.1.1.2: no Timer A on a reliable transport; Timer B still runs.
    assert engine.next_deadline() == pytest.approx(T0 + 32.0)
    timed = advance(engine, T0 + 100)
    assert kinds([e for _, e in timed]) == ["TransactionTimeout", "TransactionTerminated"]
    engine, _, _ = start("OPTIONS", flow=TCP)
    assert engine.next_deadline() == pytest.approx(T0 + 32.0)  # Timer F only, no Timer E
    assert kinds([e for _, e in advance(engine, T0 + 100)]) == [
        "TransactionTimeout",
        "TransactionTerminated",
    ]


def test_cancel_client_transaction_is_matched_apart_from_its_invite() -> None:
    engine = layer()
    invite_txn, _ = engine.send_request(request(), UDP, T0)
    cancel_txn, events = engine.send_request(request("CANCEL"), UDP, T0 + 1)
    assert kinds(events) == ["Send"] and cancel_txn.key == (BRANCH, "CANCEL")
    # §17.1.3: the CSeq method tells the two transactions with one branch apart.
    ok = only_response_received(engine.receive_response(response(200, "CANCEL"), UDP, T0 + 1.1))
    assert ok.transaction is cancel_txn and cancel_txn.state is S.COMPLETED
    terminated = engine.receive_response(response(487), UDP, T0 + 1.2)
    assert terminated[0] == ResponseReceived(invite_txn, terminated[0].response, UDP)  # type: ignore[union-attr]
    assert invite_txn.state is S.COMPLETED


def test_response_with_another_branch_is_stray() -> None:
    engine, txn, _ = start()
    event = only_response_received(
        engine.receive_response(response(200, branch="z9hG4bKzz"), UDP, T0)
    )
    assert event.transaction is None and txn.state is S.CALLING


def test_response_with_unreadable_via_or_cseq_is_dropped() -> None:
    engine, txn, _ = start()
    bad_via = response(200)
    bad_via.headers.set("Via", "not a via")
    assert engine.receive_response(bad_via, UDP, T0) == []
    bad_cseq = response(200)
    bad_cseq.headers.set("CSeq", "one INVITE")
    assert engine.receive_response(bad_cseq, UDP, T0) == []
    no_branch = response(200, branch=None)
    assert only_response_received(engine.receive_response(no_branch, UDP, T0)).transaction is None
    assert txn.state is S.CALLING


def test_transport_error_terminates_a_calling_invite_and_informs_the_tu() -> None:
    engine, txn, _ = start()
    events = engine.transport_error(txn, T0 + 0.1)
    assert events == [TransportError(txn), TransactionTerminated(txn)]
    assert engine.transport_error(txn, T0 + 0.2) == []
    assert advance(engine, T0 + 100) == []


def test_tu_can_abandon_a_proceeding_invite_client() -> None:
    # RFC 3261 §9.1: no final response 64*T1 after the CANCEL: destroy the INVITE transaction.
    engine, txn, _ = start()
    engine.receive_response(response(180), UDP, T0)
    assert engine.terminate(txn, T0 + 40) == [TransactionTerminated(txn)]
    assert engine.terminate(txn, T0 + 41) == []
    assert len(engine) == 0


# ---------------------------------------------------------------------------- non-INVITE


def test_non_invite_client_retransmit_interval_caps_at_t2() -> None:
    engine, txn, _ = start("OPTIONS")
    timed = advance(engine, T0 + 100)
    # §17.1.2.2: Timer E = T1, then MIN(2*E, T2): gaps 0.5, 1, 2, 4, 4, 4 ... until Timer F.
    assert send_times(timed) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert timed[-2][1] == TransactionTimeout(txn)
    assert round(timed[-2][0] - T0, 6) == 32.0  # Timer F = 64*T1
    assert kinds([e for _, e in timed[-2:]]) == ["TransactionTimeout", "TransactionTerminated"]


def test_non_invite_client_retransmits_every_t2_once_proceeding() -> None:
    engine, txn, _ = start("REGISTER")
    advance(engine, T0 + 1.5)  # retransmissions at 0.5 and 1.5; next Timer E due at 3.5
    assert only_response_received(engine.receive_response(response(100, "REGISTER"), UDP, T0 + 2))
    assert txn.state is S.PROCEEDING
    timed = advance(engine, T0 + 100)
    # The pending Timer E fires at 3.5, then every T2 (§17.1.2.2), until Timer F at 32.
    assert send_times(timed) == [3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert kinds([e for _, e in timed[-2:]]) == ["TransactionTimeout", "TransactionTerminated"]


def test_timer_k_absorbs_response_retransmissions_then_terminates() -> None:
    engine, txn, _ = start("BYE")
    final = only_response_received(engine.receive_response(response(200, "BYE"), UDP, T0 + 0.7))
    assert final.transaction is txn and txn.state is S.COMPLETED
    assert engine.receive_response(response(200, "BYE"), UDP, T0 + 1) == []  # §17.1.2.2
    assert engine.next_deadline() == pytest.approx(T0 + 0.7 + 5.0)  # Timer K = T4
    assert kinds([e for _, e in advance(engine, T0 + 100)]) == ["TransactionTerminated"]
    late = only_response_received(engine.receive_response(response(200, "BYE"), UDP, T0 + 101))
    assert late.transaction is None


def test_timer_k_on_a_reliable_flow_is_zero() -> None:
    engine, _, _ = start("MESSAGE", flow=TCP)
    events = engine.receive_response(response(202, "MESSAGE"), TCP, T0)
    assert kinds(events) == ["ResponseReceived", "TransactionTerminated"]


def test_timer_f_fires_in_proceeding_too() -> None:
    engine, _, _ = start("SUBSCRIBE", flow=TCP)
    engine.receive_response(response(100, "SUBSCRIBE"), TCP, T0 + 1)
    timed = advance(engine, T0 + 100)
    assert [(round(t - T0, 6), type(e).__name__) for t, e in timed] == [
        (32.0, "TransactionTimeout"),
        (32.0, "TransactionTerminated"),
    ]


def test_t1_t2_t4_come_from_the_config() -> None:
    timers = TimerConfig(t1=0.1, t2=0.3, t4=1.5)
    engine, _, _ = start(timers=timers)
    timed = advance(engine, T0 + 100)
    # Timer A doubles from T1 = 0.1; Timer B = 64*T1 = 6.4.
    assert send_times(timed) == [0.1, 0.3, 0.7, 1.5, 3.1, 6.3]
    assert timed[-1][0] == pytest.approx(T0 + 6.4)
    engine, _, _ = start("OPTIONS", timers=timers)
    timed = advance(engine, T0 + 1.0)
    # Timer E doubles from 0.1 and caps at T2 = 0.3.
    assert send_times(timed) == [0.1, 0.3, 0.6, 0.9]
    engine.receive_response(response(200, "OPTIONS"), UDP, T0 + 1.0)
    assert engine.next_deadline() == pytest.approx(T0 + 1.0 + 1.5)  # Timer K = T4


# ---------------------------------------------------------------------------- send_request


def test_new_branch_has_the_magic_cookie_and_is_unique() -> None:
    branches = {new_branch() for _ in range(1000)}
    assert len(branches) == 1000
    assert all(b.startswith(BRANCH_COOKIE) and len(b) > len(BRANCH_COOKIE) + 16 for b in branches)


@pytest.mark.parametrize(
    ("method", "kwargs"),
    [
        ("ACK", {}),  # §17.1.1.3: an ACK never has a client transaction
        ("INVITE", {"branch": None}),
        ("INVITE", {"branch": "1234"}),  # RFC 2543 branch: we only generate RFC 3261 ones
        ("INVITE", {"branch": BRANCH_COOKIE}),  # a bare cookie identifies nothing
        ("INVITE", {"via": "garbage"}),
        ("INVITE", {"cseq_method": "BYE"}),
    ],
)
def test_send_request_refuses_requests_it_cannot_key(
    method: str, kwargs: dict[str, object]
) -> None:
    engine = layer()
    with pytest.raises(ValueError):
        engine.send_request(request(method, **kwargs), UDP, T0)  # type: ignore[arg-type]
    assert len(engine) == 0


def test_send_request_refuses_a_branch_in_use() -> None:
    engine = layer()
    engine.send_request(request("OPTIONS"), UDP, T0)
    with pytest.raises(ValueError):
        engine.send_request(request("OPTIONS"), UDP, T0)


def test_send_request_raises_when_the_table_is_full() -> None:
    engine = layer(max_transactions=1)
    engine.send_request(request("OPTIONS"), TCP, T0)
    with pytest.raises(TransactionTableFull):
        engine.send_request(request("OPTIONS", branch=new_branch()), TCP, T0)
    engine.receive_response(response(200, "OPTIONS"), TCP, T0)  # Timer K = 0 frees the slot
    txn, _ = engine.send_request(request("OPTIONS", branch=new_branch()), TCP, T0)
    assert isinstance(txn, ClientTransaction)
