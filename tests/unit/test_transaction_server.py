"""Server transactions (RFC 3261 §17.2, RFC 6026 §7.1) and request matching, fake clock."""

from __future__ import annotations

import pytest

from sip.flow import Flow
from sip.message import Response, response_to
from sip.stateless import stamp_via
from sip.transaction import (
    Overloaded,
    RequestReceived,
    Send,
    ServerTransaction,
    TimerConfig,
    TransactionLayer,
    TransactionState,
    TransactionTerminated,
    TransactionTimeout,
    TransportError,
)
from sip.validate import validate_request
from tests.unit.test_transaction_support import (
    BRANCH,
    T0,
    TCP,
    UDP,
    advance,
    kinds,
    layer,
    only_request_received,
    parsed,
    request,
    send_times,
    sends,
)

S = TransactionState


def receive(
    engine: TransactionLayer,
    method: str = "INVITE",
    flow: Flow = UDP,
    now: float = T0,
    **kw: object,
) -> ServerTransaction:
    event = only_request_received(engine.receive_request(request(method, **kw), flow, now))  # type: ignore[arg-type]
    assert event.transaction is not None and event.flow is flow
    return event.transaction


def state_of(txn: ServerTransaction) -> TransactionState:
    """The state, read through a call so that the type checker does not narrow it."""
    return txn.state


def answer(txn: ServerTransaction, status: int, to_tag: str | None = "uas-1") -> Response:
    result = response_to(txn.request, status)
    if to_tag is not None and status > 100:
        result.headers.set("To", f"{result.headers.get('To')};tag={to_tag}")
    return result


# ---------------------------------------------------------------------------- INVITE server


def test_invite_server_passes_the_invite_up_and_sends_100_trying_after_200_ms() -> None:
    engine = layer()
    invite = request(extra="Timestamp: 54\r\n")
    event = only_request_received(engine.receive_request(invite, UDP, T0))
    txn = event.transaction
    assert txn is not None and event.request is invite
    assert txn.state is S.PROCEEDING and txn.is_invite and txn.last_response is None
    assert engine.next_deadline() == pytest.approx(T0 + 0.2)
    timed = advance(engine, T0 + 10)
    assert send_times(timed) == [0.2]
    trying = parsed(sends([e for _, e in timed])[0])
    assert isinstance(trying, Response) and trying.status == 100
    # §17.2.1 / §8.2.6: built from the request, Timestamp echoed, no To tag added.
    assert trying.headers.get("To") == invite.headers.get("To")
    assert trying.headers.get("Timestamp") == "54"
    assert trying.headers.get("Via") == invite.headers.get("Via")
    assert txn.last_response is not None and txn.last_response.status == 100


def test_100_trying_is_not_sent_when_the_tu_answers_within_200_ms() -> None:
    engine = layer()
    txn = receive(engine)
    assert kinds(engine.respond(txn, answer(txn, 180), T0 + 0.05)) == ["Send"]
    assert advance(engine, T0 + 10) == []
    assert txn.last_response is not None and txn.last_response.status == 180


def test_100_trying_delay_follows_the_config() -> None:
    engine = layer(TimerConfig(trying_delay=0.05))
    receive(engine)
    assert engine.next_deadline() == pytest.approx(T0 + 0.05)
    engine = layer(TimerConfig(trying_delay=0.0))
    events = engine.receive_request(request(), UDP, T0)
    assert kinds(events) == ["RequestReceived", "Send"]  # zero delay: 100 Trying at once


def test_server_retransmits_last_response_on_request_retransmission() -> None:
    engine = layer()
    txn = receive(engine)
    # Proceeding, nothing sent yet: nothing to repeat.
    assert engine.receive_request(request(), UDP, T0 + 0.1) == []
    ringing = engine.respond(txn, answer(txn, 180), T0 + 0.15)
    # §17.2.1: a retransmission gets the most recent provisional response again.
    assert engine.receive_request(request(), UDP, T0 + 0.5) == ringing
    final = engine.respond(txn, answer(txn, 486), T0 + 1)
    assert engine.receive_request(request(), UDP, T0 + 1.2) == final
    assert len(engine) == 1


