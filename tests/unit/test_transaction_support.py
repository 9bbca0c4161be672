"""Shared builders for the transaction tests, and the tests of the timer settings and tables.

Messages are parsed from literal bytes (127.0.0.1 everywhere); time is a float the tests move
by hand through ``next_deadline``/``handle_timer``, never a clock.
"""

from __future__ import annotations

import enum
import math
from dataclasses import FrozenInstanceError

import pytest

from sip.flow import Flow
from sip.message import Request, Response
from sip.parser import parse_message
from sip.transaction import (
    Event,
    RequestReceived,
    ResponseReceived,
    Send,
    TimerConfig,
    TransactionLayer,
    TransactionTerminated,
    TransactionTimeout,
)
from sip.transaction_fsm import (
    INVITE_CLIENT,
    INVITE_CLIENT_MACHINE,
    INVITE_SERVER,
    INVITE_SERVER_MACHINE,
    NON_INVITE_CLIENT,
    NON_INVITE_CLIENT_MACHINE,
    NON_INVITE_SERVER,
    NON_INVITE_SERVER_MACHINE,
    TIMER_STARTED_BY,
    TIMERS,
    Action,
    Input,
    Table,
    TransactionState,
)

T0 = 1000.0
UDP = Flow("udp", ("127.0.0.1", 5070), ("127.0.0.1", 5060))
TCP = Flow("tcp", ("127.0.0.1", 40001), ("127.0.0.1", 5060), conn_id=7)
BRANCH = "z9hG4bK-test-1"


def request(
    method: str = "INVITE",
    *,
    branch: str | None = BRANCH,
    sent_by: str = "127.0.0.1:5070",
    transport: str = "UDP",
    uri: str = "sip:bob@127.0.0.1:5060",
    to_tag: str | None = None,
    from_tag: str = "from-1",
    call_id: str = "call-1@127.0.0.1",
    cseq: int = 1,
    cseq_method: str | None = None,
    via: str | None = None,
    extra: str = "",
    body: str = "",
) -> Request:
    """A request parsed from bytes; ``via`` replaces the whole top Via value when given."""
    branch_param = f";branch={branch}" if branch is not None else ""
    via_value = via if via is not None else f"SIP/2.0/{transport} {sent_by}{branch_param}"
    to = "<sip:bob@127.0.0.1>" + (f";tag={to_tag}" if to_tag else "")
    data = (
        f"{method} {uri} SIP/2.0\r\n"
        f"Via: {via_value}\r\n"
        "Max-Forwards: 70\r\n"
        f"From: Alice <sip:alice@127.0.0.1>;tag={from_tag}\r\n"
        f"To: {to}\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq} {cseq_method or method}\r\n"
        "Contact: <sip:alice@127.0.0.1:5070>\r\n"
        f"{extra}"
        f"Content-Length: {len(body)}\r\n"
        "\r\n"
        f"{body}"
    ).encode()
    message = parse_message(data)
    assert isinstance(message, Request)
    return message


def response(
    status: int,
    method: str = "INVITE",
    *,
    branch: str | None = BRANCH,
    sent_by: str = "127.0.0.1:5070",
    to_tag: str | None = "to-1",
    cseq: int = 1,
    reason: str = "Reason",
    extra: str = "",
) -> Response:
    """A response parsed from bytes, as the far end would send it."""
    branch_param = f";branch={branch}" if branch is not None else ""
    to = "<sip:bob@127.0.0.1>" + (f";tag={to_tag}" if to_tag else "")
    data = (
        f"SIP/2.0 {status} {reason}\r\n"
        f"Via: SIP/2.0/UDP {sent_by}{branch_param}\r\n"
        "From: Alice <sip:alice@127.0.0.1>;tag=from-1\r\n"
        f"To: {to}\r\n"
        "Call-ID: call-1@127.0.0.1\r\n"
        f"CSeq: {cseq} {method}\r\n"
        f"{extra}"
        "Content-Length: 0\r\n"
        "\r\n"
    ).encode()
    message = parse_message(data)
    assert isinstance(message, Response)
    return message


def layer(timers: TimerConfig | None = None, max_transactions: int = 200_000) -> TransactionLayer:
    return TransactionLayer(timers or TimerConfig(), max_transactions)


def advance(engine: TransactionLayer, until: float) -> list[tuple[float, Event]]:
    """Run the fake clock to ``until``: each due deadline in turn, events stamped with it."""
    out: list[tuple[float, Event]] = []
    while (deadline := engine.next_deadline()) is not None and deadline <= until:
        out.extend((deadline, event) for event in engine.handle_timer(deadline))
    return out


def sends(events: list[Event]) -> list[Send]:
    return [e for e in events if isinstance(e, Send)]


def send_times(timed: list[tuple[float, Event]]) -> list[float]:
    """Seconds after T0 of each Send, rounded against float noise."""
    return [round(t - T0, 6) for t, e in timed if isinstance(e, Send)]


def kinds(events: list[Event]) -> list[str]:
    return [type(e).__name__ for e in events]


def parsed(send: Send) -> Request | Response:
    return parse_message(send.data)


def only_request_received(events: list[Event]) -> RequestReceived:
    assert len(events) == 1 and isinstance(events[0], RequestReceived), events
    return events[0]


def only_response_received(events: list[Event]) -> ResponseReceived:
    assert len(events) == 1 and isinstance(events[0], ResponseReceived), events
    return events[0]


# ---------------------------------------------------------------------------- TimerConfig


