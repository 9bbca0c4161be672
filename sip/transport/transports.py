"""The asyncio endpoints that feed the sans-I/O SIP core: UDP, TCP and TLS listeners.

Every received message reaches one ``MessageSink`` with the ``Flow`` it came over; the core
answers by calling ``send`` with a flow. Nothing here parses SIP beyond framing a stream
(RFC 3261 §18.3) and recognising CRLF keep-alives (RFC 5626 §3.5.1, §4.4.1).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from typing import Final

from sip.flow import Flow
from sip.transport.common import MessageSink, new_stats
from sip.transport.destinations import Destination, classify_destination
from sip.transport.stream import StreamRegistry
from sip.transport.udp import UdpListener

MAX_WRITE_BUFFER: Final = 1 << 20  # bytes queued for one connection before it is closed
TLS_HANDSHAKE_TIMEOUT: Final = 10.0
CLOSE_GRACE: Final = 1.0  # seconds ``close`` lets connections flush before aborting them
_UNSET_LOCAL: Final = ("", 0)


class Transports:
    """The listeners of one SIP endpoint and the way back to every peer.

    ``stats`` holds the counters named in ``sip.transport.common.STAT_KEYS``.
    """

    def __init__(
        self,
        sink: MessageSink,
        *,
        max_connections: int = 1024,
        idle_timeout: float = 300.0,
        max_message: int = 65536,
        max_datagram: int = 65535,
        tls_handshake_timeout: float = TLS_HANDSHAKE_TIMEOUT,
        max_write_buffer: int = MAX_WRITE_BUFFER,
    ) -> None:
        if max_connections < 1 or idle_timeout <= 0 or tls_handshake_timeout <= 0:
            raise ValueError("max_connections, idle_timeout and the handshake timeout must be >0")
        self._sink = sink
        self.stats = new_stats()
        self._max_datagram = max_datagram
        self._udp: list[UdpListener] = []
        self._udp_by_local: dict[tuple[str, int], UdpListener] = {}
        self._servers: list[asyncio.Server] = []
        self._streams = StreamRegistry(
            sink,
            self.stats,
            max_connections=max_connections,
            idle_timeout=idle_timeout,
            handshake_timeout=tls_handshake_timeout,
            max_message=max_message,
            max_write_buffer=max_write_buffer,
        )
        self._closed = False

    # -- listening ---------------------------------------------------------------------------

    async def listen_udp(self, host: str, port: int) -> tuple[str, int]:
        """Bind a UDP listener; returns the bound address (port 0 picks an ephemeral one)."""
        self._check_open()
        loop = asyncio.get_running_loop()
        _, listener = await loop.create_datagram_endpoint(
            lambda: UdpListener(self._sink, self.stats, self._max_datagram, self._udp_lost),
            local_addr=(host, port),
        )
        self._udp.append(listener)
        self._udp_by_local[listener.local] = listener
        return listener.local

    async def listen_tcp(self, host: str, port: int) -> tuple[str, int]:
        """Bind a TCP listener; returns the bound address."""
        self._check_open()
        loop = asyncio.get_running_loop()
        registry = self._streams
        server = await loop.create_server(lambda: registry.accept("tcp"), host, port)
        return self._started(loop, server)

    async def listen_tls(
        self, host: str, port: int, ssl_context: ssl.SSLContext
    ) -> tuple[str, int]:
        """Bind a TLS listener with the caller's server context; returns the bound address.

        A context allowing anything older than TLS 1.2 is raised to TLS 1.2 (the context is the
        caller's object: this changes it for every user of it).
        """
        self._check_open()
        if ssl_context.protocol == ssl.PROTOCOL_TLS_CLIENT:
            raise ValueError("listen_tls needs a server-side SSLContext")
        floor = ssl_context.minimum_version
        if floor != ssl.TLSVersion.MAXIMUM_SUPPORTED and floor < ssl.TLSVersion.TLSv1_2:
            ssl_context.minimum_version = ssl.TLSVersion.TLSv1_2
        loop = asyncio.get_running_loop()
        registry = self._streams
        # asyncio does the TLS; the connection's protocol sees connection_made only after a
        # successful handshake, and a failed one never raises into the loop.
        server = await loop.create_server(
            lambda: registry.accept("tls"),
            host,
            port,
            ssl=ssl_context,
            ssl_handshake_timeout=registry.handshake_timeout,
        )
        return self._started(loop, server)

    def _started(self, loop: asyncio.AbstractEventLoop, server: asyncio.Server) -> tuple[str, int]:
        self._servers.append(server)
        self._streams.start_sweeping(loop)
        sockname = server.sockets[0].getsockname()
        return (sockname[0], sockname[1])

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("Transports is closed")

    def _udp_lost(self, listener: UdpListener) -> None:
        if listener in self._udp:
            self._udp.remove(listener)
        if self._udp_by_local.get(listener.local) is listener:
            del self._udp_by_local[listener.local]

    # -- sending -----------------------------------------------------------------------------

    def send(self, flow: Flow, data: bytes) -> bool:
        """Send one whole message over ``flow``; False when it cannot go (counted in stats).

        True means the bytes were handed to the kernel or queued on the connection, not that
        they arrived. UDP goes out of the listener bound to ``flow.local`` (the first one of
        the remote's address family when ``local`` is unset). A stream flow uses its own
        connection while it is open, else any open connection of the same transport to the
        same remote address (RFC 5626 §5.3, RFC 3261 §18.2.2); no new connection is opened.
        """
        stats = self.stats
        host, port = flow.remote
        verdict = classify_destination(host)
        if verdict is not Destination.ALLOWED or not 0 < port < 65536:
            if verdict is Destination.NOT_LITERAL:
                stats["send_failures"] += 1
            else:
                stats["blocked_destinations"] += 1
            return False
        if flow.transport == "udp":
            listener = self._udp_listener(flow)
            if listener is not None and listener.sendto(data, flow.remote):
                stats["udp_tx"] += 1
                return True
        else:
            conn = self._streams.find(flow)
            if conn is not None and conn.write(data):
                stats["stream_tx"] += 1
                return True
        stats["send_failures"] += 1
        return False

    def _udp_listener(self, flow: Flow) -> UdpListener | None:
        family = socket.AF_INET6 if ":" in flow.remote[0] else socket.AF_INET
        if flow.local != _UNSET_LOCAL:
            listener = self._udp_by_local.get(flow.local)
            return listener if listener is not None and listener.family == family else None
        for listener in self._udp:
            if listener.family == family:
                return listener
        return None

    # -- shutting down -----------------------------------------------------------------------

    async def close(self) -> None:
        """Stop listening, close every connection and listener; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        for server in self._servers:
            server.close()
        udp = list(self._udp)
        for listener in udp:
            if listener.transport is not None:
                listener.transport.close()
        await self._streams.close(CLOSE_GRACE)
        for server in self._servers:
            # Python 3.12+ waits here for connections too; pending TLS handshakes may linger.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), CLOSE_GRACE)
        self._servers.clear()
        self._udp.clear()
        self._udp_by_local.clear()