def test_completed_non_invite_keeps_only_what_it_resends() -> None:
    engine = layer()
    txn = receive(engine, "REGISTER")
    ok = engine.respond(txn, answer(txn, 200), T0 + 0.1)
    # Completed lasts Timer J (32 s on UDP): no parsed messages are kept that long.
    assert len(txn.request.headers) == 0 and txn.request.method == "REGISTER"
    assert txn.last_response is not None and len(txn.last_response.headers) == 0
    assert txn.last_response.status == 200
    assert engine.receive_request(request("REGISTER"), UDP, T0 + 5) == ok


def test_non_invite_server_absorbs_retransmissions_in_trying_and_repeats_responses_later() -> None:
    engine = layer()
    txn = receive(engine, "REGISTER")
    assert txn.state is S.TRYING and not txn.is_invite
    assert engine.next_deadline() is None  # no 100 Trying timer for non-INVITE
    assert engine.receive_request(request("REGISTER"), UDP, T0 + 0.5) == []  # §17.2.2
    trying = engine.respond(txn, answer(txn, 100), T0 + 0.6)
    assert state_of(txn) is S.PROCEEDING
    assert engine.receive_request(request("REGISTER"), UDP, T0 + 1.5) == trying
    ok = engine.respond(txn, answer(txn, 200), T0 + 2)
    assert state_of(txn) is S.COMPLETED
    assert engine.receive_request(request("REGISTER"), UDP, T0 + 3.5) == ok


def test_timer_g_retransmits_the_final_response_doubling_to_t2_until_timer_h() -> None:
    engine = layer()
    txn = receive(engine)
    first = engine.respond(txn, answer(txn, 486), T0)
    assert txn.state is S.COMPLETED
    timed = advance(engine, T0 + 100)
    # §17.2.1: Timer G = T1, then MIN(2*G, T2); Timer H = 64*T1 ends it without an ACK.
    assert send_times(timed) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert all(s.data == first[0].data for s in sends([e for _, e in timed]))  # type: ignore[union-attr]
    assert [e for _, e in timed[-2:]] == [TransactionTimeout(txn), TransactionTerminated(txn)]
    assert round(timed[-1][0] - T0, 6) == 32.0


def test_ack_for_non_2xx_moves_invite_server_to_confirmed_and_is_absorbed() -> None:
    engine = layer()
    txn = receive(engine)
    engine.respond(txn, answer(txn, 404), T0)
    advance(engine, T0 + 0.5)  # one Timer G retransmission
    ack = request("ACK", to_tag="uas-1")
    assert engine.receive_request(ack, UDP, T0 + 0.6) == []
    assert txn.state is S.CONFIRMED
    # §17.2.1: ACK retransmissions and INVITE retransmissions are absorbed in Confirmed.
    assert engine.receive_request(ack, UDP, T0 + 0.7) == []
    assert engine.receive_request(request(), UDP, T0 + 0.8) == []
    # Timer G and H are cancelled; Timer I = T4 ends it.
    timed = advance(engine, T0 + 100)
    assert [(round(t - T0, 6), type(e).__name__) for t, e in timed] == [
        (5.6, "TransactionTerminated")
    ]


def test_timer_i_is_zero_on_a_reliable_flow() -> None:
    engine = layer()
    txn = receive(engine, flow=TCP)
    engine.respond(txn, answer(txn, 486), T0)
    assert engine.next_deadline() == pytest.approx(T0 + 32.0)  # no Timer G on TCP, only H
    events = engine.receive_request(request("ACK", to_tag="uas-1"), TCP, T0 + 0.1)
    assert events == [TransactionTerminated(txn)]


