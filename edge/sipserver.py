"""The edge's SIP service: transports → parser → transactions → registrar/UAS, and back.

This is asyncio glue around the sans-I/O cores. Incoming messages go through one bounded
ingress queue (full queue → ``503`` with ``Retry-After``, DESIGN.md principle 3), are parsed
and validated, matched to transactions, and handed to the request handlers by listener side:
the phone side registers and answers phones; the trunk side admits only configured carriers
(none yet, so it refuses everything with ``403``).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from edge.auth import PhoneAuth
from edge.b2bua import B2BUA
from edge.call_model import Action, Call, CallEnded, LegName, MediaPlanned, MediaTarget, OpenMedia
from edge.callmedia import CallMedia
from edge.certs import ensure_self_signed, server_ssl_context
from edge.config import EdgeConfig, HostPort, Listener
from edge.limits import AuthFailureThrottle, RateLimiter
from edge.location import LocationService
from edge.outbox import Outbox
from edge.registrar import Registrar
from edge.rejections import RejectionLog
from edge.responses import ALLOW, SUPPORTED, SUPPORTED_EXTENSIONS, finish
from edge.timers import EngineTimer
from sip.digest import DigestAuthenticator
from sip.errors import SipParseError
from sip.flow import Flow
from sip.headers import BRANCH_COOKIE
from sip.message import Request, Response, response_to
from sip.parser import parse_message
from sip.stateless import error_response, stamp_via
from sip.transaction import (
    ClientTransaction,
    Event,
    Overloaded,
    RequestReceived,
    ResponseReceived,
    Send,
    ServerTransaction,
    TimerConfig,
    TransactionLayer,
    TransactionTimeout,
    TransportError,
)
from sip.transport import Transports
from sip.validate import RequestInfo, validate_request, validate_response

log = logging.getLogger("voxedge.sip")

# RFC 3261 §8.2.1: methods we recognise (others get 501) and the ones this edge serves.
KNOWN_METHODS = frozenset(
    "INVITE ACK BYE CANCEL OPTIONS REGISTER PRACK SUBSCRIBE NOTIFY PUBLISH INFO REFER "
    "MESSAGE UPDATE".split()
)
# User-Agents of SIP scanning tools (SIPVicious and its "friendly-scanner" disguise, sipcli,
# VaxSIPUserAgent, iWar, sundayddr, sip-scan): their requests are dropped without an answer.
_SCANNER_RE = re.compile(
    r"friendly-scanner|sipvicious|sipcli|vaxsipuseragent|iwar|sundayddr|sip-?scan", re.I
)
PHONES = "phones"
TRUNKS = "trunks"


@dataclass(frozen=True, slots=True)
class BoundListener:
    side: str
    transport: str
    address: tuple[str, int]


class SipService:
    def __init__(
        self,
        config: EdgeConfig,
        *,
        secret: bytes | None = None,
        max_queue: int = 4096,
        wall_clock: Callable[[], float] = time.time,
        outbox: Outbox | None = None,
    ) -> None:
        self.config = config
        self._started = config
        self.counters: collections.Counter[str] = collections.Counter()
        self._loop = asyncio.get_running_loop()
        settings = config.edge
        self.transactions = TransactionLayer(TimerConfig(settings.t1, settings.t2, settings.t4))
        self.location = LocationService()
        self._secret = secret or secrets.token_bytes(32)
        self.authenticator = DigestAuthenticator(self._secret, settings.domain, settings.nonce_ttl)
        self.auth = PhoneAuth(
            self.authenticator,
            AuthFailureThrottle(settings.auth_failures, settings.auth_cooldown),
            self._reject,
        )
        self.registrar = Registrar(self.auth, self.location, self._reject, wall_clock)
        self.calls = B2BUA(
            self.transactions,
            self.auth,
            self.location,
            lambda: self.config,
            self._reject,
            wall_clock,
        )
        self.media = CallMedia(
            self._loop,
            lambda: self.config,
            outbox,
            self._media_ready,
            self._media_timeout,
            self._dtmf,
        )
        self.transports = Transports(
            self._on_bytes,
            max_connections=settings.max_connections,
            idle_timeout=settings.tcp_idle_timeout,
        )
        self._rejections = RejectionLog(log)
        self.listeners: list[BoundListener] = []
        self._sides: dict[tuple[str, str, int], str] = {}
        self._limiters: dict[tuple[str, str], RateLimiter] = {}  # (side, method)
        self._queue: collections.deque[tuple[bytes, Flow]] = collections.deque()
        self._max_queue = max_queue
        self._draining = False
        self._txn_timer = EngineTimer(
            self._loop, self.transactions.next_deadline, self._on_txn_timer
        )
        self._location_timer = EngineTimer(
            self._loop, self.location.next_deadline, self._on_location_timer
        )
        self._nonce_timer = EngineTimer(
            self._loop, self.authenticator.next_deadline, self.authenticator.handle_timer
        )
        self._call_timer = EngineTimer(self._loop, self.calls.next_deadline, self._on_call_timer)
        self._configure_limiters(config)

    # ------------------------------------------------------------------ status (read-only)

    @property
    def registrations(self) -> int:
        """Registered contact bindings, all AORs together (expired ones not yet swept count)."""
        return len(self.location)

    @property
    def active_calls(self) -> int:
        """Calls the B2BUA holds, ringing or answered."""
        return len(self.calls.calls)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> list[BoundListener]:
        for side, listener in (
            (PHONES, self.config.phones_listener),
            (TRUNKS, self.config.trunks_listener),
        ):
            if listener is not None:
                await self._listen(side, listener)
        return self.listeners

    async def _listen(self, side: str, listener: Listener) -> None:
        if listener.udp is not None:
            self._bound(side, "udp", await self.transports.listen_udp(*_bind(listener.udp)))
        if listener.tcp is not None:
            self._bound(side, "tcp", await self.transports.listen_tcp(*_bind(listener.tcp)))
        if listener.tls is not None and listener.tls_cert and listener.tls_key:
            if listener.tls_self_signed:
                ensure_self_signed(
                    listener.tls_cert,
                    listener.tls_key,
                    self.config.edge.domain,
                    [self.config.edge.advertise, self.config.edge.domain, listener.tls.host],
                )
            context = server_ssl_context(listener.tls_cert, listener.tls_key)
            address = await self.transports.listen_tls(*_bind(listener.tls), context)
            self._bound(side, "tls", address)

    def _bound(self, side: str, transport: str, address: tuple[str, int]) -> None:
        self.listeners.append(BoundListener(side, transport, address))
        self._sides[(transport, address[0], address[1])] = side
        log.info("listening: %s %s %s:%d", side, transport, address[0], address[1])

    async def stop(self) -> None:
        self._act(self.calls.shutdown(self._loop.time()))  # BYEs out, records queued
        for timer in (self._txn_timer, self._location_timer, self._nonce_timer, self._call_timer):
            timer.cancel()
        await self.media.close()
        await self.transports.close()

    def reload(self, config: EdgeConfig) -> list[str]:
        """Swap the config snapshot; returns the changed keys that wait for a restart.

        Phones, expiry bounds and rate limits apply to the next request (the bindings of a
        phone no longer configured go at once); a new domain or
        nonce lifetime gets a new authenticator (under the same key), a new failed-auth limit a
        fresh throttle. Listeners, SIP timers and connection limits keep running as they are.
        """
        old = self.config.edge
        new = config.edge
        if (old.domain, old.nonce_ttl) != (new.domain, new.nonce_ttl):
            self._nonce_timer.cancel()
            self.authenticator = DigestAuthenticator(self._secret, new.domain, new.nonce_ttl)
            self.auth.authenticator = self.authenticator
            self._nonce_timer = EngineTimer(
                self._loop, self.authenticator.next_deadline, self.authenticator.handle_timer
            )
        if (old.auth_failures, old.auth_cooldown) != (new.auth_failures, new.auth_cooldown):
            self.auth.throttle = AuthFailureThrottle(new.auth_failures, new.auth_cooldown)
        self.config = config
        self._configure_limiters(config)
        if dropped := self.registrar.prune(config, self._loop.time()):
            log.info("bindings dropped: %d AOR(s) no longer in the configuration", len(dropped))
        # What only a restart changes, compared with the config the service started with.
        started = self._started
        pending = [
            f"edge.{key}"
            for key in (
                *("t1", "t2", "t4", "tcp_idle_timeout", "max_connections"),
                *("media_ports", "media_address"),
            )
            if getattr(started.edge, key) != getattr(new, key)
        ]
        for side, before, after in (
            (PHONES, started.phones_listener, config.phones_listener),
            (TRUNKS, started.trunks_listener, config.trunks_listener),
        ):
            if _sockets(before) != _sockets(after):
                pending.append(f"listen.{side}")
        return pending

    def _configure_limiters(self, config: EdgeConfig) -> None:
        now = self._loop.time()
        self._limiters.clear()
        for side, listener in ((PHONES, config.phones_listener), (TRUNKS, config.trunks_listener)):
            if listener is None:
                continue
            for method, rate in (
                ("REGISTER", listener.max_registration_rate),
                ("INVITE", listener.max_call_rate),
            ):
                if rate is not None:
                    self._limiters[(side, method)] = RateLimiter(rate, now)

    def _over_rate(self, side: str, request: Request, flow: Flow) -> Response | None:
        """``503`` + Retry-After when the listener's rate for this method is spent
        (``max_registration_rate``, ``max_call_rate``: DESIGN.md principle 3)."""
        limiter = self._limiters.get((side, request.method))
        if limiter is None or limiter.allow(self._loop.time()):
            return None
        self._reject("RATE_LIMITED", flow, request.method)
        what = "Registration" if request.method == "REGISTER" else "Call"
        response = response_to(request, 503, f"{what} rate exceeded")
        response.headers.add("Retry-After", str(limiter.retry_after()))
        return response

    # ------------------------------------------------------------------ ingress

    def _on_bytes(self, data: bytes, flow: Flow) -> None:
        if len(self._queue) >= self._max_queue:
            self._overload(data, flow)
            return
        self._queue.append((data, flow))
        if not self._draining:
            self._draining = True
            self._loop.call_soon(self._drain)

    def _drain(self) -> None:
        queue = self._queue
        # Work through what is queued now; later arrivals wait for the next loop turn so
        # timers and I/O keep running under load.
        for _ in range(len(queue)):
            data, flow = queue.popleft()
            try:
                self._process(data, flow)
            except Exception:  # a bug must cost one message, never the service
                self.counters["INTERNAL_ERROR"] += 1
                log.exception("internal error on a message from %s", flow.remote)
        self._txn_timer.poke()
        if queue:
            self._loop.call_soon(self._drain)
        else:
            self._draining = False

    def _overload(self, data: bytes, flow: Flow) -> None:
        self._reject("OVERLOAD", flow)
        response = error_response(data, SipParseError("Service Unavailable", 503))
        if response is not None:
            response.headers.add("Retry-After", "5")
            self._send_stateless(response, flow)

    def _process(self, data: bytes, flow: Flow) -> None:
        try:
            message = parse_message(data, datagram=not flow.reliable)
        except SipParseError as exc:
            self._refuse(data, flow, exc)
            return
        if isinstance(message, Response):
            self._on_response(message, flow)
            return
        user_agent = message.headers.get("User-Agent")
        if user_agent is not None and _SCANNER_RE.search(user_agent):
            # DESIGN.md principle 3: the one silent drop. An answer would confirm a SIP
            # server to the scanner.
            self._reject("SCANNER", flow, user_agent[:64])
            return
        try:
            info = validate_request(message)
        except SipParseError as exc:
            self._refuse(data, flow, exc)
            return
        top = info.vias[0]
        if top.branch == BRANCH_COOKIE:
            # RFC 4475 §3.2.1: a cookie with no identifier cannot key a transaction.
            self._refuse(data, flow, SipParseError("Missing transaction identifier in branch"))
            return
        reply_flow = stamp_via(message, top, flow)
        now = self._loop.time()
        self._emit(self.transactions.receive_request(message, reply_flow, now, info), info)

    def _refuse(self, data: bytes, flow: Flow, error: SipParseError) -> None:
        self._reject("BAD_REQUEST", flow, error.reason)
        response = error_response(data, error)
        if response is not None:
            self._send_stateless(response, flow)

    def _on_response(self, response: Response, flow: Flow) -> None:
        try:
            info = validate_response(response)
        except SipParseError:
            self._reject("BAD_RESPONSE", flow)  # dropped: there is nobody to tell
            return
        now = self._loop.time()
        self._emit(self.transactions.receive_response(response, flow, now, info), None)

    def _send_stateless(self, response: Response, flow: Flow) -> None:
        finish(response)
        self.transports.send(flow, response.to_bytes())

    # ------------------------------------------------------------------ transaction events

    def _emit(self, events: list[Event], info: RequestInfo | None) -> None:
        for event in events:
            if isinstance(event, Send):
                if not self.transports.send(event.flow, event.data) and event.transaction:
                    now = self._loop.time()
                    self._emit(self.transactions.transport_error(event.transaction, now), None)
            elif isinstance(event, RequestReceived):
                if info is None:
                    continue
                if event.transaction is not None:
                    self._on_request(event.transaction, event.request, info)
                elif info.to.tag is not None:  # the ACK for a 2xx (§17.2.3): its dialog's
                    now = self._loop.time()
                    self._act(self.calls.handle_in_dialog(None, event.request, info, now))
            elif isinstance(event, Overloaded):
                self._reject("OVERLOAD", event.flow, "transaction table full")
                response = response_to(event.request, 503)
                response.headers.add("Retry-After", "5")
                self._send_stateless(response, event.flow)
            elif isinstance(event, ResponseReceived):
                if event.transaction is None:
                    # RFC 6026 §8.4: a stray response is discarded.
                    self.counters["STRAY_RESPONSE"] += 1
                else:
                    now = self._loop.time()
                    self._act(self.calls.handle_response(event.transaction, event.response, now))
            elif isinstance(event, TransactionTimeout | TransportError):
                self.counters[type(event).__name__] += 1
                txn = event.transaction
                if isinstance(txn, ClientTransaction) and txn.context is not None:
                    self._act(self.calls.handle_failure(txn, self._loop.time()))

    def _act(self, actions: list[Action]) -> None:
        """Carry out what the B2BUA asks: transaction events, then media and records."""
        events: list[Event] = []
        for action in actions:
            if isinstance(action, OpenMedia):
                self.media.open(action.call)
            elif isinstance(action, MediaTarget):
                self.media.target(action)
            elif isinstance(action, MediaPlanned):
                self.media.plan(action)
            elif isinstance(action, CallEnded):
                self.media.ended(action.call)
            else:
                events.append(action)
        if events:
            self._emit(events, None)
        self._call_timer.poke()
        self._txn_timer.poke()

    def _media_ready(self, call: Call, ok: bool) -> None:
        now = self._loop.time()
        self._act(self.calls.media_ready(call, now) if ok else self.calls.media_failed(call, now))

    def _dtmf(self, call: Call, leg: LegName, digit: str, duration_ms: int) -> None:
        self._act(self.calls.dtmf(call, leg, digit, duration_ms, self._loop.time()))

    def _media_timeout(self, call: Call) -> None:
        self._act(self.calls.media_timeout(call, self._loop.time()))

    def _on_call_timer(self, now: float) -> None:
        self._act(self.calls.handle_timer(now))

    def _on_txn_timer(self, now: float) -> None:
        self._emit(self.transactions.handle_timer(now), None)

    def _on_location_timer(self, now: float) -> None:
        for binding in self.location.handle_timer(now):
            log.debug("binding expired: %s -> %s", binding.aor, binding.contact)

    def _reject(self, reason: str, flow: Flow | None = None, detail: str = "") -> None:
        """Count a refusal under its reason code and log it (rate-limited per reason)."""
        self.counters[reason] += 1
        where = f"from {flow.transport} {flow.remote[0]}:{flow.remote[1]}" if flow else ""
        self._rejections.note(reason, f"{where} {detail}".strip(), self._loop.time())

    # ------------------------------------------------------------------ requests (UAS)

    def _on_request(self, txn: ServerTransaction, request: Request, info: RequestInfo) -> None:
        side = self._sides.get((txn.flow.transport, *txn.flow.local), PHONES)
        response = self._answer(side, txn, request, info)
        if response is None:
            return
        finish(response, info.to.tag)
        self._emit(self.transactions.respond(txn, response, self._loop.time()), None)
        if request.method == "REGISTER":  # only the registrar moves these deadlines
            self._location_timer.poke()
            self._nonce_timer.poke()

    def _answer(
        self, side: str, txn: ServerTransaction, request: Request, info: RequestInfo
    ) -> Response | None:
        """The response to a request, or None when the B2BUA took it (it answers itself)."""
        method = request.method
        flow = txn.flow
        if method not in KNOWN_METHODS:
            self._reject("NOT_IMPLEMENTED", flow, method)
            return _with_allow(response_to(request, 501))  # RFC 3261 §8.2.1
        if side == TRUNKS:
            self._reject("ACL_DENY", flow, method)
            return response_to(request, 403, "No trunk admits this source")
        required = [
            tag
            for tag in request.headers.values("Require")
            if tag and tag.lower() not in SUPPORTED_EXTENSIONS
        ]
        if required and method != "CANCEL":
            # RFC 3261 §8.2.2.3: an extension we do not support.
            self._reject("BAD_EXTENSION", flow, method)
            response = response_to(request, 420)
            response.headers.add("Unsupported", ", ".join(required))
            return response
        now = self._loop.time()
        if method == "REGISTER":
            refused = self._over_rate(side, request, flow)
            if refused is not None:
                return refused
            return self.registrar.handle(
                request, info, flow, self.config, now, for_us=self._is_local(info)
            )
        if method == "CANCEL":
            self._act(self.calls.handle_cancel(txn, request, info, now))
            return None
        if info.to.tag is not None:  # RFC 3261 §12.2.2: a request within a dialog
            self._act(self.calls.handle_in_dialog(txn, request, info, now))
            return None
        if method == "INVITE" and self._is_local_host(info):
            if request.headers.get("Proxy-Authorization") is not None:
                # A call attempt counts once: with its credentials (the 407 before is free).
                refused = self._over_rate(side, request, flow)
                if refused is not None:
                    return refused
            # Authentication comes before the callee's existence is told (edge.b2bua).
            self._act(self.calls.handle_invite(txn, request, info, now))
            return None
        if not self._is_local(info):
            self._reject("NO_ROUTE", flow, f"{method} {request.uri}")
            return response_to(request, 404, "Domain not served here")
        if method == "OPTIONS":
            return _capabilities(response_to(request, 200))
        self._reject("METHOD_NOT_ALLOWED", flow, method)
        return _with_allow(response_to(request, 405))

    def _is_local(self, info: RequestInfo) -> bool:
        """Whether the Request-URI names this edge (its domain, address or a listener) and,
        under its domain, no user or a known phone."""
        uri = info.uri
        if not self._is_local_host(info):
            return False
        settings = self.config.edge
        if getattr(uri, "host", "").strip("[]") in (
            settings.domain.lower(),
            settings.advertise.lower(),
        ):
            user = getattr(uri, "user", None)
            return user is None or self.config.phone_by_extension(user) is not None
        return True

    def _is_local_host(self, info: RequestInfo) -> bool:
        host = getattr(info.uri, "host", None)
        if host is None:
            return False
        settings = self.config.edge
        bare = host.strip("[]")
        if bare in (settings.domain.lower(), settings.advertise.lower()):
            return True
        return any(bare == bound.address[0] for bound in self.listeners)


def _sockets(listener: Listener | None) -> tuple[object, ...]:
    """What a listener binds (its rate limits apply on reload, these do not)."""
    if listener is None:
        return ()
    return (listener.udp, listener.tcp, listener.tls, listener.tls_cert, listener.tls_key)


def _bind(address: HostPort) -> tuple[str, int]:
    return ("127.0.0.1" if address.host == "localhost" else address.host), address.port


def _with_allow(response: Response) -> Response:
    response.headers.add("Allow", ALLOW)
    return response


def _capabilities(response: Response) -> Response:
    # RFC 3261 §11.2: OPTIONS answers say what we can do.
    response.headers.add("Allow", ALLOW)
    response.headers.add("Accept", "application/sdp")
    response.headers.add("Accept-Encoding", "identity")
    response.headers.add("Supported", SUPPORTED)
    return response
