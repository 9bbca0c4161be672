"""The four SIP transaction state machines as tables (RFC 3261 §17, as amended by RFC 6026).

Each table maps ``(state, input) -> (next_state, actions)``; the engine in ``sip.transaction``
looks the row up, moves to ``next_state`` and runs the actions in order. The tables are the
specification: every row cites the paragraph of the RFC it comes from, and nothing outside
them decides a transition (h11's ``_state.py`` is the model).

A missing row means "not applicable here": a message or timer with no row is ignored (a timer
whose row disappears with a state change is cancelled), while the engine refuses a TU response
with no row. Rows whose action tuple is empty absorb their input, as the RFC asks.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


class TransactionState(enum.IntEnum):
    """States of RFC 3261 Figures 5-8, plus RFC 6026's Accepted.

    Integer enums, so the engine indexes its compiled tables with them and hashes them at C
    speed (a plain ``Enum`` hashes in Python, a measurable cost per message).
    """

    CALLING = 0  # INVITE client (§17.1.1.2)
    TRYING = 1  # non-INVITE client and server (§17.1.2.2, §17.2.2)
    PROCEEDING = 2
    COMPLETED = 3
    CONFIRMED = 4  # INVITE server (§17.2.1)
    ACCEPTED = 5  # INVITE client and server after a 2xx (RFC 6026 §7.1, §7.2)
    TERMINATED = 6

    @property
    def label(self) -> str:
        """The state's name as the RFC writes it ("Proceeding")."""
        return self.name.title()


class Input(enum.IntEnum):
    """What can happen to a transaction: a message, a TU call or a timer."""

    START = 0  # the transaction is created (request sent / received)
    REQUEST_RETRANSMISSION = enum.auto()  # server: the request again
    ACK = enum.auto()  # INVITE server: an ACK matching the transaction (§17.2.3)
    RESPONSE_1XX = enum.auto()  # client: a response from the network
    RESPONSE_2XX = enum.auto()
    RESPONSE_3XX_6XX = enum.auto()
    TU_1XX = enum.auto()  # server: a response the TU passes down
    TU_2XX = enum.auto()
    TU_3XX_6XX = enum.auto()
    TRANSPORT_ERROR = enum.auto()  # the transport failed to send for this transaction
    TU_TERMINATE = enum.auto()  # the TU gives up on the transaction (e.g. RFC 3261 §9.1)
    TIMER_A = enum.auto()  # INVITE client request retransmit (§17.1.1.2)
    TIMER_B = enum.auto()  # INVITE client timeout
    TIMER_D = enum.auto()  # INVITE client wait for response retransmits
    TIMER_E = enum.auto()  # non-INVITE client request retransmit (§17.1.2.2)
    TIMER_F = enum.auto()  # non-INVITE client timeout
    TIMER_K = enum.auto()  # non-INVITE client wait for response retransmits
    TIMER_G = enum.auto()  # INVITE server response retransmit (§17.2.1)
    TIMER_H = enum.auto()  # INVITE server wait for ACK
    TIMER_I = enum.auto()  # INVITE server wait for ACK retransmits
    TIMER_J = enum.auto()  # non-INVITE server wait for request retransmits (§17.2.2)
    TIMER_L = enum.auto()  # INVITE server wait in Accepted (RFC 6026 §7.1)
    TIMER_M = enum.auto()  # INVITE client wait in Accepted (RFC 6026 §7.2)
    TIMER_TRYING = enum.auto()  # INVITE server: 100 Trying unless the TU answers in 200 ms


TIMERS = frozenset(i for i in Input if i.name.startswith("TIMER_"))


