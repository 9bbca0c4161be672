"""The media relay for calls whose codecs match: asyncio glue, the only I/O module in media/.

A ``RelaySession`` has two legs, ``"a"`` and ``"b"``, one per side of the call. Each leg owns an
RTP socket on an even port and an RTCP socket on the next odd port (RFC 3550 §11) from a
``PortPool``. A packet from the accepted far end of leg A (``media.latch``, symmetric RTP per
RFC 4961) goes out unchanged from leg B's matching socket to leg B's far end, and back.

RTCP/RTP multiplexing (RFC 5761) is a per-leg flag. On a muxed leg, RTCP arrives on the RTP
port and is told apart by its packet type (RFC 5761 §4, ``media.rtp.is_rtcp``); toward a muxed
leg, RTCP is sent from its RTP socket to its RTP far end (RFC 5761 §5.1.3). A muxed leg's RTCP
socket stays bound: an offerer must be ready for a peer that declines mux (RFC 5761 §5.1.1).

What the B2BUA can switch on per leg, for the RTP *received* on that leg:

- ``set_payload_map``: renumber payload types and transcode PCMU<->PCMA (``media.rtp_filter``);
- ``set_dtmf``: RFC 4733 telephone-events to a callback, one call per key press
  (``media.dtmf``; the callback runs from the event loop, never inside the packet path), the
  event packets forwarded or not (SIP INFO instead, when the other side has no
  telephone-event);
- ``set_clock_rate``: the leg's RTP clock rate (default 8000), for DTMF durations and jitter.

RTCP is relayed unchanged and never transcoded. On the way through it is parsed (about one
compound packet per 5 s per leg, RFC 3550 §6.2) and the first report block of each leg's
latest SR/RR (RFC 3550 §6.4) is kept: what that far end says about the media it receives from
the relay, i.e. from the other leg. ``RelayStats.report_a`` / ``report_b`` give its cumulative
loss and its interarrival jitter in milliseconds.

Per RTP packet on the fast path (DESIGN.md principle 4): one latch comparison, one clock read
for ``last_rx``, one ``sendto``, integer counters; nothing is allocated beyond the ``bytes``
and address tuple the event loop hands over, and the packet is not looked at. Each socket's
behaviour is its protocol's class, chosen when something changes, not per packet: ``_Forward``
(the fast path) for the RTP socket of a plain leg; ``_Inspect`` for RTCP sockets and for the
RTP socket of a muxed leg (``is_rtcp`` per packet) or of a leg with a payload map or DTMF (the
leg's ``RtpFilter`` per packet). Emptying the payload map and switching DTMF off
puts a plain leg's RTP socket back on the fast path.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from media.dtmf import DEFAULT_CLOCK_RATE
from media.latch import Address, Latch
from media.ports import PortPool
from media.rtcp import ReceiverReport, ReportBlock, RtcpError, SenderReport, parse_rtcp
from media.rtp import RtpError, is_rtcp
from media.rtp_filter import RtpFilter

__all__ = [
    "BIND_ATTEMPTS",
    "DirectionStats",
    "ReceptionReport",
    "RelayPortError",
    "RelaySession",
    "RelayStats",
]

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
    dropped_malformed: int = 0  # not RTP (RFC 3550 §5.1), on a leg whose RTP is looked into


@dataclass(slots=True, frozen=True)
class ReceptionReport:
    """A far end's latest reception report (RFC 3550 §6.4.1) on the media it receives."""

    cumulative_lost: int  # packets lost since it began receiving (negative with duplicates)
    fraction_lost: float  # 0.0-1.0, over its last reporting interval
    jitter_ms: float  # interarrival jitter (RFC 3550 §6.4.1, A.8) at the leg's clock rate


@dataclass(slots=True, frozen=True)
class RelayStats:
    a_to_b: DirectionStats
    b_to_a: DirectionStats
    source_a: Address | None  # latched RTP source of each leg (None: not latched)
    source_b: Address | None
    last_rx_a: float | None  # loop.time() of the last accepted packet (RTP or RTCP) per leg
    last_rx_b: float | None
    # What leg A's far end reported about the media it received (the B->A direction), from
    # its RTCP; None until an SR/RR with a report block has passed.
    report_a: ReceptionReport | None = None
    report_b: ReceptionReport | None = None  # ... and leg B's far end (the A->B direction)


class _Reports:
    """The latest report block a leg's far end sent in its RTCP, shared by the leg's sockets."""

    __slots__ = ("latest",)

    def __init__(self) -> None:
        self.latest: ReportBlock | None = None

    def feed(self, data: bytes) -> None:
        try:
            packets = parse_rtcp(data, allow_reduced_size=True)  # RFC 5506 on muxed legs too
        except RtcpError:
            return  # relayed anyway: RTCP is not ours to police
        for packet in packets:
            if isinstance(packet, SenderReport | ReceiverReport) and packet.reports:
                # The far end hears one source, the other leg's (relayed unchanged): its
                # block comes first; another SSRC's block would be a stray stream.
                self.latest = packet.reports[0]
                return


