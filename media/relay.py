"""The media relay for calls whose codecs match: asyncio glue, the only I/O module in media/.

A ``RelaySession`` has two legs, ``"a"`` and ``"b"``, one per side of the call. Each leg owns an
RTP socket on an even port and an RTCP socket on the next odd port (RFC 3550 §11) from a
``PortPool``. A packet from the accepted far end of leg A (``media.latch``, symmetric RTP per
RFC 4961) goes out unchanged from leg B's matching socket to leg B's far end, and back.

RTCP/RTP multiplexing (RFC 5761) is a per-leg flag. On a muxed leg, RTCP arrives on the RTP
port and is told apart by its packet type (RFC 5761 §4, ``media.rtp.is_rtcp``); toward a muxed
leg, RTCP is sent from its RTP socket to its RTP far end (RFC 5761 §5.1.3). A muxed leg's RTCP
socket stays bound: an offerer must be ready for a peer that declines mux (RFC 5761 §5.1.1).

Per packet (DESIGN.md principle 4): one latch comparison, one clock read for ``last_rx``, one
``sendto``, integer counters; nothing is allocated beyond the ``bytes`` and address tuple the
event loop hands over. Routing is decided once when the session opens, not per packet: only a
socket that must tell RTCP from RTP (a muxed leg toward an unmuxed one) looks at the packet.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from media.latch import Address, Latch
from media.ports import PortPool
from media.rtp import is_rtcp

__all__ = ["BIND_ATTEMPTS", "DirectionStats", "RelayPortError", "RelaySession", "RelayStats"]

LegName = Literal["a", "b"]

# A failed bind (another process holds the port) releases the pair and tries another, this
# many times in all (media/ports.py: the glue bounds its retries).
BIND_ATTEMPTS = 8
_RETRYABLE_BIND = frozenset((errno.EADDRINUSE, errno.EACCES))

_NO_TARGET = Latch()  # far end of a socket not wired yet: no target, so packets are dropped


class RelayPortError(OSError):
    """No RTP/RTCP port pair could be bound for a leg (pool exhausted or every try taken)."""


@dataclass(slots=True, frozen=True)
class DirectionStats:
    """Packets received on one leg and sent out of the other (RTP and RTCP together)."""

    packets: int  # relayed
    octets: int  # relayed, UDP payload octets
    dropped_unlatched: int  # from a source other than the latched one (RFC 4961 §3)
    dropped_no_target: int  # accepted, but the other far end is not known yet


@dataclass(slots=True, frozen=True)
class RelayStats:
    a_to_b: DirectionStats
    b_to_a: DirectionStats
    source_a: Address | None  # latched RTP source of each leg (None: not latched)
    source_b: Address | None
    last_rx_a: float | None  # loop.time() of the last accepted packet (RTP or RTCP) per leg
    last_rx_b: float | None


class _Forward(asyncio.DatagramProtocol):
    """One relay socket: accept from the latched far end, send out of the other leg."""

    __slots__ = (
        "clock",
        "dropped_no_target",
        "last_rx",
        "latch",
        "octets",
        "out",
        "out_latch",
        "packets",
    )

    out: asyncio.DatagramTransport  # set by _wire before out_latch gets a target

    def __init__(self, latch: Latch, clock: Callable[[], float]) -> None:
        self.latch = latch
        self.clock = clock
        self.out_latch = _NO_TARGET
        self.packets = 0
        self.octets = 0
        self.dropped_no_target = 0
        self.last_rx: float | None = None

    def datagram_received(self, data: bytes, addr: Address) -> None:
        if not self.latch.accept(addr):
            return
        self.last_rx = self.clock()
        target = self.out_latch.target
        if target is None:
            self.dropped_no_target += 1
            return
        self.out.sendto(data, target)
        self.packets += 1
        self.octets += len(data)


class _DemuxForward(_Forward):
    """The RTP socket of a muxed leg toward an unmuxed one: RTCP goes to the RTCP socket."""

    __slots__ = ("rtcp_out", "rtcp_out_latch")

    rtcp_out: asyncio.DatagramTransport

    def __init__(self, latch: Latch, clock: Callable[[], float]) -> None:
        super().__init__(latch, clock)
        self.rtcp_out_latch = _NO_TARGET

    def datagram_received(self, data: bytes, addr: Address) -> None:
        if not self.latch.accept(addr):
            return
        self.last_rx = self.clock()
        if is_rtcp(data):  # RFC 5761 §4
            out, target = self.rtcp_out, self.rtcp_out_latch.target
        else:
            out, target = self.out, self.out_latch.target
        if target is None:
            self.dropped_no_target += 1
            return
        out.sendto(data, target)
        self.packets += 1
        self.octets += len(data)


class _Leg:
    __slots__ = ("mux", "port", "rtcp", "rtcp_transport", "rtp", "rtp_transport")

    def __init__(
        self,
        port: int,
        mux: bool,
        rtp: _Forward,
        rtp_transport: asyncio.DatagramTransport,
        rtcp: _Forward,
        rtcp_transport: asyncio.DatagramTransport,
    ) -> None:
        self.port = port
        self.mux = mux
        self.rtp = rtp
        self.rtp_transport = rtp_transport
        self.rtcp = rtcp
        self.rtcp_transport = rtcp_transport

    def set_expected(self, addr: Address) -> None:
        self.rtp.latch.set_expected(addr)
        host, port = addr
        if port < 65535:
            # RFC 3550 §11: RTCP on the next port up (an a=rtcp attribute, RFC 3605, is the
            # B2BUA's business: it can latch from traffic instead).
            self.rtcp.latch.set_expected((host, port + 1))

    def last_rx(self) -> float | None:
        times = [t for t in (self.rtp.last_rx, self.rtcp.last_rx) if t is not None]
        return max(times) if times else None

    def close(self) -> None:
        self.rtp_transport.close()
        self.rtcp_transport.close()


def _checked(addr: Address | None) -> Address | None:
    """Refuse what SDP must not make us send to: not an IP literal, multicast, unspecified,
    broadcast, port 0 (a relay must not become an amplifier toward any address it is told)."""
    if addr is None:
        return None
    host, port = addr
    ip = ipaddress.ip_address(host)  # ValueError for a host name: the relay never resolves
    if ip.is_multicast or ip.is_unspecified or ip == ipaddress.IPv4Address("255.255.255.255"):
        raise ValueError(f"will not relay media to {host}")
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} out of range 1-65535")
    return (str(ip), port)


def _wire(src: _Leg, dst: _Leg) -> None:
    """Route what ``src`` receives out of ``dst``'s sockets."""
    src.rtp.out = dst.rtp_transport
    src.rtp.out_latch = dst.rtp.latch
    if isinstance(src.rtp, _DemuxForward):
        src.rtp.rtcp_out = dst.rtcp_transport
        src.rtp.rtcp_out_latch = dst.rtcp.latch
    if dst.mux:  # RFC 5761 §5.1.3: RTCP toward a muxed leg goes on its RTP port
        src.rtcp.out = dst.rtp_transport
        src.rtcp.out_latch = dst.rtp.latch
    else:
        src.rtcp.out = dst.rtcp_transport
        src.rtcp.out_latch = dst.rtcp.latch