class Action(enum.IntEnum):
    """What the engine does on a transition (``sip.transaction`` implements each)."""

    SEND_REQUEST = 0  # pass the request to the transport
    RETRANSMIT_REQUEST_DOUBLING = enum.auto()  # Timer A: resend, interval x2 (no cap)
    RETRANSMIT_REQUEST_CAPPED = enum.auto()  # Timer E in Trying: resend, min(2x, T2)
    RETRANSMIT_REQUEST_AT_T2 = enum.auto()  # Timer E in Proceeding: resend, interval T2
    PASS_RESPONSE = enum.auto()  # ResponseReceived to the TU
    SEND_ACK = enum.auto()  # build the ACK for a 3xx-6xx and send it (§17.1.1.3)
    RESEND_ACK = enum.auto()
    PASS_REQUEST = enum.auto()  # RequestReceived to the TU
    PASS_ACK = enum.auto()  # RequestReceived(None, ack) to the TU
    SEND_TRYING = enum.auto()  # a 100 Trying, unless a response went out already
    SEND_RESPONSE = enum.auto()  # the TU's response to the transport (and remember it)
    RESEND_RESPONSE = enum.auto()  # the last response again, if any
    RETRANSMIT_RESPONSE = enum.auto()  # Timer G: resend, min(2x, T2)
    REPORT_TIMEOUT = enum.auto()  # TransactionTimeout to the TU
    REPORT_TRANSPORT_ERROR = enum.auto()  # TransportError to the TU
    START_TIMER_A = enum.auto()
    START_TIMER_B = enum.auto()
    START_TIMER_D = enum.auto()
    START_TIMER_E = enum.auto()
    START_TIMER_F = enum.auto()
    START_TIMER_G = enum.auto()
    START_TIMER_H = enum.auto()
    START_TIMER_I = enum.auto()
    START_TIMER_J = enum.auto()
    START_TIMER_K = enum.auto()
    START_TIMER_L = enum.auto()
    START_TIMER_M = enum.auto()
    START_TIMER_TRYING = enum.auto()


# The timer each START_TIMER_* action arms.
TIMER_STARTED_BY: Mapping[Action, Input] = MappingProxyType(
    {
        action: Input[action.name[len("START_") :]]
        for action in Action
        if action.name.startswith("START_")
    }
)

Row = tuple[TransactionState, tuple[Action, ...]]
Table = Mapping[tuple[TransactionState, Input], Row]

S = TransactionState
I = Input  # noqa: E741
A = Action

_LIVE = (S.CALLING, S.TRYING, S.PROCEEDING, S.COMPLETED, S.CONFIRMED, S.ACCEPTED)


def _with_tu_terminate(rows: dict[tuple[TransactionState, Input], Row]) -> Table:
    # The TU may abandon a transaction in any live state: RFC 3261 §9.1 (a client INVITE with
    # no final response 64*T1 after its CANCEL was answered), or a server TU that is shutting
    # down. Nothing is sent; the transaction just ends.
    states = {state for state, _ in rows} & set(_LIVE)
    for state in states:
        rows[(state, I.TU_TERMINATE)] = (S.TERMINATED, ())
    return MappingProxyType(rows)


# RFC 3261 §17.1.1.2 (Figure 5) with RFC 6026 §7.2 (Accepted state, Timer M).
INVITE_CLIENT: Table = _with_tu_terminate(
    {
        # ¶1: send the INVITE; Timer A on unreliable transports only, Timer B always.
        (S.CALLING, I.START): (S.CALLING, (A.SEND_REQUEST, A.START_TIMER_A, A.START_TIMER_B)),
        # ¶2: Timer A fires: retransmit, double the interval.
        (S.CALLING, I.TIMER_A): (S.CALLING, (A.RETRANSMIT_REQUEST_DOUBLING,)),
        # ¶3: Timer B fires in Calling: tell the TU (a 408), terminate.
        (S.CALLING, I.TIMER_B): (S.TERMINATED, (A.REPORT_TIMEOUT,)),
        # §17.1.4: a transport error while sending: tell the TU, terminate.
        (S.CALLING, I.TRANSPORT_ERROR): (S.TERMINATED, (A.REPORT_TRANSPORT_ERROR,)),
        # ¶4: a provisional response: Proceeding, no more retransmissions; pass it up.
        (S.CALLING, I.RESPONSE_1XX): (S.PROCEEDING, (A.PASS_RESPONSE,)),
        (S.PROCEEDING, I.RESPONSE_1XX): (S.PROCEEDING, (A.PASS_RESPONSE,)),
        # RFC 6026 §7.2: a 2xx goes up and the transaction waits in Accepted for Timer M,
        # passing every further 2xx (retransmissions and forks) to the TU, which ACKs them.
        (S.CALLING, I.RESPONSE_2XX): (S.ACCEPTED, (A.PASS_RESPONSE, A.START_TIMER_M)),
        (S.PROCEEDING, I.RESPONSE_2XX): (S.ACCEPTED, (A.PASS_RESPONSE, A.START_TIMER_M)),
        # ¶5: a 3xx-6xx: pass it up, ACK it (§17.1.1.3), Completed with Timer D.
        (S.CALLING, I.RESPONSE_3XX_6XX): (
            S.COMPLETED,
            (A.PASS_RESPONSE, A.SEND_ACK, A.START_TIMER_D),
        ),
        (S.PROCEEDING, I.RESPONSE_3XX_6XX): (
            S.COMPLETED,
            (A.PASS_RESPONSE, A.SEND_ACK, A.START_TIMER_D),
        ),
        # ¶6: a retransmitted final response re-sends the ACK and is not passed up.
        (S.COMPLETED, I.RESPONSE_3XX_6XX): (S.COMPLETED, (A.RESEND_ACK,)),
        (S.COMPLETED, I.RESPONSE_1XX): (S.COMPLETED, ()),
        # §16.7 step 5: a proxy forwards a 2xx even after a final response (a 6xx race); the
        # TU must see it to ACK and BYE it.
        (S.COMPLETED, I.RESPONSE_2XX): (S.COMPLETED, (A.PASS_RESPONSE,)),
        # ¶6: Timer D fires: terminate. Figure 5: a transport error sending the ACK likewise.
        (S.COMPLETED, I.TIMER_D): (S.TERMINATED, ()),
        (S.COMPLETED, I.TRANSPORT_ERROR): (S.TERMINATED, (A.REPORT_TRANSPORT_ERROR,)),
        # RFC 6026 §7.2: Accepted passes 2xx up, absorbs the rest, ends on Timer M.
        (S.ACCEPTED, I.RESPONSE_2XX): (S.ACCEPTED, (A.PASS_RESPONSE,)),
        (S.ACCEPTED, I.RESPONSE_1XX): (S.ACCEPTED, ()),
        (S.ACCEPTED, I.RESPONSE_3XX_6XX): (S.ACCEPTED, ()),
        (S.ACCEPTED, I.TIMER_M): (S.TERMINATED, ()),
    }
)