def test_2xx_moves_invite_server_to_accepted_and_passes_acks_to_tu() -> None:
    engine = layer()
    txn = receive(engine)
    ok = answer(txn, 200)
    assert kinds(engine.respond(txn, ok, T0 + 0.1)) == ["Send"]
    assert txn.state is S.ACCEPTED
    # RFC 6026 §7.1: the INVITE retransmission is absorbed (the TU retransmits the 2xx) ...
    assert engine.receive_request(request(), UDP, T0 + 0.5) == []
    # ... an ACK matching the transaction goes to the TU, with no transaction of its own ...
    ack = request("ACK", to_tag="uas-1")
    event = only_request_received(engine.receive_request(ack, UDP, T0 + 0.6))
    assert event == RequestReceived(None, ack, UDP)
    # ... the TU's 2xx retransmissions are sent, and Timer L = 64*T1 ends it.
    assert engine.respond(txn, ok, T0 + 1.1) == [Send(UDP, ok.to_bytes(), txn)]
    assert engine.respond(txn, answer(txn, 180), T0 + 1.2) == []
    timed = advance(engine, T0 + 100)
    assert [(round(t - T0, 6), type(e).__name__) for t, e in timed] == [
        (32.1, "TransactionTerminated")
    ]


def test_ack_for_2xx_with_its_own_branch_reaches_the_tu_without_a_transaction() -> None:
    engine = layer()
    txn = receive(engine)
    engine.respond(txn, answer(txn, 200), T0)
    ack = request("ACK", branch="z9hG4bK-ack-2xx", to_tag="uas-1")
    assert engine.receive_request(ack, UDP, T0 + 0.1) == [RequestReceived(None, ack, UDP)]
    assert len(engine) == 1  # an ACK never creates a transaction


def test_responses_after_a_final_response_are_discarded() -> None:
    engine = layer()
    txn = receive(engine)
    engine.respond(txn, answer(txn, 487), T0)
    assert engine.respond(txn, answer(txn, 200), T0 + 0.1) == []
    assert engine.respond(txn, answer(txn, 180), T0 + 0.1) == []
    assert txn.last_response is not None and txn.last_response.status == 487


def test_respond_to_a_terminated_transaction_returns_nothing() -> None:
    engine = layer()
    txn = receive(engine, "OPTIONS", flow=TCP)
    assert kinds(engine.respond(txn, answer(txn, 200), T0)) == ["Send", "TransactionTerminated"]
    assert engine.respond(txn, answer(txn, 200), T0) == []


def test_respond_refuses_impossible_statuses() -> None:
    engine = layer()
    txn = receive(engine)
    bad = answer(txn, 200)
    bad.status = 700
    with pytest.raises(ValueError):
        engine.respond(txn, bad, T0)


def test_transport_error_terminates_a_server_transaction_and_informs_the_tu() -> None:
    engine = layer()
    txn = receive(engine)
    engine.respond(txn, answer(txn, 500), T0)
    assert engine.transport_error(txn, T0 + 0.1) == [
        TransportError(txn),
        TransactionTerminated(txn),
    ]
    assert advance(engine, T0 + 100) == []


def test_transport_error_in_accepted_is_reported_but_keeps_the_state() -> None:
    engine = layer()
    txn = receive(engine)
    engine.respond(txn, answer(txn, 200), T0)
    assert engine.transport_error(txn, T0 + 0.1) == [TransportError(txn)]
    assert txn.state is S.ACCEPTED
    assert engine.receive_request(request(), UDP, T0 + 0.5) == []  # still absorbing


# ---------------------------------------------------------------------------- non-INVITE


def test_timer_j_absorbs_retransmissions_then_terminates() -> None:
    engine = layer()
    txn = receive(engine, "OPTIONS")
    ok = engine.respond(txn, answer(txn, 200), T0 + 0.1)
    assert txn.state is S.COMPLETED
    for i in range(3):
        assert engine.receive_request(request("OPTIONS"), UDP, T0 + 1 + i) == ok
    timed = advance(engine, T0 + 100)
    assert [(round(t - T0, 6), type(e).__name__) for t, e in timed] == [
        (32.1, "TransactionTerminated")  # Timer J = 64*T1
    ]
    # After Timer J the same request is new again.
    assert receive(engine, "OPTIONS", now=T0 + 101) is not txn