def _bind_errno(exc: OSError) -> int | None:
    # uvloop raises a bare OSError("could not bind ...") from the OSError that has the errno.
    cause = exc.__cause__
    if exc.errno is None and isinstance(cause, OSError):
        return cause.errno
    return exc.errno


async def _endpoint(
    loop: asyncio.AbstractEventLoop, protocol: _Forward, local: Address
) -> asyncio.DatagramTransport:
    transport, _ = await loop.create_datagram_endpoint(lambda: protocol, local_addr=local)
    return transport


async def _bind_leg(
    loop: asyncio.AbstractEventLoop,
    pool: PortPool,
    host: str,
    mux: bool,
    demux: bool,
    expected: Address | None,
) -> _Leg:
    clock = loop.time
    last_error: OSError | None = None
    for _ in range(BIND_ATTEMPTS):
        port = pool.allocate()
        if port is None:
            raise RelayPortError(errno.EADDRINUSE, "no free RTP/RTCP port pair in the pool")
        rtp: _Forward = (_DemuxForward if demux else _Forward)(Latch(), clock)
        rtcp = _Forward(Latch(), clock)
        opened: list[asyncio.DatagramTransport] = []
        try:
            opened.append(await _endpoint(loop, rtp, (host, port)))
            opened.append(await _endpoint(loop, rtcp, (host, port + 1)))
        except OSError as exc:
            for transport in opened:
                transport.close()
            pool.release(port)
            if _bind_errno(exc) not in _RETRYABLE_BIND:
                raise
            last_error = exc
            # Let the loop finish closing sockets (a pair freed a moment ago may still be
            # bound), then try the next pair: the failed one went to the back of the queue.
            await asyncio.sleep(0)
            continue
        except BaseException:
            for transport in opened:
                transport.close()
            pool.release(port)
            raise
        leg = _Leg(port, mux, rtp, opened[0], rtcp, opened[1])
        if expected is not None:
            leg.set_expected(expected)
        return leg
    raise RelayPortError(
        errno.EADDRINUSE, f"no bindable RTP/RTCP pair after {BIND_ATTEMPTS} tries: {last_error}"
    )