class _Forward(asyncio.DatagramProtocol):
    """One relay socket on the fast path: accept from the latched far end, send out of the
    other leg, unchanged and unparsed.

    The subclasses add behaviour, never slots: a socket changes what it does by changing its
    class (``_Leg.retune``), so the fast path tests no flags for features it does not use.
    """

    __slots__ = (
        "clock",
        "dropped_malformed",
        "dropped_no_target",
        "last_rx",
        "latch",
        "octets",
        "out",
        "out_latch",
        "packets",
        "reports",
        "rtcp_out",
        "rtcp_out_latch",
        "rtp_filter",
        "sees_rtcp",
    )

    out: asyncio.DatagramTransport  # set by _wire before out_latch gets a target
    rtcp_out: asyncio.DatagramTransport  # where RTCP arriving here goes

    def __init__(
        self, latch: Latch, clock: Callable[[], float], reports: _Reports, sees_rtcp: bool
    ) -> None:
        self.latch = latch
        self.clock = clock
        self.reports = reports
        self.sees_rtcp = sees_rtcp  # an RTCP socket, or a muxed leg's RTP socket (RFC 5761)
        self.out_latch = self.rtcp_out_latch = _NO_TARGET
        self.rtp_filter: RtpFilter | None = None
        self.packets = 0
        self.octets = 0
        self.dropped_no_target = 0
        self.dropped_malformed = 0
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


class _Inspect(_Forward):
    """A socket that looks at each packet. When RTCP may arrive (an RTCP socket, or the RTP
    socket of a muxed leg: RFC 5761 §4), RTCP goes to the other leg's RTCP destination and
    into the leg's reports; RTP goes through the leg's filter, if it has one."""

    __slots__ = ()

    def datagram_received(self, data: bytes, addr: Address) -> None:
        if not self.latch.accept(addr):
            return
        self.last_rx = self.clock()
        relayed: bytes | bytearray = data
        if self.sees_rtcp and is_rtcp(data):  # RFC 5761 §4
            self.reports.feed(data)
            out, target = self.rtcp_out, self.rtcp_out_latch.target
        else:
            out, target = self.out, self.out_latch.target
            if self.rtp_filter is not None:
                try:
                    filtered = self.rtp_filter(data)
                except RtpError:
                    self.dropped_malformed += 1
                    return
                if filtered is None:  # consumed: DTMF toward a side that gets SIP INFO
                    return
                relayed = filtered
        if target is None:
            self.dropped_no_target += 1
            return
        out.sendto(relayed, target)
        self.packets += 1
        self.octets += len(relayed)


class _Leg:
    __slots__ = (
        "clock_rate",
        "filter",
        "port",
        "reports",
        "rtcp",
        "rtcp_transport",
        "rtp",
        "rtp_transport",
    )

    def __init__(
        self,
        port: int,
        rtp: _Forward,
        rtp_transport: asyncio.DatagramTransport,
        rtcp: _Forward,
        rtcp_transport: asyncio.DatagramTransport,
    ) -> None:
        self.port = port
        self.rtp = rtp
        self.rtp_transport = rtp_transport
        self.rtcp = rtcp
        self.rtcp_transport = rtcp_transport
        self.reports = rtp.reports
        self.filter = RtpFilter()
        self.clock_rate = DEFAULT_CLOCK_RATE
        self.retune()

    def retune(self) -> None:
        """Give the RTP socket the cheapest behaviour that does what the leg needs now."""
        rtp = self.rtp
        rtp.rtp_filter = self.filter if self.filter.active else None
        rtp.__class__ = _Inspect if rtp.sees_rtcp or rtp.rtp_filter is not None else _Forward

    def report(self) -> ReceptionReport | None:
        block = self.reports.latest
        if block is None:
            return None
        return ReceptionReport(
            cumulative_lost=block.cumulative_lost,
            fraction_lost=block.fraction_lost / 256,  # 8-bit fixed point (RFC 3550 §6.4.1)
            jitter_ms=block.jitter * 1000 / self.clock_rate,
        )

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
    if dst.rtp.sees_rtcp:  # RFC 5761 §5.1.3: RTCP toward a muxed leg goes on its RTP port
        rtcp_out, rtcp_latch = dst.rtp_transport, dst.rtp.latch
    else:
        rtcp_out, rtcp_latch = dst.rtcp_transport, dst.rtcp.latch
    for sock in (src.rtcp, src.rtp):  # RTCP on src's RTCP socket, or on its RTP one if muxed
        sock.rtcp_out, sock.rtcp_out_latch = rtcp_out, rtcp_latch
    src.rtcp.out, src.rtcp.out_latch = rtcp_out, rtcp_latch  # the rare non-RTCP on that port


def _bind_errno(exc: OSError) -> int | None:
    # uvloop raises a bare OSError("could not bind ...") from the OSError that has the errno.
    cause = exc.__cause__
    if exc.errno is None and isinstance(cause, OSError):
        return cause.errno
    return exc.errno