def test_timer_j_on_a_reliable_flow_is_zero() -> None:
    engine = layer()
    txn = receive(engine, "BYE", flow=TCP)
    events = engine.respond(txn, answer(txn, 200), T0)
    assert kinds(events) == ["Send", "TransactionTerminated"]
    assert events[0] == Send(TCP, events[0].data, txn)  # type: ignore[union-attr]


def test_server_sends_responses_to_the_transaction_flow() -> None:
    engine = layer()
    invite = request(via="SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK-rport;rport")
    reply_flow = stamp_via(invite, validate_request(invite).vias[0], UDP)
    txn = only_request_received(engine.receive_request(invite, reply_flow, T0)).transaction
    assert txn is not None
    sent = engine.respond(txn, answer(txn, 180), T0)
    assert sends(sent)[0].flow is reply_flow


# ---------------------------------------------------------------------------- matching


def test_request_matching_needs_the_same_sent_by_and_method() -> None:
    engine = layer()
    first = receive(engine, "OPTIONS")
    other_host = receive(engine, "OPTIONS", sent_by="127.0.0.2:5070")
    other_port = receive(engine, "OPTIONS", sent_by="127.0.0.1:5071")
    other_method = receive(engine, "INFO")
    assert len({id(t) for t in (first, other_host, other_port, other_method)}) == 4
    assert len(engine) == 4


def test_cancel_is_a_separate_transaction_and_finds_its_invite() -> None:
    engine = layer()
    invite_txn = receive(engine)
    engine.respond(invite_txn, answer(invite_txn, 180), T0 + 0.1)
    cancel = request("CANCEL")
    event = only_request_received(engine.receive_request(cancel, UDP, T0 + 1))
    cancel_txn = event.transaction
    assert cancel_txn is not None and cancel_txn is not invite_txn and cancel_txn.method == "CANCEL"
    assert engine.find_invite_for_cancel(cancel) is invite_txn
    assert engine.find_invite_for_cancel(request("CANCEL", branch="z9hG4bK-other")) is None
    assert engine.find_invite_for_cancel(request("CANCEL", via="garbage")) is None
    # §9.2: 200 to the CANCEL, 487 to the INVITE, each through its own transaction.
    assert kinds(engine.respond(cancel_txn, answer(cancel_txn, 200), T0 + 1)) == ["Send"]
    assert kinds(engine.respond(invite_txn, answer(invite_txn, 487), T0 + 1)) == ["Send"]
    assert (cancel_txn.state, invite_txn.state) == (S.COMPLETED, S.COMPLETED)
    # A retransmitted CANCEL gets its 200 again, not the INVITE's 487.
    again = engine.receive_request(cancel, UDP, T0 + 1.5)
    assert [parsed(s).status for s in sends(again)] == [200]  # type: ignore[union-attr]


def test_rfc2543_fallback_matches_retransmission_without_cookie() -> None:
    engine = layer()
    legacy = "7777"  # RFC 2543: a branch without the magic cookie
    txn = receive(engine, branch=legacy)
    assert txn.key is not None and txn.key[0] == "2543"
    ringing = engine.respond(txn, answer(txn, 180), T0 + 0.1)
    assert engine.receive_request(request(branch=legacy), UDP, T0 + 0.5) == ringing
    # A different CSeq, Call-ID, From tag or Request-URI is another transaction.
    assert receive(engine, branch=legacy, cseq=2) is not txn
    assert receive(engine, branch=legacy, call_id="other@127.0.0.1") is not txn
    assert receive(engine, branch=legacy, from_tag="from-2") is not txn
    assert receive(engine, branch=legacy, uri="sip:carol@127.0.0.1") is not txn
    # §17.2.3: the ACK matches by the To tag of the response sent.
    engine.respond(txn, answer(txn, 486, to_tag="legacy-tag"), T0 + 1)
    stray_ack = request("ACK", branch=legacy, to_tag="another-tag")
    assert engine.receive_request(stray_ack, UDP, T0 + 1.1) == [
        RequestReceived(None, stray_ack, UDP)
    ]
    assert txn.state is S.COMPLETED
    assert (
        engine.receive_request(request("ACK", branch=legacy, to_tag="legacy-tag"), UDP, T0 + 1.2)
        == []
    )
    assert state_of(txn) is S.CONFIRMED