class RelaySession:
    """Two legs of a call relaying RTP and RTCP to each other unchanged."""

    __slots__ = ("_a", "_b", "_closed", "_pool")

    def __init__(self, pool: PortPool, a: _Leg, b: _Leg) -> None:
        self._pool = pool
        self._a = a
        self._b = b
        self._closed = False

    @classmethod
    async def open(
        cls,
        loop: asyncio.AbstractEventLoop,
        pool: PortPool,
        host: str,
        *,
        expected_a: Address | None = None,
        expected_b: Address | None = None,
        mux_a: bool = False,
        mux_b: bool = False,
    ) -> RelaySession:
        """Bind both legs on ``host`` with port pairs from ``pool``; ``expected_*`` are the
        SDP addresses of each far end (RTP; RTCP is assumed one port up unless muxed)."""
        expected_a = _checked(expected_a)
        expected_b = _checked(expected_b)
        a = await _bind_leg(loop, pool, host, mux_a, mux_a and not mux_b, expected_a)
        try:
            b = await _bind_leg(loop, pool, host, mux_b, mux_b and not mux_a, expected_b)
        except BaseException:
            a.close()
            pool.release(a.port)
            raise
        _wire(a, b)
        _wire(b, a)
        return cls(pool, a, b)

    @property
    def ports_a(self) -> tuple[int, int]:
        """(RTP, RTCP) ports of leg A: what the B2BUA writes into the SDP toward side A."""
        return (self._a.port, self._a.port + 1)

    @property
    def ports_b(self) -> tuple[int, int]:
        return (self._b.port, self._b.port + 1)

    def _leg(self, leg: LegName) -> _Leg:
        if leg == "a":
            return self._a
        if leg == "b":
            return self._b
        raise ValueError(f"leg must be 'a' or 'b', not {leg!r}")

    def set_expected(self, leg: LegName, addr: Address) -> None:
        """A new SDP address for a leg's far end (a latched source still wins)."""
        checked = _checked(addr)
        assert checked is not None
        self._leg(leg).set_expected(checked)

    def relatch(self, leg: LegName) -> None:
        """After a re-INVITE: the next packet on each of the leg's sockets latches again."""
        side = self._leg(leg)
        side.rtp.latch.relatch()
        side.rtcp.latch.relatch()

    def stats(self) -> RelayStats:
        return RelayStats(
            a_to_b=_direction(self._a),
            b_to_a=_direction(self._b),
            source_a=self._a.rtp.latch.latched,
            source_b=self._b.rtp.latch.latched,
            last_rx_a=self._a.last_rx(),
            last_rx_b=self._b.last_rx(),
        )

    def close(self) -> None:
        """Close the four sockets and give both port pairs back to the pool; idempotent."""
        if self._closed:
            return
        self._closed = True
        for leg in (self._a, self._b):
            leg.close()
            self._pool.release(leg.port)


def _direction(src: _Leg) -> DirectionStats:
    rtp, rtcp = src.rtp, src.rtcp
    return DirectionStats(
        packets=rtp.packets + rtcp.packets,
        octets=rtp.octets + rtcp.octets,
        dropped_unlatched=rtp.latch.dropped + rtcp.latch.dropped,
        dropped_no_target=rtp.dropped_no_target + rtcp.dropped_no_target,
    )