def test_timer_config_defaults_are_rfc_3261_table_4() -> None:
    timers = TimerConfig()
    assert (timers.t1, timers.t2, timers.t4) == (0.5, 4.0, 5.0)
    assert timers.timer_a == 0.5
    assert timers.timer_b == timers.timer_f == timers.timer_h == 32.0
    assert timers.timer_l == timers.timer_m == 32.0  # RFC 6026: 64*T1
    assert timers.timer_d(reliable=False) == 32.0
    assert timers.timer_e == timers.timer_g == 0.5
    assert timers.timer_i(reliable=False) == timers.timer_k(reliable=False) == 5.0
    assert timers.timer_j(reliable=False) == 32.0
    assert timers.trying_delay == 0.2


def test_timer_config_zeroes_wait_timers_on_reliable_transports() -> None:
    timers = TimerConfig()
    for timer in (timers.timer_d, timers.timer_i, timers.timer_j, timers.timer_k):
        assert timer(reliable=True) == 0.0
    reliable = timers.durations(reliable=True)
    assert reliable[Input.TIMER_A] is reliable[Input.TIMER_E] is reliable[Input.TIMER_G] is None


def test_timer_config_derives_from_non_default_t1_t2_t4() -> None:
    timers = TimerConfig(t1=0.1, t2=0.8, t4=2.5)
    assert timers.timer_b == pytest.approx(6.4)
    assert timers.timer_j(reliable=False) == pytest.approx(6.4)
    assert timers.timer_m == pytest.approx(6.4)
    assert timers.timer_k(reliable=False) == 2.5


@pytest.mark.parametrize(
    "kwargs",
    [
        {"t1": 0.0},
        {"t1": -1.0},
        {"t1": math.nan},
        {"t2": math.inf},
        {"t1": 2.0, "t2": 1.0},
        {"t4": 0.0},
        {"trying_delay": -0.1},
        {"timer_d_unreliable": -1.0},
    ],
)
def test_timer_config_refuses_impossible_values(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        TimerConfig(**kwargs)


def test_timer_config_is_frozen() -> None:
    with pytest.raises(FrozenInstanceError):
        TimerConfig().t1 = 1.0  # type: ignore[misc]


def test_layer_refuses_a_zero_table_size() -> None:
    with pytest.raises(ValueError):
        TransactionLayer(TimerConfig(), max_transactions=0)


# ---------------------------------------------------------------------------- the tables

MACHINES = (
    INVITE_CLIENT_MACHINE,
    NON_INVITE_CLIENT_MACHINE,
    INVITE_SERVER_MACHINE,
    NON_INVITE_SERVER_MACHINE,
)
TABLES: dict[str, Table] = {
    "INVITE client": INVITE_CLIENT,
    "non-INVITE client": NON_INVITE_CLIENT,
    "INVITE server": INVITE_SERVER,
    "non-INVITE server": NON_INVITE_SERVER,
}


@pytest.mark.parametrize("name", ["INVITE server", "non-INVITE server"])
def test_every_live_server_state_has_a_row_for_each_tu_response(name: str) -> None:
    table = TABLES[name]
    states = {state for state, _ in table}
    for state in states - {TransactionState.TERMINATED}:
        for tu in (Input.TU_1XX, Input.TU_2XX, Input.TU_3XX_6XX):
            assert (state, tu) in table, (state, tu)


@pytest.mark.parametrize("name", list(TABLES))
def test_terminated_is_a_sink_and_every_state_can_be_left(name: str) -> None:
    table = TABLES[name]
    assert not [key for key in table if key[0] is TransactionState.TERMINATED]
    for state in {state for state, _ in table}:
        assert (state, Input.TU_TERMINATE) in table


@pytest.mark.parametrize("name", list(TABLES))
def test_timers_fire_only_in_states_that_start_or_keep_them(name: str) -> None:
    """A timer row exists only where some transition can have armed that timer."""
    table = TABLES[name]
    started = {
        TIMER_STARTED_BY[a]
        for _, actions in table.values()
        for a in actions
        if a in TIMER_STARTED_BY
    }
    fired = {timer for (_, timer) in table if timer in TIMERS}
    assert fired <= started


@pytest.mark.parametrize("enum_type", [TransactionState, Input, Action])
def test_enums_number_their_members_from_zero_for_the_compiled_tables(
    enum_type: type[enum.IntEnum],
) -> None:
    assert [member.value for member in enum_type] == list(range(len(enum_type)))


@pytest.mark.parametrize("name", list(TABLES))
def test_compiled_rows_are_the_table(name: str) -> None:
    table = TABLES[name]
    machine = next(m for m in MACHINES if m.table is table)
    for state in TransactionState:
        for kind in Input:
            assert machine.rows[state][kind] == table.get((state, kind))


def test_every_start_timer_action_names_a_timer() -> None:
    starts = [a for a in Action if a.name.startswith("START_TIMER_")]
    assert set(TIMER_STARTED_BY) == set(starts)
    assert set(TIMER_STARTED_BY.values()) == set(TIMERS)


def test_builders_make_matching_messages() -> None:
    invite = request()
    assert invite.headers.get("Via") == f"SIP/2.0/UDP 127.0.0.1:5070;branch={BRANCH}"
    assert response(180).headers.get("CSeq") == "1 INVITE"
    engine = layer()
    assert kinds(engine.receive_request(invite, UDP, T0)) == ["RequestReceived"]
    assert [type(e) for _, e in advance(engine, T0 + 0.3)] == [Send]
    assert not [e for _, e in advance(engine, T0 + 1) if isinstance(e, TransactionTimeout)]
    assert not [e for _, e in advance(engine, T0 + 1) if isinstance(e, TransactionTerminated)]