async def _endpoint(
    loop: asyncio.AbstractEventLoop, protocol: _Forward, local: Address
) -> asyncio.DatagramTransport:
    # A socket bound here and handed over: a third of the cost of ``local_addr=`` (which goes
    # through address resolution machinery even for a literal), and bind errors keep errno.
    family = socket.AF_INET6 if ":" in local[0] else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.bind(local)
        transport, _ = await loop.create_datagram_endpoint(lambda: protocol, sock=sock)
    except BaseException:
        sock.close()
        raise
    return transport


async def _bind_leg(
    loop: asyncio.AbstractEventLoop,
    pool: PortPool,
    host: str,
    mux: bool,
    expected: Address | None,
) -> _Leg:
    clock = loop.time
    last_error: OSError | None = None
    for _ in range(BIND_ATTEMPTS):
        port = pool.allocate()
        if port is None:
            raise RelayPortError(errno.EADDRINUSE, "no free RTP/RTCP port pair in the pool")
        reports = _Reports()
        rtp = _Forward(Latch(), clock, reports, mux)  # _Leg.retune picks its class
        rtcp = _Inspect(Latch(), clock, reports, True)
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
        leg = _Leg(port, rtp, opened[0], rtcp, opened[1])
        if expected is not None:
            leg.set_expected(expected)
        return leg
    raise RelayPortError(
        errno.EADDRINUSE, f"no bindable RTP/RTCP pair after {BIND_ATTEMPTS} tries: {last_error}"
    )


class RelaySession:
    """Two legs of a call relaying RTP and RTCP to each other (unchanged unless told)."""

    __slots__ = ("_a", "_b", "_closed", "_loop", "_pool")

    def __init__(self, loop: asyncio.AbstractEventLoop, pool: PortPool, a: _Leg, b: _Leg) -> None:
        self._loop = loop
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
        a = await _bind_leg(loop, pool, host, mux_a, expected_a)
        try:
            b = await _bind_leg(loop, pool, host, mux_b, expected_b)
        except BaseException:
            a.close()
            pool.release(a.port)
            raise
        _wire(a, b)
        _wire(b, a)
        return cls(loop, pool, a, b)

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

    def set_payload_map(self, leg: LegName, mapping: Mapping[int, tuple[int, str | None]]) -> None:
        """Rewrite RTP received on ``leg``: PT ``pt`` leaves as ``mapping[pt][0]``, its payload
        converted by ``mapping[pt][1]`` (None, ``"ulaw_to_alaw"`` or ``"alaw_to_ulaw"``).

        Other PTs pass unchanged; malformed RTP on such a leg is dropped and counted. An empty
        mapping ends it. ``ValueError`` for a PT outside 0-127 or an unknown converter.
        """
        side = self._leg(leg)
        side.filter.set_payload_map(mapping)
        side.retune()

    def set_dtmf(
        self,
        leg: LegName,
        payload_type: int | None,
        callback: Callable[[str, int], None] | None,
        *,
        forward: bool,
    ) -> None:
        """Detect RFC 4733 telephone-events of ``payload_type`` received on ``leg``.

        ``callback(digit, duration_ms)`` runs once per key press, soon after its end packet
        (``loop.call_soon``: an exception there is the loop's to log, and never stops the
        media), and never after ``close``. The event packets go on to the other leg (through
        the payload map) only if ``forward``. ``payload_type`` None switches detection off.
        """
        side = self._leg(leg)
        on_digit: Callable[[str, int], None] | None = None
        if callback is not None:
            call_soon, report = self._loop.call_soon, self._report_digit

            def on_digit(digit: str, duration_ms: int) -> None:
                call_soon(report, callback, digit, duration_ms)

        side.filter.set_dtmf(payload_type, on_digit, forward=forward, clock_rate=side.clock_rate)
        side.retune()

    def set_clock_rate(self, leg: LegName, rate: int) -> None:
        """The RTP clock rate negotiated on ``leg`` (default 8000): the unit of the jitter its
        far end reports and of the durations of the telephone-events it sends."""
        if rate <= 0:
            raise ValueError(f"clock rate must be positive, not {rate}")
        side = self._leg(leg)
        side.clock_rate = rate
        side.filter.detector.clock_rate = rate

    def _report_digit(
        self, callback: Callable[[str, int], None], digit: str, duration_ms: int
    ) -> None:
        if not self._closed:
            callback(digit, duration_ms)

    def stats(self) -> RelayStats:
        return RelayStats(
            a_to_b=_direction(self._a),
            b_to_a=_direction(self._b),
            source_a=self._a.rtp.latch.latched,
            source_b=self._b.rtp.latch.latched,
            last_rx_a=self._a.last_rx(),
            last_rx_b=self._b.last_rx(),
            report_a=self._a.report(),
            report_b=self._b.report(),
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
        dropped_malformed=rtp.dropped_malformed,
    )