# RFC 3261 §17.1.2.2 (Figure 6).
NON_INVITE_CLIENT: Table = _with_tu_terminate(
    {
        # ¶1: send the request; Timer E on unreliable transports only, Timer F always.
        (S.TRYING, I.START): (S.TRYING, (A.SEND_REQUEST, A.START_TIMER_E, A.START_TIMER_F)),
        # ¶2: Timer E in Trying: retransmit, interval min(2*E, T2).
        (S.TRYING, I.TIMER_E): (S.TRYING, (A.RETRANSMIT_REQUEST_CAPPED,)),
        # ¶3: Timer E in Proceeding: retransmit, interval T2.
        (S.PROCEEDING, I.TIMER_E): (S.PROCEEDING, (A.RETRANSMIT_REQUEST_AT_T2,)),
        # ¶2-3: Timer F in Trying or Proceeding: tell the TU (a 408), terminate.
        (S.TRYING, I.TIMER_F): (S.TERMINATED, (A.REPORT_TIMEOUT,)),
        (S.PROCEEDING, I.TIMER_F): (S.TERMINATED, (A.REPORT_TIMEOUT,)),
        # ¶2-3, §17.1.4: a transport error: tell the TU, terminate.
        (S.TRYING, I.TRANSPORT_ERROR): (S.TERMINATED, (A.REPORT_TRANSPORT_ERROR,)),
        (S.PROCEEDING, I.TRANSPORT_ERROR): (S.TERMINATED, (A.REPORT_TRANSPORT_ERROR,)),
        # ¶2: a provisional response: Proceeding, pass it up.
        (S.TRYING, I.RESPONSE_1XX): (S.PROCEEDING, (A.PASS_RESPONSE,)),
        (S.PROCEEDING, I.RESPONSE_1XX): (S.PROCEEDING, (A.PASS_RESPONSE,)),
        # ¶2-3: a final response: pass it up, Completed with Timer K.
        (S.TRYING, I.RESPONSE_2XX): (S.COMPLETED, (A.PASS_RESPONSE, A.START_TIMER_K)),
        (S.TRYING, I.RESPONSE_3XX_6XX): (S.COMPLETED, (A.PASS_RESPONSE, A.START_TIMER_K)),
        (S.PROCEEDING, I.RESPONSE_2XX): (S.COMPLETED, (A.PASS_RESPONSE, A.START_TIMER_K)),
        (S.PROCEEDING, I.RESPONSE_3XX_6XX): (S.COMPLETED, (A.PASS_RESPONSE, A.START_TIMER_K)),
        # ¶4: Completed buffers (absorbs) response retransmissions until Timer K.
        (S.COMPLETED, I.RESPONSE_1XX): (S.COMPLETED, ()),
        (S.COMPLETED, I.RESPONSE_2XX): (S.COMPLETED, ()),
        (S.COMPLETED, I.RESPONSE_3XX_6XX): (S.COMPLETED, ()),
        (S.COMPLETED, I.TIMER_K): (S.TERMINATED, ()),
    }
)

