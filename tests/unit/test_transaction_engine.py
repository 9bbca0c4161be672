"""The engine around the tables: the timer heap, bounded tables, random message storms."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sip.message import response_to
from sip.transaction import (
    Event,
    RequestReceived,
    Send,
    ServerTransaction,
    TransactionLayer,
    TransactionState,
    TransactionTerminated,
    new_branch,
)
from tests.unit.test_transaction_support import (
    T0,
    TCP,
    UDP,
    advance,
    kinds,
    layer,
    only_request_received,
    request,
    response,
)

S = TransactionState


def test_next_deadline_skips_cancelled_timers() -> None:
    engine = layer()
    engine.send_request(request(), UDP, T0)
    assert engine.next_deadline() == T0 + 0.5
    engine.receive_response(response(180), UDP, T0 + 0.1)  # cancels Timers A and B
    assert engine.next_deadline() is None
    assert engine.handle_timer(T0 + 1000) == []


def test_handle_timer_before_any_deadline_does_nothing() -> None:
    engine = layer()
    engine.send_request(request(), UDP, T0)
    assert engine.handle_timer(T0 + 0.49) == []
    assert engine.next_deadline() == T0 + 0.5


def test_a_late_handle_timer_fires_everything_due_in_order_and_rearms_from_now() -> None:
    engine = layer()
    invite, _ = engine.send_request(request(), UDP, T0)
    options, _ = engine.send_request(request("OPTIONS", branch=new_branch()), UDP, T0 + 0.1)
    events = engine.handle_timer(T0 + 2.0)
    # Timer A (due 0.5) then Timer E (due 0.6) fire once each; each is reset from the time it
    # actually fired (§17.1.1.2 "reset the timer"), so a stalled loop does not burst.
    assert [e.transaction for e in events if isinstance(e, Send)] == [invite, options]
    assert engine.next_deadline() == T0 + 3.0


def test_many_transactions_fire_in_deadline_order() -> None:
    engine = layer()
    txns = [
        engine.send_request(request("OPTIONS", branch=new_branch()), TCP, T0 + i)[0]
        for i in range(50)
    ]
    timed = advance(engine, T0 + 1000)
    terminated = [e.transaction for _, e in timed if isinstance(e, TransactionTerminated)]
    assert terminated == txns  # Timer F, 32 s after each start
    assert len(engine) == 0


def test_stale_heap_entries_are_compacted() -> None:
    engine = layer()
    for _ in range(3000):
        branch = new_branch()
        engine.send_request(request(branch=branch), UDP, T0)
        # A 180 cancels Timers A and B (two stale heap entries) ...
        engine.receive_response(response(180, branch=branch), UDP, T0 + 0.1)
    live = list(engine._clients.values())
    for txn in live:  # ... and ending the transactions lets the heap be rebuilt.
        engine.terminate(txn, T0 + 1)
    assert len(engine) == 0
    assert len(engine._heap) < 3000
    assert engine.next_deadline() is None


def test_heap_compaction_while_timers_fire_loses_and_repeats_nothing() -> None:
    engine = layer()
    txns = []
    for _ in range(3000):
        branch = new_branch()
        txns.append(engine.send_request(request("OPTIONS", branch=branch), UDP, T0)[0])
        # The final response cancels Timers E and F (stale entries) and arms Timer K.
        engine.receive_response(response(200, "OPTIONS", branch=branch), UDP, T0 + 0.1)
    events = engine.handle_timer(T0 + 10)  # Timer K ends them all; compaction runs midway
    ended = [e.transaction for e in events if isinstance(e, TransactionTerminated)]
    assert ended == txns
    assert engine.next_deadline() is None and engine._heap == []
    assert engine._stale == 0  # every stale entry was counted exactly once


def test_terminated_transactions_leave_the_tables() -> None:
    engine = layer()
    server = only_request_received(engine.receive_request(request(branch=None), UDP, T0))
    txn = server.transaction
    assert txn is not None
    reject = response_to(txn.request, 486)
    reject.headers.set("To", "<sip:bob@127.0.0.1>;tag=t")
    engine.respond(txn, reject, T0)
    assert len(engine._servers) == 2  # RFC 2543: request key and ACK key
    engine.send_request(request("OPTIONS", branch=new_branch()), UDP, T0)
    advance(engine, T0 + 1000)
    assert len(engine) == 0
    assert engine._servers == {} and engine._clients == {}


# ---------------------------------------------------------------------------- storms

_SERVER_STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("retransmit"), st.floats(0, 5)),
        st.tuples(st.just("ack"), st.floats(0, 5)),
        st.tuples(st.just("respond"), st.sampled_from([100, 180, 200, 202, 404, 487, 603])),
        st.tuples(st.just("error"), st.just(0.0)),
        st.tuples(st.just("wait"), st.floats(0, 20)),
    ),
    max_size=25,
)


@settings(max_examples=200, deadline=None)
@given(
    method=st.sampled_from(["INVITE", "OPTIONS"]),
    reliable=st.booleans(),
    legacy=st.booleans(),
    steps=_SERVER_STEPS,
)
def test_server_transactions_survive_any_sequence_and_end_once_answered(
    method: str, reliable: bool, legacy: bool, steps: list[tuple[str, float]]
) -> None:
    engine = layer()
    flow = TCP if reliable else UDP
    branch = None if legacy else "z9hG4bK-storm"
    now = T0
    events: list[Event] = engine.receive_request(request(method, branch=branch), flow, now)
    created: list[ServerTransaction] = []
    answered: set[int] = set()
    for step, value in steps:
        created += [
            e.transaction
            for e in events
            if isinstance(e, RequestReceived)
            and e.transaction is not None
            and e.transaction not in created
        ]
        current = created[-1]  # a retransmission after Terminated makes a new transaction
        if step == "wait":
            now += value
            events += [e for _, e in advance(engine, now)]
        elif step == "retransmit":
            now += value
            events += engine.receive_request(request(method, branch=branch), flow, now)
        elif step == "ack":
            now += value
            events += engine.receive_request(request("ACK", branch=branch, to_tag="t"), flow, now)
        elif step == "respond":
            status = int(value)
            reply = response_to(current.request, status)
            if status > 100:
                reply.headers.set("To", "<sip:bob@127.0.0.1>;tag=t")
            events += engine.respond(current, reply, now)
            if status >= 200:
                answered.add(id(current))
        else:
            events += engine.transport_error(current, now)
    created += [
        e.transaction
        for e in events
        if isinstance(e, RequestReceived)
        and e.transaction is not None
        and e.transaction not in created
    ]
    ended = [e.transaction for e in events if isinstance(e, TransactionTerminated)]
    assert len(ended) == len({id(t) for t in ended})  # each ends at most once
    advance(engine, now + 1000)
    waiting = [t for t in created if id(t) not in answered and t.state is not S.TERMINATED]
    # Only transactions still waiting for their TU remain, in the states that wait for it.
    assert all(t.state in (S.TRYING, S.PROCEEDING) for t in waiting)
    assert len(engine) == len(waiting)
    assert all(t.state is S.TERMINATED for t in created if id(t) in answered)


_CLIENT_STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("response"), st.sampled_from([100, 180, 200, 404, 487, 603])),
        st.tuples(st.just("wait"), st.floats(0, 20)),
        st.tuples(st.just("error"), st.just(0)),
    ),
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(
    method=st.sampled_from(["INVITE", "BYE"]),
    reliable=st.booleans(),
    steps=_CLIENT_STEPS,
)
def test_client_transactions_survive_any_sequence_and_end(
    method: str, reliable: bool, steps: list[tuple[str, float]]
) -> None:
    engine: TransactionLayer = layer()
    flow = TCP if reliable else UDP
    txn, events = engine.send_request(request(method), flow, T0)
    now = T0
    for step, value in steps:
        if step == "wait":
            now += value
            events += [e for _, e in advance(engine, now)]
        elif step == "response":
            events += engine.receive_response(response(int(value), method), flow, now)
        else:
            events += engine.transport_error(txn, now)
    assert kinds(events).count("TransactionTerminated") <= 1
    if txn.state is S.PROCEEDING and method == "INVITE":
        return  # waits for the TU (CANCEL, then §9.1's 64*T1) by design
    advance(engine, now + 1000)
    assert txn.state is S.TERMINATED and len(engine) == 0
    assert engine.next_deadline() is None
