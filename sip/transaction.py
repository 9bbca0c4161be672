"""The SIP transaction layer, sans-I/O (RFC 3261 §17, amended by RFC 6026).

``TransactionLayer`` takes messages and TU calls in and gives events out; it never touches a
socket or a clock. Every entry point takes ``now`` (seconds, any monotonic origin), the layer
reports ``next_deadline()`` and the asyncio glue calls ``handle_timer(now)`` then — one
``loop.call_at`` for all transactions (DESIGN.md principle 1).

The four state machines are the tables of ``sip.transaction_fsm``; this module only matches
messages to transactions (``sip.transaction_keys``) and carries out the tables' actions.
Timers live in one heap of ``(deadline, seq, transaction, timer)`` with lazy deletion: a
transaction remembers the ``seq`` of each armed timer, and a popped entry whose ``seq`` is no
longer armed is dropped. Messages are serialised once; retransmissions re-send the same bytes.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import cast

from sip.errors import SipParseError
from sip.flow import Flow
from sip.headers import parse_cseq
from sip.message import Headers, Request, Response, response_to, split_list
from sip.transaction_fsm import (
    INVITE_CLIENT_MACHINE,
    INVITE_SERVER_MACHINE,
    NON_INVITE_CLIENT_MACHINE,
    NON_INVITE_SERVER_MACHINE,
    TIMER_STARTED_BY,
    Action,
    Input,
    TransactionState,
)
from sip.transaction_keys import (
    Key,
    LegacyIdentity,
    client_key,
    cookie_branch,
    legacy_identity,
    message_top_via,
    response_client_key,
    server_key,
    to_tag_of,
    top_via,
)
from sip.transaction_model import (
    ClientTransaction,
    Event,
    Overloaded,
    RequestReceived,
    ResponseReceived,
    Send,
    ServerTransaction,
    TimerConfig,
    Transaction,
    TransactionTableFull,
    TransactionTerminated,
    TransactionTimeout,
    TransportError,
    new_branch,
)
from sip.validate import MessageInfo

__all__ = [
    "ClientTransaction",
    "Event",
    "Flow",
    "Overloaded",
    "RequestReceived",
    "ResponseReceived",
    "Send",
    "ServerTransaction",
    "TimerConfig",
    "Transaction",
    "TransactionLayer",
    "TransactionState",
    "TransactionTableFull",
    "TransactionTerminated",
    "TransactionTimeout",
    "TransportError",
    "build_ack",
    "new_branch",
]


# ---------------------------------------------------------------------------- the engine

_Message = Request | Response | None
_Handler = Callable[[Transaction, _Message, Flow, float, list[Event]], None]
_TERMINATED = TransactionState.TERMINATED
# Heap compaction: rebuild once stale entries are this many and outnumber live ones.
_COMPACT_MIN_STALE = 1024


def _response_input(status: int, tu: bool) -> Input:
    if status < 200:
        return Input.TU_1XX if tu else Input.RESPONSE_1XX
    if status < 300:
        return Input.TU_2XX if tu else Input.RESPONSE_2XX
    return Input.TU_3XX_6XX if tu else Input.RESPONSE_3XX_6XX


class TransactionLayer:
    """All client and server transactions of one SIP element.

    ``max_transactions`` bounds the live transactions of both kinds together: when it is
    reached, ``receive_request`` answers ``Overloaded`` and ``send_request`` raises
    ``TransactionTableFull``.
    """

    __slots__ = (
        "_clients",
        "_count",
        "_durations",
        "_handlers",
        "_heap",
        "_max",
        "_seq",
        "_servers",
        "_stale",
        "timers",
    )

    def __init__(self, timers: TimerConfig, max_transactions: int = 200_000) -> None:
        if max_transactions < 1:
            raise ValueError("max_transactions must be at least 1")
        self.timers = timers
        self._max = max_transactions
        self._servers: dict[Key, ServerTransaction] = {}
        self._clients: dict[Key, ClientTransaction] = {}
        self._count = 0
        self._heap: list[tuple[float, int, Transaction, Input]] = []
        self._seq = 0
        self._stale = 0  # heap entries no longer armed
        self._durations = (timers.durations(reliable=False), timers.durations(reliable=True))
        handlers: dict[Action, _Handler] = {
            Action.SEND_REQUEST: self._send_request,
            Action.RETRANSMIT_REQUEST_DOUBLING: self._retransmit_doubling,
            Action.RETRANSMIT_REQUEST_CAPPED: self._retransmit_capped,
            Action.RETRANSMIT_REQUEST_AT_T2: self._retransmit_at_t2,
            Action.PASS_RESPONSE: self._pass_response,
            Action.SEND_ACK: self._send_ack,
            Action.RESEND_ACK: self._resend_ack,
            Action.PASS_REQUEST: self._pass_request,
            Action.PASS_ACK: self._pass_ack,
            Action.SEND_TRYING: self._send_trying,
            Action.SEND_RESPONSE: self._send_response,
            Action.RESEND_RESPONSE: self._resend_response,
            Action.RETRANSMIT_RESPONSE: self._retransmit_response,
            Action.REPORT_TIMEOUT: self._report_timeout,
            Action.REPORT_TRANSPORT_ERROR: self._report_transport_error,
        }
        for action, timer in TIMER_STARTED_BY.items():
            handlers[action] = self._timer_starter(timer)
        # Indexed by the Action int: one C-level lookup per action run.
        self._handlers = tuple(handlers[action] for action in Action)

    def __len__(self) -> int:
        """Live transactions, client and server."""
        return self._count

    # ------------------------------------------------------------------ server side

    def receive_request(
        self, request: Request, flow: Flow, now: float, info: MessageInfo | None = None
    ) -> list[Event]:
        """A request from the network (already validated; ``info`` saves re-parsing it).

        §17.2.3: a retransmission goes to its transaction (which may re-send its last
        response), an ACK for a 3xx-6xx is absorbed, anything else new creates a server
        transaction and reaches the TU as ``RequestReceived``.
        """
        via = message_top_via(request, info)
        is_ack = request.method == "ACK"
        key: Key | None = None
        legacy: LegacyIdentity | None = None
        if via is not None:
            branch = cookie_branch(via)
            if branch is not None:
                key = server_key(via, branch, "INVITE" if is_ack else request.method)
            else:
                legacy = legacy_identity(request, via, info)
                if legacy is not None:
                    key = (
                        legacy.ack_key(legacy.to_tag)
                        if is_ack
                        else legacy.request_key(request.method)
                    )
        txn = self._servers.get(key) if key is not None else None
        if txn is not None:
            events: list[Event] = []
            kind = Input.ACK if is_ack else Input.REQUEST_RETRANSMISSION
            self._fire(txn, kind, request, flow, now, events)
            return events
        if is_ack:
            # §17.2.3: an ACK matching no transaction (the ACK for a 2xx) goes to the TU.
            return [RequestReceived(None, request, flow)]
        if self._count >= self._max:
            return [Overloaded(request, flow)]
        machine = INVITE_SERVER_MACHINE if request.method == "INVITE" else NON_INVITE_SERVER_MACHINE
        txn = ServerTransaction(machine, request, flow, key, via, legacy)
        if key is not None:
            self._servers[key] = txn
        self._count += 1
        events = []
        self._fire(txn, Input.START, request, flow, now, events)
        return events

    def respond(
        self, transaction: ServerTransaction, response: Response, now: float
    ) -> list[Event]:
        """Send the TU's response through ``transaction`` (to ``transaction.flow``).

        Responses the tables discard (after a final response, §17.2.2) and responses to a
        terminated transaction return no events.
        """
        if not isinstance(transaction, ServerTransaction):
            raise ValueError("respond() takes a server transaction")
        if not 100 <= response.status <= 699:
            raise ValueError(f"not a response status: {response.status}")
        if transaction.state is _TERMINATED:
            return []
        events: list[Event] = []
        kind = _response_input(response.status, tu=True)
        if not self._fire(transaction, kind, response, transaction.flow, now, events):
            raise ValueError(  # pragma: no cover - every live state has rows for TU inputs
                f"{transaction._machine.name} transaction in {transaction.state.label} "
                f"cannot send a {response.status}"
            )
        if response.status >= 200 and transaction.last_response is response:
            _slim(transaction, response)  # sent (the tables discard some, §17.2.2)
        return events

    def find_invite_for_cancel(
        self, cancel: Request, info: MessageInfo | None = None
    ) -> ServerTransaction | None:
        """The live INVITE server transaction a CANCEL targets (§9.2, matched as §17.2.3)."""
        via = message_top_via(cancel, info)
        if via is None:
            return None
        branch = cookie_branch(via)
        if branch is not None:
            key = server_key(via, branch, "INVITE")
        else:
            legacy = legacy_identity(cancel, via, info)
            if legacy is None:
                return None
            key = legacy.request_key("INVITE")
        txn = self._servers.get(key)
        return txn if txn is not None and txn.is_invite else None

    # ------------------------------------------------------------------ client side

    def send_request(
        self, request: Request, flow: Flow, now: float
    ) -> tuple[ClientTransaction, list[Event]]:
        """Start a client transaction for ``request`` and send it to ``flow``.

        The request carries its final top Via, with a branch from ``new_branch()`` (a CANCEL
        reuses its INVITE's branch, §9.1). Raises ``ValueError`` for an ACK (never a client
        transaction: §17.1.1.3 builds the ACK for 3xx-6xx, the TU sends the ACK for 2xx), a
        missing or non-RFC 3261 branch, a CSeq method that is not the request's, or a branch
        already in use; ``TransactionTableFull`` when ``max_transactions`` are live.
        """
        method = request.method
        if method == "ACK":
            raise ValueError("an ACK is not sent through a client transaction")
        via = top_via(request.headers)
        branch = cookie_branch(via) if via is not None else None
        if via is None or branch is None:
            raise ValueError("the request needs a top Via with an RFC 3261 branch (new_branch())")
        cseq = request.headers.get("CSeq")
        try:
            cseq_method = parse_cseq(cseq)[1] if cseq is not None else None
        except SipParseError:
            cseq_method = None
        if cseq_method != method:
            raise ValueError("the request needs a CSeq naming its method (RFC 3261 §8.1.1.5)")
        key = client_key(branch, method)
        if key in self._clients:
            raise ValueError(f"a {method} client transaction with branch {branch} exists")
        if self._count >= self._max:
            raise TransactionTableFull(f"{self._count} transactions live")
        machine = INVITE_CLIENT_MACHINE if method == "INVITE" else NON_INVITE_CLIENT_MACHINE
        txn = ClientTransaction(machine, request, flow, key, via, request.to_bytes())
        self._clients[key] = txn
        self._count += 1
        events: list[Event] = []
        self._fire(txn, Input.START, request, flow, now, events)
        return txn, events

    def receive_response(
        self, response: Response, flow: Flow, now: float, info: MessageInfo | None = None
    ) -> list[Event]:
        """A response from the network, matched by top Via branch and CSeq method (§17.1.3).

        A response whose Via or CSeq cannot be read is dropped (§18.1.2: nobody to tell).
        """
        key = response_client_key(response, info)
        if key is None:
            return []
        txn = self._clients.get(key)
        if txn is None:
            return [ResponseReceived(None, response, flow)]
        events: list[Event] = []
        self._fire(txn, _response_input(response.status, tu=False), response, flow, now, events)
        if response.status >= 200 and txn.last_response is response:
            _slim(txn, response)  # the first final response (retransmissions are absorbed)
            txn._request_bytes = b""  # §17.1.1.2, §17.1.2.2: no retransmission after a final
        return events

    # ------------------------------------------------------------------ both sides

    def transport_error(self, transaction: Transaction, now: float) -> list[Event]:
        """The glue could not send for ``transaction`` (§17.1.4, §17.2.4)."""
        if transaction.state is _TERMINATED:
            return []
        events: list[Event] = []
        self._fire(transaction, Input.TRANSPORT_ERROR, None, transaction.flow, now, events)
        return events

    def terminate(self, transaction: Transaction, now: float) -> list[Event]:
        """The TU abandons ``transaction`` at once, sending nothing (e.g. §9.1's INVITE that
        never got a final response after its CANCEL was answered)."""
        if transaction.state is _TERMINATED:
            return []
        events: list[Event] = []
        self._fire(transaction, Input.TU_TERMINATE, None, transaction.flow, now, events)
        return events

    def next_deadline(self) -> float | None:
        """When ``handle_timer`` next has work, or None when no timer is armed."""
        heap = self._heap
        while heap:
            _, seq, txn, timer = heap[0]
            if txn._armed.get(timer) == seq:
                return heap[0][0]
            heapq.heappop(heap)
            self._stale -= 1
        return None

    def handle_timer(self, now: float) -> list[Event]:
        """Fire every timer due at ``now``, in deadline order."""
        events: list[Event] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, seq, txn, timer = heapq.heappop(heap)
            armed = txn._armed
            if armed.get(timer) != seq:
                self._stale -= 1
                continue
            del armed[timer]
            self._fire(txn, timer, None, txn.flow, now, events)
        return events

    # ------------------------------------------------------------------ the table walk

    def _fire(
        self,
        txn: Transaction,
        kind: Input,
        message: Request | Response | None,
        flow: Flow,
        now: float,
        events: list[Event],
    ) -> bool:
        """Apply the row for ``(txn.state, kind)``; False when there is none (ignored)."""
        row = txn._machine.rows[txn.state][kind]
        if row is None:
            return False
        next_state, actions = row
        if next_state is not txn.state:
            txn.state = next_state
            armed = txn._armed
            if armed:
                # Timers with no row in the new state are cancelled (lazily, in the heap).
                keep = txn._machine.timers[next_state]
                for timer in [t for t in armed if t not in keep]:
                    del armed[timer]
                    self._stale += 1
        handlers = self._handlers
        for action in actions:
            handlers[action](txn, message, flow, now, events)
        if next_state is _TERMINATED and txn._live:
            self._remove(txn, events)
        return True

    def _remove(self, txn: Transaction, events: list[Event]) -> None:
        # §17.1.1.2 / §17.2.1: a transaction is destroyed the instant it is Terminated.
        txn._live = False
        self._count -= 1
        key = txn.key
        if isinstance(txn, ServerTransaction):
            if key is not None and self._servers.get(key) is txn:
                del self._servers[key]
            ack_key = txn._ack_key
            if ack_key is not None and self._servers.get(ack_key) is txn:
                del self._servers[ack_key]
        elif key is not None and self._clients.get(key) is txn:
            del self._clients[key]
        events.append(TransactionTerminated(txn))
        if self._stale > _COMPACT_MIN_STALE and 2 * self._stale > len(self._heap):
            self._compact()

    def _compact(self) -> None:
        # In place: handle_timer may be iterating over this very list.
        heap = self._heap
        heap[:] = [e for e in heap if e[2]._armed.get(e[3]) == e[1]]
        heapq.heapify(heap)
        self._stale = 0

    # ------------------------------------------------------------------ timers

    def _schedule(self, txn: Transaction, timer: Input, deadline: float) -> None:
        self._seq += 1
        if timer in txn._armed:
            self._stale += 1
        txn._armed[timer] = self._seq
        heapq.heappush(self._heap, (deadline, self._seq, txn, timer))

    def _timer_starter(self, timer: Input) -> _Handler:
        retransmit = timer in (Input.TIMER_A, Input.TIMER_E, Input.TIMER_G)

        def start(
            txn: Transaction,
            message: Request | Response | None,
            flow: Flow,
            now: float,
            events: list[Event],
        ) -> None:
            delay = self._durations[txn._reliable][timer]
            if delay is None:
                return  # a retransmit timer on a reliable transport
            if retransmit:
                txn._interval = delay
            if delay > 0:
                self._schedule(txn, timer, now + delay)
            else:
                # A zero timer (D, I, J, K on reliable transports) fires at once.
                self._fire(txn, timer, None, txn.flow, now, events)

        return start

    # ------------------------------------------------------------------ client actions

    def _send_request(
        self, txn: Transaction, msg: _Message, flow: Flow, now: float, events: list[Event]
    ) -> None:
        events.append(Send(txn.flow, cast(ClientTransaction, txn)._request_bytes, txn))

    def _retransmit_doubling(
        self, txn: Transaction, msg: _Message, flow: Flow, now: float, events: list[Event]
    ) -> None:
        # §17.1.1.2: Timer A resets to twice its value each time (no T2 cap for INVITE).
        events.append(Send(txn.flow, cast(ClientTransaction, txn)._request_bytes, txn))
        txn._interval *= 2
        self._schedule(txn, Input.TIMER_A, now + txn._interval)

    def _retransmit_capped(
        self, txn: Transaction, msg: _Message, flow: Flow, now: float, events: list[Event]
    ) -> None:
        # §17.1.2.2: in Trying, Timer E resets to MIN(2*E, T2).
        events.append(Send(txn.flow, cast(ClientTransaction, txn)._request_bytes, txn))
        txn._interval = min(2 * txn._interval, self.timers.t2)
        self._schedule(txn, Input.TIMER_E, now + txn._interval)

    def _retransmit_at_t2(
        self, txn: Transaction, msg: _Message, flow: Flow, now: float, events: list[Event]
    ) -> None:
        # §17.1.2.2: in Proceeding, Timer E resets to T2.
        events.append(Send(txn.flow, cast(ClientTransaction, txn)._request_bytes, txn))
        txn._interval = self.timers.t2
        self._schedule(txn, Input.TIMER_E, now + txn._interval)

    def _pass_response(
        self, txn: Transaction, msg: _Message, flow: Flow, now: float, events: list[Event]
    ) -> None:
        response = cast(Response, msg)
        client = cast(ClientTransaction, txn)
        client.last_response = response
        events.append(ResponseReceived(client, response, flow))

    def _send_ack(
        self, txn: Transaction, msg: _Message, flow: Flow, now: float, events: list[Event]
    ) -> None:
        client = cast(ClientTransaction, txn)
        client._ack_bytes = build_ack(client.request, cast(Response, msg)).to_bytes()
        events.append(Send(client.flow, client._ack_bytes, client))

    def _resend_ack(
        self, txn: Transaction, msg: _Message, flow: Flow, now: float, events: list[Event]
    ) -> None:
        client = cast(ClientTransaction, txn)
        events.append(Send(client.flow, client._ack_bytes, client))

    # ------------------------------------------------------------------ server actions

    def _pass_request(
        self, txn: Transaction, msg: _Message, flow: Flow, now: float, events: list[Event]
    ) -> None:
        events.append(RequestReceived(cast(ServerTransaction, txn), txn.request, txn.flow))

    def _pass_ack(
        self, txn: Transaction, msg: _Message, flow: Flow, now: float, events: list[Event]
    ) -> None:
        events.append(RequestReceived(None, cast(Request, msg), flow))

    def _send_trying(
        self, txn: Transaction, msg: _Message, flow: Flow, now: float, events: list[Event]
    ) -> None:
        # §17.2.1: 100 Trying built per §8.2.6 (Timestamp echoed), with no To tag added.
        if txn.last_response is None:
            self._transmit(cast(ServerTransaction, txn), response_to(txn.request, 100), events)

    def _send_response(
        self, txn: Transaction, msg: _Message, flow: Flow, now: float, events: list[Event]
    ) -> None:
        server = cast(ServerTransaction, txn)
        response = cast(Response, msg)
        if server._armed.pop(Input.TIMER_TRYING, None) is not None:
            self._stale += 1  # the TU answered: no automatic 100 Trying
        self._transmit(server, response, events)
        legacy = server._legacy
        if legacy is not None and server.is_invite and response.status >= 200:
            # §17.2.3: an RFC 2543 ACK matches by the To tag of the response sent.
            self._register_ack_key(server, legacy.ack_key(to_tag_of(response)))

    def _register_ack_key(self, server: ServerTransaction, key: Key) -> None:
        old = server._ack_key
        if old is not None and self._servers.get(old) is server:
            del self._servers[old]
        server._ack_key = key
        self._servers.setdefault(key, server)

    def _transmit(self, server: ServerTransaction, response: Response, events: list[Event]) -> None:
        server.last_response = response
        server._response_bytes = response.to_bytes()
        events.append(Send(server.flow, server._response_bytes, server))

    def _resend_response(
        self, txn: Transaction, msg: _Message, flow: Flow, now: float, events: list[Event]
    ) -> None:
        server = cast(ServerTransaction, txn)
        if server._response_bytes:
            events.append(Send(server.flow, server._response_bytes, server))

    def _retransmit_response(
        self, txn: Transaction, msg: _Message, flow: Flow, now: float, events: list[Event]
    ) -> None:
        # §17.2.1: Timer G resets to MIN(2*G, T2).
        server = cast(ServerTransaction, txn)
        events.append(Send(server.flow, server._response_bytes, server))
        server._interval = min(2 * server._interval, self.timers.t2)
        self._schedule(server, Input.TIMER_G, now + server._interval)

    # ------------------------------------------------------------------ reports

    def _report_timeout(
        self, txn: Transaction, msg: _Message, flow: Flow, now: float, events: list[Event]
    ) -> None:
        events.append(TransactionTimeout(txn))

    def _report_transport_error(
        self, txn: Transaction, msg: _Message, flow: Flow, now: float, events: list[Event]
    ) -> None:
        events.append(TransportError(txn))


def _slim(txn: Transaction, final: Response) -> None:
    """Drop the parsed messages of a transaction that has its final response.

    What is left of its life (Completed, Accepted: up to 64*T1 = 32 s on UDP) needs only
    bytes (a response or ACK to re-send) and its keys; the TU keeps the messages it wants.
    At thousands of transactions a second, parsed messages kept that long would dominate
    memory and the garbage collector's work (a full collection walks them all). ``request``
    and ``last_response`` keep their start-line facts.
    """
    txn.request = Request(txn.method, txn.request.uri)
    txn.last_response = Response(final.status, final.reason)
    txn.via = None


def build_ack(invite: Request, response: Response) -> Request:
    """The ACK for a 3xx-6xx response to ``invite`` (RFC 3261 §17.1.1.3).

    Same Request-URI, Call-ID, From and CSeq number (method ACK) as the INVITE; its top Via
    only (so the same branch); the To of the response, with its tag; the INVITE's Route
    header fields. No body.
    """
    source = invite.headers
    headers = Headers()
    via = source.get("Via")
    if via is not None:
        headers.add("Via", split_list(via)[0] if "," in via else via)
    headers.add("Max-Forwards", source.get("Max-Forwards") or "70")
    for route in source.get_all("Route"):
        headers.add("Route", route)
    for name in ("From", "To", "Call-ID"):
        value = response.headers.get(name) if name == "To" else source.get(name)
        if value is not None:
            headers.add(name, value)
    cseq = source.get("CSeq")
    number = parse_cseq(cseq)[0] if cseq is not None else 1
    headers.add("CSeq", f"{number} ACK")
    return Request("ACK", invite.uri, headers)