# RFC 3261 §17.2.1 (Figure 7) with RFC 6026 §7.1 (Accepted state, Timer L).
INVITE_SERVER: Table = _with_tu_terminate(
    {
        # ¶1: pass the INVITE to the TU; 100 Trying unless the TU answers within 200 ms.
        (S.PROCEEDING, I.START): (S.PROCEEDING, (A.PASS_REQUEST, A.START_TIMER_TRYING)),
        (S.PROCEEDING, I.TIMER_TRYING): (S.PROCEEDING, (A.SEND_TRYING,)),
        # ¶2: provisional responses from the TU are sent; a request retransmission gets the
        # most recent one again.
        (S.PROCEEDING, I.TU_1XX): (S.PROCEEDING, (A.SEND_RESPONSE,)),
        (S.PROCEEDING, I.REQUEST_RETRANSMISSION): (S.PROCEEDING, (A.RESEND_RESPONSE,)),
        # No final response yet: an ACK with this branch acknowledges nothing.
        (S.PROCEEDING, I.ACK): (S.PROCEEDING, ()),
        # RFC 6026 §7.1: a 2xx is sent and the transaction waits in Accepted (Timer L); the
        # 2xx retransmissions are the TU's (RFC 3261 §13.3.1.4).
        (S.PROCEEDING, I.TU_2XX): (S.ACCEPTED, (A.SEND_RESPONSE, A.START_TIMER_L)),
        # ¶3: a 3xx-6xx is sent; Completed with Timer G (unreliable only) and Timer H.
        (S.PROCEEDING, I.TU_3XX_6XX): (
            S.COMPLETED,
            (A.SEND_RESPONSE, A.START_TIMER_G, A.START_TIMER_H),
        ),
        # Figure 7, §17.2.4: a transport error: tell the TU, terminate.
        (S.PROCEEDING, I.TRANSPORT_ERROR): (S.TERMINATED, (A.REPORT_TRANSPORT_ERROR,)),
        # ¶4: in Completed, a request retransmission or Timer G re-sends the final response
        # (Timer G doubles, capped at T2).
        (S.COMPLETED, I.REQUEST_RETRANSMISSION): (S.COMPLETED, (A.RESEND_RESPONSE,)),
        (S.COMPLETED, I.TIMER_G): (S.COMPLETED, (A.RETRANSMIT_RESPONSE,)),
        # ¶5: the ACK moves to Confirmed with Timer I; Timer H or a transport error means the
        # ACK never came: tell the TU, terminate.
        (S.COMPLETED, I.ACK): (S.CONFIRMED, (A.START_TIMER_I,)),
        (S.COMPLETED, I.TIMER_H): (S.TERMINATED, (A.REPORT_TIMEOUT,)),
        (S.COMPLETED, I.TRANSPORT_ERROR): (S.TERMINATED, (A.REPORT_TRANSPORT_ERROR,)),
        # A final response was sent: later TU responses are discarded (as §17.2.2 says for
        # non-INVITE; the TU sees the state and must not rely on them).
        (S.COMPLETED, I.TU_1XX): (S.COMPLETED, ()),
        (S.COMPLETED, I.TU_2XX): (S.COMPLETED, ()),
        (S.COMPLETED, I.TU_3XX_6XX): (S.COMPLETED, ()),
        # ¶6: Confirmed absorbs ACKs (and request retransmissions) until Timer I.
        (S.CONFIRMED, I.ACK): (S.CONFIRMED, ()),
        (S.CONFIRMED, I.REQUEST_RETRANSMISSION): (S.CONFIRMED, ()),
        (S.CONFIRMED, I.TIMER_I): (S.TERMINATED, ()),
        (S.CONFIRMED, I.TU_1XX): (S.CONFIRMED, ()),
        (S.CONFIRMED, I.TU_2XX): (S.CONFIRMED, ()),
        (S.CONFIRMED, I.TU_3XX_6XX): (S.CONFIRMED, ()),
        # RFC 6026 §7.1: Accepted absorbs INVITE retransmissions, passes ACKs to the TU,
        # sends the TU's 2xx retransmissions, and ends on Timer L. A transport error is
        # reported but the state stays: the TU owns the 2xx and its ACK, and ending early
        # would let an INVITE retransmission look like a new request, the bug RFC 6026 fixes.
        (S.ACCEPTED, I.REQUEST_RETRANSMISSION): (S.ACCEPTED, ()),
        (S.ACCEPTED, I.ACK): (S.ACCEPTED, (A.PASS_ACK,)),
        (S.ACCEPTED, I.TU_2XX): (S.ACCEPTED, (A.SEND_RESPONSE,)),
        (S.ACCEPTED, I.TU_1XX): (S.ACCEPTED, ()),
        (S.ACCEPTED, I.TU_3XX_6XX): (S.ACCEPTED, ()),
        (S.ACCEPTED, I.TRANSPORT_ERROR): (S.ACCEPTED, (A.REPORT_TRANSPORT_ERROR,)),
        (S.ACCEPTED, I.TIMER_L): (S.TERMINATED, ()),
    }
)

