"""A UDP listener: every datagram is one whole SIP message (RFC 3261 §18.3)."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import Any, Final, cast

from sip.flow import Flow
from sip.transport.common import MessageSink

log = logging.getLogger(__name__)

# Remote addresses whose Flow is kept, so a busy peer costs a dict lookup, not a new object
# per datagram. Beyond this the oldest entry goes (insertion order; a hit does not refresh it,
# which is cheaper than a true LRU and good enough for a cache that only saves allocations).
FLOW_CACHE_SIZE: Final = 4096

_CR: Final = 13
_LF: Final = 10


class UdpListener(asyncio.DatagramProtocol):
    __slots__ = (
        "_flows",
        "_max",
        "_on_lost",
        "_paused",
        "_sink",
        "_stats",
        "family",
        "local",
        "transport",
    )

    def __init__(
        self,
        sink: MessageSink,
        stats: dict[str, int],
        max_datagram: int,
        on_lost: Callable[[UdpListener], None],
    ) -> None:
        self._sink = sink
        self._stats = stats
        self._max = max_datagram
        self._on_lost = on_lost
        self._flows: dict[Any, Flow] = {}
        self.local: tuple[str, int] = ("", 0)
        self.family = socket.AF_INET
        self.transport: asyncio.DatagramTransport | None = None
        self._paused = False  # the kernel takes no more: datagrams queue in the transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        sockname = transport.get_extra_info("sockname")
        self.local = (sockname[0], sockname[1])
        self.family = socket.AF_INET6 if len(sockname) == 4 else socket.AF_INET

    def datagram_received(self, data: bytes, addr: Any) -> None:
        stats = self._stats
        stats["udp_rx"] += 1
        if len(data) > self._max:
            stats["oversize_dropped"] += 1
            return
        # RFC 5626 §3.5.1 / §4.4.2: peers keep NAT bindings open with bare CRLFs; they are not
        # messages and need no answer over UDP.
        if not data or ((data[0] == _CR or data[0] == _LF) and not data.strip(b"\r\n")):
            stats["udp_keepalives"] += 1
            return
        flow = self._flows.get(addr)
        if flow is None:
            flow = self._remember(addr)
        try:
            self._sink(data, flow)
        except Exception:
            # An exception escaping datagram_received would close the whole listener.
            stats["sink_errors"] += 1
            log.exception("SIP sink failed on a datagram from %s:%s", addr[0], addr[1])

    def _remember(self, addr: Any) -> Flow:
        flows = self._flows
        if len(flows) >= FLOW_CACHE_SIZE:
            del flows[next(iter(flows))]
        # IPv6 addresses come as (host, port, flowinfo, scope_id); a Flow keeps host and port.
        flow = Flow("udp", (addr[0], addr[1]), self.local)
        flows[addr] = flow
        return flow

    def sendto(self, data: bytes, remote: tuple[str, int]) -> bool:
        transport = self.transport
        if transport is None or self._paused or transport.is_closing():
            return False  # while paused, drop: UDP is lossy and SIP retransmits (RFC 3261 §17)
        try:
            transport.sendto(data, remote)
        except OSError as exc:  # uvloop may raise at once where asyncio reports error_received
            self.error_received(exc)
            return False
        return True

    def pause_writing(self) -> None:
        # The transport's queue passed its high-water mark (64 KiB by default): stop queueing
        # rather than let it grow without bound.
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False

    def error_received(self, exc: Exception) -> None:
        # A failed sendto (EMSGSIZE, EHOSTUNREACH, …) or an ICMP error queued on the socket.
        self._stats["send_failures"] += 1
        log.debug("UDP error on %s:%s: %s", self.local[0], self.local[1], exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self._flows.clear()
        self._on_lost(self)
