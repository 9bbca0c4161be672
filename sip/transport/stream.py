"""TCP and TLS connections: framing, keep-alive pongs, limits, reuse and the idle sweep.

Each accepted connection is one ``StreamConnection`` with its own ``StreamFramer``; the
``StreamRegistry`` of a ``Transports`` object knows them all. It enforces ``max_connections``,
finds a connection for a flow (RFC 5626 §5.3, RFC 3261 §18.2.2 connection reuse) and runs one
periodic sweep — a single ``call_later`` chain, not a timer per connection — that closes idle
connections and settles TLS handshakes that never completed.

Time is counted in sweep ticks: receiving bytes stores the current tick (no clock call, no new
object per read), and a connection is closed once a whole ``idle_timeout`` has passed without
a byte, i.e. between ``idle_timeout`` and ``idle_timeout`` plus one sweep interval after its
last byte.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
from typing import Final, cast

from sip.errors import SipParseError
from sip.flow import Flow
from sip.framer import StreamFramer
from sip.transport.common import MessageSink

log = logging.getLogger(__name__)

PONG: Final = b"\r\n"  # RFC 5626 §4.4.1: a single CRLF answers a CRLFCRLF ping
MIN_SWEEP_INTERVAL: Final = 0.01
_NO_FLOW: Final = Flow("tcp", ("", 0))


class StreamConnection(asyncio.Protocol):
    __slots__ = (
        "_framer",
        "_registry",
        "_sink",
        "_stats",
        "conn_id",
        "flow",
        "is_open",
        "kind",
        "refused",
        "rx_tick",
        "transport",
    )

    def __init__(
        self, registry: StreamRegistry, kind: str, conn_id: int, *, refused: bool = False
    ) -> None:
        self._registry = registry
        self._sink = registry.sink
        self._stats = registry.stats
        self._framer = StreamFramer(registry.max_message)
        self.kind = kind
        self.conn_id = conn_id
        self.refused = refused
        self.flow = _NO_FLOW
        self.is_open = False  # registered and usable for sending
        self.rx_tick = registry.tick
        self.transport: asyncio.Transport | None = None

    @property
    def buffered(self) -> int:
        """Bytes held by the framer: at most ``max_message`` between reads."""
        return self._framer.buffered

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # For TLS this comes after a successful handshake (asyncio does the TLS).
        self.transport = cast(asyncio.Transport, transport)
        self._registry.opened(self)

    def data_received(self, data: bytes) -> None:
        if not self.is_open:
            return
        self.rx_tick = self._registry.tick
        try:
            items = self._framer.feed(data)
        except SipParseError as exc:
            self._registry.framing_lost(self, exc)
            return
        for item in items:
            if isinstance(item, bytes):
                self._stats["stream_rx"] += 1
                try:
                    self._sink(item, self.flow)
                except Exception:
                    self._stats["sink_errors"] += 1
                    log.exception("SIP sink failed on a message from connection %d", self.conn_id)
                if not self.is_open:  # the sink's own send closed us (write overflow)
                    return
            elif self.transport is not None:
                self._stats["pings"] += 1
                self.transport.write(PONG)
        if self._framer.failed is not None:  # framing broke after the messages above
            self._registry.framing_lost(self, self._framer.failed)

    def eof_received(self) -> bool:
        return False  # close our side too; a half-open SIP connection is of no use

    def pause_writing(self) -> None:
        # The peer does not read what we send: close rather than buffer without bound.
        self._registry.overflowed(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._registry.lost(self)

    def write(self, data: bytes) -> bool:
        transport = self.transport
        if not self.is_open or transport is None:
            return False
        transport.write(data)
        return self.is_open  # pause_writing may have closed it during the write

    def close(self) -> None:
        self.is_open = False
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.is_open = False
        if self.transport is not None:
            self.transport.abort()


class StreamRegistry:
    """The stream connections of one ``Transports`` object."""

    def __init__(
        self,
        sink: MessageSink,
        stats: dict[str, int],
        *,
        max_connections: int,
        idle_timeout: float,
        handshake_timeout: float,
        max_message: int,
        max_write_buffer: int,
    ) -> None:
        self.sink = sink
        self.stats = stats
        self.max_connections = max_connections
        self.max_message = max_message
        self.max_write_buffer = max_write_buffer
        self.handshake_timeout = handshake_timeout
        self.interval = max(MIN_SWEEP_INTERVAL, min(idle_timeout, handshake_timeout) / 4)
        self._idle_ticks = math.ceil(idle_timeout / self.interval)
        # One tick of margin so a handshake finishing right at its deadline is not miscounted.
        self._handshake_ticks = math.ceil(handshake_timeout / self.interval) + 1
        self.tick = 0
        self.conns: dict[int, StreamConnection] = {}
        self._by_remote: dict[tuple[str, tuple[str, int]], dict[int, StreamConnection]] = {}
        # Accepted but not yet established (TLS handshake running), with the tick of accept.
        self._pending: dict[StreamConnection, int] = {}
        self._ids = itertools.count(1)
        self._sweeper: asyncio.TimerHandle | None = None
        self._drained: asyncio.Future[None] | None = None
        self.closing = False

    # -- accepting ---------------------------------------------------------------------------

    def accept(self, kind: str) -> StreamConnection:
        """The protocol factory of a TCP or TLS server, called once per accepted socket."""
        conn_id = next(self._ids)
        if self.closing or len(self.conns) + len(self._pending) >= self.max_connections:
            self.stats["connections_refused"] += 1
            return StreamConnection(self, kind, conn_id, refused=True)
        conn = StreamConnection(self, kind, conn_id)
        self._pending[conn] = self.tick
        return conn

    def opened(self, conn: StreamConnection) -> None:
        self._pending.pop(conn, None)
        transport = conn.transport
        assert transport is not None
        peer = transport.get_extra_info("peername")
        if conn.refused or self.closing or not peer:
            transport.close()  # over the limit: close at once, nothing is read
            return
        sockname = transport.get_extra_info("sockname")
        remote = (peer[0], peer[1])  # IPv6 peers come as (host, port, flowinfo, scope_id)
        conn.flow = Flow(conn.kind, remote, (sockname[0], sockname[1]), conn.conn_id)
        conn.rx_tick = self.tick
        conn.is_open = True
        transport.set_write_buffer_limits(high=self.max_write_buffer)
        self.conns[conn.conn_id] = conn
        self._by_remote.setdefault((conn.kind, remote), {})[conn.conn_id] = conn
        self.stats["connections_open"] = len(self.conns)
        log.debug("%s connection %d from %s:%s", conn.kind, conn.conn_id, remote[0], remote[1])

    # -- closing -----------------------------------------------------------------------------

    def framing_lost(self, conn: StreamConnection, exc: SipParseError) -> None:
        # RFC 3261 §18.3: on a stream, Content-Length is the only framing; once it is wrong
        # the rest of the byte stream cannot be read, so the connection goes.
        if "too large" in exc.reason:  # the framer's words for a message over max_message
            self.stats["oversize_dropped"] += 1
        else:
            self.stats["framing_errors"] += 1
        log.info("closing %s connection %d: %s", conn.kind, conn.conn_id, exc.reason)
        conn.close()

    def overflowed(self, conn: StreamConnection) -> None:
        if not conn.is_open:
            return
        self.stats["write_overflows"] += 1
        log.info("closing %s connection %d: peer does not read", conn.kind, conn.conn_id)
        conn.abort()  # close() would wait to flush the very buffer that is stuck

    def lost(self, conn: StreamConnection) -> None:
        conn.is_open = False
        self._pending.pop(conn, None)
        if self.conns.pop(conn.conn_id, None) is None:
            return
        key = (conn.kind, conn.flow.remote)
        peers = self._by_remote.get(key)
        if peers is not None:
            peers.pop(conn.conn_id, None)
            if not peers:
                del self._by_remote[key]
        self.stats["connections_open"] = len(self.conns)
        if not self.conns and self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    # -- sending -----------------------------------------------------------------------------

    def find(self, flow: Flow) -> StreamConnection | None:
        """The connection of ``flow``, or another open one to the same peer.

        RFC 5626 §5.3 and RFC 3261 §18.2.2: requests to a contact registered over a stream,
        and responses whose connection has gone, reuse a connection to the same address.
        """
        conn = self.conns.get(flow.conn_id)
        if (
            conn is not None
            and conn.is_open
            and (
                conn.flow is flow
                or (conn.flow.transport == flow.transport and conn.flow.remote == flow.remote)
            )
        ):
            return conn
        peers = self._by_remote.get((flow.transport, flow.remote))
        if peers:
            for other in reversed(peers.values()):  # the newest first
                if other.is_open:
                    return other
        return None

    # -- the sweep ---------------------------------------------------------------------------

    def start_sweeping(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._sweeper is None and not self.closing:
            self._sweeper = loop.call_later(self.interval, self._sweep, loop)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        self.tick = tick = self.tick + 1
        idle_before = tick - self._idle_ticks
        for conn in [c for c in self.conns.values() if c.rx_tick < idle_before and c.is_open]:
            self.stats["idle_closed"] += 1
            log.info("closing idle %s connection %d", conn.kind, conn.conn_id)
            conn.close()
        if self._pending:
            # asyncio gives a server's protocol no word of a failed handshake; it aborts the
            # connection at ssl_handshake_timeout, so anything still pending after it failed.
            started_before = tick - self._handshake_ticks
            for conn in [c for c, t in self._pending.items() if t < started_before]:
                del self._pending[conn]
                if conn.kind == "tls":
                    self.stats["tls_handshake_failures"] += 1
        self._sweeper = loop.call_later(self.interval, self._sweep, loop)

    async def close(self, grace: float) -> None:
        """Close every connection; abort those still open after ``grace`` seconds."""
        self.closing = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        self._pending.clear()
        if not self.conns:
            return
        self._drained = asyncio.get_running_loop().create_future()
        for conn in list(self.conns.values()):
            conn.close()
        try:
            await asyncio.wait_for(asyncio.shield(self._drained), grace)
        except TimeoutError:
            for conn in list(self.conns.values()):
                conn.abort()