def test_rfc2543_fallback_without_any_branch_and_its_cancel() -> None:
    engine = layer()
    txn = receive(engine, branch=None)
    assert engine.receive_request(request(branch=None), UDP, T0 + 0.5) == []  # matched, quiet
    cancel = request("CANCEL", branch=None)
    cancel_txn = only_request_received(engine.receive_request(cancel, UDP, T0 + 1)).transaction
    assert cancel_txn is not None and cancel_txn is not txn
    assert engine.find_invite_for_cancel(cancel) is txn
    assert len(engine) == 2


def test_rfc2543_matching_survives_received_and_rport_stamping() -> None:
    engine = layer()
    first = request(via="SIP/2.0/UDP 10.9.9.9:5070;rport")
    stamp_via(first, validate_request(first).vias[0], UDP)
    assert "received=127.0.0.1" in (first.headers.get("Via") or "")
    txn = only_request_received(engine.receive_request(first, UDP, T0)).transaction
    assert txn is not None
    again = request(via="SIP/2.0/UDP 10.9.9.9:5070;rport")
    assert engine.receive_request(again, UDP, T0 + 0.5) == []  # matched the unstamped copy


def test_validator_info_gives_the_same_matching() -> None:
    engine = layer()
    invite = request()
    txn = only_request_received(
        engine.receive_request(invite, UDP, T0, validate_request(invite))
    ).transaction
    assert txn is not None and txn.key == (BRANCH, "127.0.0.1", 5070, "INVITE")
    legacy = request(branch=None, cseq=5)
    info = validate_request(legacy)
    legacy_txn = only_request_received(engine.receive_request(legacy, UDP, T0, info)).transaction
    again = request(branch=None, cseq=5)
    assert engine.receive_request(again, UDP, T0 + 0.5) == []  # found without info too
    assert engine.find_invite_for_cancel(request("CANCEL", branch=None, cseq=5), None) is legacy_txn


def test_malformed_via_means_no_match_and_a_new_transaction() -> None:
    engine = layer()
    first = receive(engine, "OPTIONS", via="not a via at all")
    second = receive(engine, "OPTIONS", via="not a via at all")
    assert first is not second and first.key is None and first.via is None
    # Such a transaction still answers, and ends like any other.
    assert kinds(engine.respond(first, answer(first, 400), T0)) == ["Send"]
    advance(engine, T0 + 100)
    assert first.state is S.TERMINATED
    missing = request("OPTIONS")
    missing.headers.remove("Via")
    assert only_request_received(engine.receive_request(missing, UDP, T0)).transaction is not None
    ack = request("ACK", via="garbage")
    assert engine.receive_request(ack, UDP, T0) == [RequestReceived(None, ack, UDP)]


def test_bare_cookie_branch_falls_back_to_rfc2543_matching() -> None:
    # RFC 4475 §3.2.1: "z9hG4bK" alone identifies no transaction.
    engine = layer()
    txn = receive(engine, branch="z9hG4bK")
    assert txn.key is not None and txn.key[0] == "2543"


def test_overloaded_when_table_full() -> None:
    engine = layer(max_transactions=2)
    invite_txn = receive(engine)
    receive(engine, "OPTIONS")
    register = request("REGISTER")
    assert engine.receive_request(register, UDP, T0) == [Overloaded(register, UDP)]
    assert len(engine) == 2
    # Retransmissions and ACKs still match or pass: they create nothing.
    assert engine.receive_request(request(), UDP, T0 + 0.1) == []
    ack = request("ACK", branch="z9hG4bK-2xx-ack")
    assert engine.receive_request(ack, UDP, T0) == [RequestReceived(None, ack, UDP)]
    # A terminated transaction frees its slot.
    engine.terminate(invite_txn, T0 + 1)
    assert only_request_received(engine.receive_request(register, UDP, T0 + 1)).transaction