# RFC 3261 §17.2.2 (Figure 8).
NON_INVITE_SERVER: Table = _with_tu_terminate(
    {
        # ¶1: pass the request to the TU; retransmissions in Trying are discarded.
        (S.TRYING, I.START): (S.TRYING, (A.PASS_REQUEST,)),
        (S.TRYING, I.REQUEST_RETRANSMISSION): (S.TRYING, ()),
        # ¶2: a provisional response from the TU: Proceeding.
        (S.TRYING, I.TU_1XX): (S.PROCEEDING, (A.SEND_RESPONSE,)),
        (S.PROCEEDING, I.TU_1XX): (S.PROCEEDING, (A.SEND_RESPONSE,)),
        # ¶2-3: a final response from the TU: Completed with Timer J.
        (S.TRYING, I.TU_2XX): (S.COMPLETED, (A.SEND_RESPONSE, A.START_TIMER_J)),
        (S.TRYING, I.TU_3XX_6XX): (S.COMPLETED, (A.SEND_RESPONSE, A.START_TIMER_J)),
        (S.PROCEEDING, I.TU_2XX): (S.COMPLETED, (A.SEND_RESPONSE, A.START_TIMER_J)),
        (S.PROCEEDING, I.TU_3XX_6XX): (S.COMPLETED, (A.SEND_RESPONSE, A.START_TIMER_J)),
        # ¶2: in Proceeding a retransmission gets the last provisional response.
        (S.PROCEEDING, I.REQUEST_RETRANSMISSION): (S.PROCEEDING, (A.RESEND_RESPONSE,)),
        # §17.2.4: a transport error: tell the TU, terminate.
        (S.PROCEEDING, I.TRANSPORT_ERROR): (S.TERMINATED, (A.REPORT_TRANSPORT_ERROR,)),
        (S.COMPLETED, I.TRANSPORT_ERROR): (S.TERMINATED, (A.REPORT_TRANSPORT_ERROR,)),
        # ¶3: in Completed, retransmissions get the final response again; further TU
        # responses are discarded; Timer J ends it.
        (S.COMPLETED, I.REQUEST_RETRANSMISSION): (S.COMPLETED, (A.RESEND_RESPONSE,)),
        (S.COMPLETED, I.TU_1XX): (S.COMPLETED, ()),
        (S.COMPLETED, I.TU_2XX): (S.COMPLETED, ()),
        (S.COMPLETED, I.TU_3XX_6XX): (S.COMPLETED, ()),
        (S.COMPLETED, I.TIMER_J): (S.TERMINATED, ()),
    }
)


@dataclass(frozen=True, slots=True)
class Machine:
    """One table, and the same compiled for the engine: tuples indexed by the int enums."""

    name: str
    table: Table
    initial: TransactionState
    # rows[state][input]: the table's row or None.
    rows: tuple[tuple[Row | None, ...], ...]
    # timers[state]: the timers with a row in that state; the others are cancelled on entry.
    timers: tuple[frozenset[Input], ...]


def _machine(name: str, table: Table, initial: TransactionState) -> Machine:
    rows = tuple(tuple(table.get((state, i)) for i in Input) for state in TransactionState)
    timers = tuple(
        frozenset(i for (s, i) in table if s is state and i in TIMERS) for state in TransactionState
    )
    return Machine(name, table, initial, rows, timers)


INVITE_CLIENT_MACHINE = _machine("INVITE client", INVITE_CLIENT, S.CALLING)
NON_INVITE_CLIENT_MACHINE = _machine("non-INVITE client", NON_INVITE_CLIENT, S.TRYING)
INVITE_SERVER_MACHINE = _machine("INVITE server", INVITE_SERVER, S.PROCEEDING)
NON_INVITE_SERVER_MACHINE = _machine("non-INVITE server", NON_INVITE_SERVER, S.TRYING)
