"""The objects of the SIP transaction layer: timer settings, transactions and events.

``sip.transaction`` holds the engine and re-exports everything here; import from there.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass

from sip.flow import Flow
from sip.headers import BRANCH_COOKIE, Via
from sip.message import Request, Response
from sip.transaction_fsm import Input, Machine, TransactionState
from sip.transaction_keys import Key, LegacyIdentity


def new_branch() -> str:
    """A fresh RFC 3261 branch: the magic cookie and 96 random bits (§8.1.1.7)."""
    return BRANCH_COOKIE + secrets.token_hex(12)


@dataclass(frozen=True, slots=True)
class TimerConfig:
    """T1, T2, T4 and the timers derived from them (RFC 3261 §17.1.1.1, Table 4).

    ``timer_d_unreliable`` is Timer D on unreliable transports ("at least 32 seconds",
    §17.1.1.2); ``trying_delay`` is how long an INVITE server transaction waits for the TU
    before it sends 100 Trying itself (200 ms, §17.2.1).
    """

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    timer_d_unreliable: float = 32.0
    trying_delay: float = 0.2

    def __post_init__(self) -> None:
        for name in ("t1", "t2", "t4", "timer_d_unreliable", "trying_delay"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite, non-negative number of seconds")
        if self.t1 <= 0 or self.t4 <= 0 or self.t2 < self.t1:
            raise ValueError("T1 and T4 must be positive and T2 at least T1")

    @property
    def timer_a(self) -> float:
        """INVITE request retransmit, initial interval (doubles, no cap)."""
        return self.t1

    @property
    def timer_b(self) -> float:
        """INVITE transaction timeout."""
        return 64 * self.t1

    def timer_d(self, reliable: bool) -> float:
        """Wait time for response retransmits (INVITE client, Completed)."""
        return 0.0 if reliable else self.timer_d_unreliable

    @property
    def timer_e(self) -> float:
        """Non-INVITE request retransmit, initial interval (doubles, capped at T2)."""
        return self.t1

    @property
    def timer_f(self) -> float:
        """Non-INVITE transaction timeout."""
        return 64 * self.t1

    @property
    def timer_g(self) -> float:
        """INVITE response retransmit, initial interval (doubles, capped at T2)."""
        return self.t1

    @property
    def timer_h(self) -> float:
        """Wait time for ACK receipt."""
        return 64 * self.t1

    def timer_i(self, reliable: bool) -> float:
        """Wait time for ACK retransmits."""
        return 0.0 if reliable else self.t4

    def timer_j(self, reliable: bool) -> float:
        """Wait time for non-INVITE request retransmits."""
        return 0.0 if reliable else 64 * self.t1

    def timer_k(self, reliable: bool) -> float:
        """Wait time for non-INVITE response retransmits."""
        return 0.0 if reliable else self.t4

    @property
    def timer_l(self) -> float:
        """INVITE server wait in Accepted (RFC 6026 §7.1)."""
        return 64 * self.t1

    @property
    def timer_m(self) -> float:
        """INVITE client wait in Accepted (RFC 6026 §7.2)."""
        return 64 * self.t1

    def durations(self, reliable: bool) -> dict[Input, float | None]:
        """Each timer's (initial) duration on a transport; None: not started at all.

        Timers A, E and G only run on unreliable transports (§17.1.1.2, §17.1.2.2, §17.2.1).
        """
        return {
            Input.TIMER_A: None if reliable else self.timer_a,
            Input.TIMER_B: self.timer_b,
            Input.TIMER_D: self.timer_d(reliable),
            Input.TIMER_E: None if reliable else self.timer_e,
            Input.TIMER_F: self.timer_f,
            Input.TIMER_G: None if reliable else self.timer_g,
            Input.TIMER_H: self.timer_h,
            Input.TIMER_I: self.timer_i(reliable),
            Input.TIMER_J: self.timer_j(reliable),
            Input.TIMER_K: self.timer_k(reliable),
            Input.TIMER_L: self.timer_l,
            Input.TIMER_M: self.timer_m,
            Input.TIMER_TRYING: self.trying_delay,
        }


# ---------------------------------------------------------------------------- transactions


class Transaction:
    """What server and client transactions share. The engine owns every field but two:
    ``context`` is the TU's to use, and the glue may replace ``flow`` (§18.2.2: a new
    connection when the original one is gone).
    """

    __slots__ = (
        "_armed",
        "_interval",
        "_live",
        "_machine",
        "_reliable",
        "context",
        "flow",
        "is_invite",
        "key",
        "last_response",
        "method",
        "request",
        "state",
        "via",
    )

    def __init__(
        self, machine: Machine, request: Request, flow: Flow, key: Key | None, via: Via | None
    ) -> None:
        self.request = request
        self.flow = flow
        self.method = request.method
        self.is_invite = request.method == "INVITE"
        # None when the request cannot be matched (unreadable Via): the transaction still
        # runs, but nothing can find it again.
        self.key = key
        self.via = via  # the top Via, parsed
        self.state = machine.initial
        self.last_response: Response | None = None
        self.context: object = None
        self._machine = machine
        self._reliable = flow.reliable
        self._live = True
        self._armed: dict[Input, int] = {}  # timer -> seq of its live heap entry
        self._interval = 0.0  # current Timer A / E / G interval

    @property
    def branch(self) -> str | None:
        return None if self.via is None else self.via.branch

    @property
    def terminated(self) -> bool:
        return self.state is TransactionState.TERMINATED

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.method} {self.state.label}"
            f" branch={self.branch!r} {self.flow.transport}:{self.flow.remote}>"
        )


class ServerTransaction(Transaction):
    """A server transaction (§17.2). ``last_response`` is the last response sent.

    Once a non-INVITE transaction has sent its final response, ``request`` and
    ``last_response`` keep only their start-line facts (method and URI, status and reason):
    Completed needs nothing more than the response bytes it re-sends.
    """

    __slots__ = ("_ack_key", "_legacy", "_response_bytes")

    def __init__(
        self,
        machine: Machine,
        request: Request,
        flow: Flow,
        key: Key | None,
        via: Via | None,
        legacy: LegacyIdentity | None,
    ) -> None:
        super().__init__(machine, request, flow, key, via)
        self._legacy = legacy  # RFC 2543 peer: how its ACK will be matched
        self._ack_key: Key | None = None
        self._response_bytes = b""


class ClientTransaction(Transaction):
    """A client transaction (§17.1). ``last_response`` is the last response passed up."""

    __slots__ = ("_ack_bytes", "_request_bytes")

    def __init__(
        self, machine: Machine, request: Request, flow: Flow, key: Key, via: Via, data: bytes
    ) -> None:
        super().__init__(machine, request, flow, key, via)
        self._request_bytes = data
        self._ack_bytes = b""


# ---------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class Send:
    """Put ``data`` on the wire to ``flow``. If it fails, call ``transport_error(transaction)``."""

    flow: Flow
    data: bytes
    transaction: Transaction | None = None


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A new request for the TU.

    ``transaction`` is None for an ACK the layer does not absorb: one matching no transaction
    (the ACK for a 2xx, §17.2.3) or one arriving in Accepted (RFC 6026 §7.1). Those belong to
    the dialog layer and are never answered.
    """

    transaction: ServerTransaction | None
    request: Request
    flow: Flow


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """A response for the TU.

    ``transaction`` is None for a stray response that matches no client transaction
    (§18.1.2). RFC 6026, updating §18.1.2, asks every element but a stateless proxy to
    discard those silently: a UA or B2BUA should only count or log them (a 2xx can only be
    stray after Timer M, i.e. 64*T1 after the first 2xx reached the transaction).
    """

    transaction: ClientTransaction | None
    response: Response
    flow: Flow


@dataclass(frozen=True, slots=True)
class TransactionTimeout:
    """Timer B or F (client: treat as a 408, §8.1.3.1) or Timer H (server: no ACK came)."""

    transaction: Transaction


@dataclass(frozen=True, slots=True)
class TransportError:
    """The transport failed for this transaction (§17.1.4, §17.2.4)."""

    transaction: Transaction


@dataclass(frozen=True, slots=True)
class TransactionTerminated:
    """The transaction reached Terminated and left the layer's tables."""

    transaction: Transaction


@dataclass(frozen=True, slots=True)
class Overloaded:
    """The transaction table is full: answer ``503`` with Retry-After statelessly."""

    request: Request
    flow: Flow


Event = (
    Send
    | RequestReceived
    | ResponseReceived
    | TransactionTimeout
    | TransportError
    | TransactionTerminated
    | Overloaded
)


class TransactionTableFull(Exception):
    """``send_request`` found ``max_transactions`` live transactions (answer 503 upstream)."""
