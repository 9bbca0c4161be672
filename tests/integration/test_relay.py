"""media.relay over real sockets on 127.0.0.1, on both the asyncio and uvloop loops.

Plain UDP endpoints play the phones on either side of a ``RelaySession``. Every network wait is
bounded (``WAIT``) and so is each whole scenario (``SCENARIO_BOUND``); each scenario closes
what it opens (an ``AsyncExitStack``). Checks that something did *not* arrive send a marker
packet behind it: loopback keeps order, so the marker arriving first proves the absence
without a wall-clock wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from collections.abc import Callable, Coroutine
from typing import Any, cast

import pytest
import uvloop

from media.g711 import decode_alaw, decode_ulaw, encode_alaw, encode_ulaw
from media.latch import Address
from media.ports import PortPool
from media.relay import ReceptionReport, RelayPortError, RelaySession
from media.rtcp import ReceiverReport, ReportBlock, SenderReport, sdes_cname
from media.rtp import RtpPacket, build_dtmf_event, parse_rtp

pytestmark = pytest.mark.integration

WAIT = 2.0  # one network event
SCENARIO_BOUND = 15.0  # one whole test
LOCAL = "127.0.0.1"

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}

Run = Callable[[Coroutine[Any, Any, None]], None]


@pytest.fixture(params=sorted(LOOPS))
def run(request: pytest.FixtureRequest) -> Run:
    factory = LOOPS[request.param]

    def runner(scenario: Coroutine[Any, Any, None]) -> None:
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(asyncio.wait_for(scenario, SCENARIO_BOUND))

    return runner


def make_pool(pairs: int = 16) -> PortPool:
    """A pool on a random stretch of 30000-32767 (below Linux's ephemeral range); a port some
    other process holds is the relay's retry to handle."""
    first = random.randrange(30000, 32767 - 2 * pairs, 2)
    return PortPool(first, first + 2 * pairs - 1, random.Random(first))


def rtp(seq: int, ssrc: int = 0x1234) -> bytes:
    payload = bytes([seq & 0xFF]) * 160  # 20 ms of G.711
    return RtpPacket(0, seq, seq * 160, ssrc, payload).to_bytes()


def rtcp(ssrc: int = 0x1234) -> bytes:
    return ReceiverReport(ssrc).to_bytes() + sdes_cname(ssrc, "phone@test").to_bytes()


class Phone(asyncio.DatagramProtocol):
    """A UDP socket on 127.0.0.1 that queues what it receives."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, Address]] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio's selector transport is not a DatagramTransport subclass on 3.11
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.queue.put_nowait((data, addr))

    @property
    def addr(self) -> Address:
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return (host, port)

    def send(self, data: bytes, port: int) -> None:
        assert self.transport is not None
        self.transport.sendto(data, (LOCAL, port))

    async def recv(self) -> tuple[bytes, Address]:
        return await asyncio.wait_for(self.queue.get(), WAIT)


async def phone(stack: contextlib.AsyncExitStack, port: int = 0) -> Phone:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(Phone, local_addr=(LOCAL, port))
    stack.callback(transport.close)
    return proto


async def session(stack: contextlib.AsyncExitStack, pool: PortPool, **kw: Any) -> RelaySession:
    relay = await RelaySession.open(asyncio.get_running_loop(), pool, LOCAL, **kw)
    stack.callback(relay.close)
    return relay


MARK = b"\x80\x00marker-----"  # an RTP-looking packet sent behind an expected silence


async def assert_silent(receiver: Phone, sender: Phone, port: int) -> None:
    """Nothing is queued for ``receiver`` ahead of a marker ``sender`` sends now via ``port``."""
    sender.send(MARK, port)
    data, _ = await receiver.recv()
    assert data == MARK


# -- RTP both ways ------------------------------------------------------------------------


def test_rtp_is_relayed_unchanged_and_in_order_both_ways(run: Run) -> None:
    async def scenario() -> None:
        async with contextlib.AsyncExitStack() as stack:
            pool = make_pool()
            a, b = await phone(stack), await phone(stack)
            relay = await session(stack, pool, expected_b=b.addr)
            sent = [rtp(seq) for seq in range(50)]
            for packet in sent:
                a.send(packet, relay.ports_a[0])
            got = [await b.recv() for _ in sent]
            assert [data for data, _ in got] == sent
            # RFC 4961: B hears the relay from the port it sends to.
            assert {source for _, source in got} == {(LOCAL, relay.ports_b[0])}

            back = [rtp(seq, ssrc=0x9999) for seq in range(50)]
            for packet in back:
                b.send(packet, relay.ports_b[0])
            got = [await a.recv() for _ in back]
            assert [data for data, _ in got] == back
            assert {source for _, source in got} == {(LOCAL, relay.ports_a[0])}

            stats = relay.stats()
            octets = sum(map(len, sent))
            assert (stats.a_to_b.packets, stats.a_to_b.octets) == (50, octets)
            assert (stats.b_to_a.packets, stats.b_to_a.octets) == (50, sum(map(len, back)))
            assert stats.a_to_b.dropped_unlatched == stats.a_to_b.dropped_no_target == 0
            assert (stats.source_a, stats.source_b) == (a.addr, b.addr)
            now = asyncio.get_running_loop().time()
            assert stats.last_rx_a is not None and stats.last_rx_a <= now
            assert stats.last_rx_b is not None and stats.last_rx_a <= stats.last_rx_b <= now

    run(scenario())


def test_a_packet_toward_a_far_end_not_known_yet_is_dropped_and_counted(run: Run) -> None:
    async def scenario() -> None:
        async with contextlib.AsyncExitStack() as stack:
            pool = make_pool()
            a, b = await phone(stack), await phone(stack)
            relay = await session(stack, pool)  # no SDP address for B
            a.send(rtp(1), relay.ports_a[0])
            b.send(rtp(1, ssrc=2), relay.ports_b[0])  # latches B; A is known by now
            assert (await a.recv())[0] == rtp(1, ssrc=2)
            a.send(rtp(2), relay.ports_a[0])
            assert (await b.recv())[0] == rtp(2)
            stats = relay.stats()
            assert stats.a_to_b.dropped_no_target == 1
            assert stats.a_to_b.packets == stats.b_to_a.packets == 1
            assert stats.last_rx_a is not None

    run(scenario())


# -- latching -----------------------------------------------------------------------------


def test_leg_latches_to_the_real_source_not_the_sdp_address(run: Run) -> None:
    async def scenario() -> None:
        async with contextlib.AsyncExitStack() as stack:
            pool = make_pool()
            sdp, a, b = await phone(stack), await phone(stack), await phone(stack)
            relay = await session(stack, pool, expected_a=sdp.addr, expected_b=b.addr)
            # Before A speaks, media toward A goes to its SDP address.
            b.send(rtp(1, ssrc=2), relay.ports_b[0])
            assert (await sdp.recv())[0] == rtp(1, ssrc=2)
            # A sends from elsewhere (NAT): the relay latches to it and answers there.
            a.send(rtp(1), relay.ports_a[0])
            assert (await b.recv())[0] == rtp(1)
            b.send(rtp(2, ssrc=2), relay.ports_b[0])
            assert (await a.recv())[0] == rtp(2, ssrc=2)
            assert relay.stats().source_a == a.addr
            assert sdp.queue.empty()

    run(scenario())


def test_third_party_dropped_after_latching_until_relatch(run: Run) -> None:
    async def scenario() -> None:
        async with contextlib.AsyncExitStack() as stack:
            pool = make_pool()
            a, b, intruder = await phone(stack), await phone(stack), await phone(stack)
            relay = await session(stack, pool, expected_b=b.addr)
            a.send(rtp(1), relay.ports_a[0])
            assert (await b.recv())[0] == rtp(1)
            for seq in range(5):
                intruder.send(rtp(seq, ssrc=0xBAD), relay.ports_a[0])
            await assert_silent(b, a, relay.ports_a[0])
            assert relay.stats().a_to_b.dropped_unlatched == 5

            relay.relatch("a")  # a re-INVITE: the next packet latches again
            intruder.send(rtp(9, ssrc=0xBAD), relay.ports_a[0])
            assert (await b.recv())[0] == rtp(9, ssrc=0xBAD)
            a.send(rtp(2), relay.ports_a[0])  # the old source is now the stranger
            await assert_silent(b, intruder, relay.ports_a[0])
            stats = relay.stats()
            assert stats.a_to_b.dropped_unlatched == 6
            assert stats.source_a == intruder.addr
            b.send(rtp(3, ssrc=2), relay.ports_b[0])
            assert (await intruder.recv())[0] == rtp(3, ssrc=2)

    run(scenario())


def test_set_expected_moves_the_target_of_a_leg_that_has_not_sent(run: Run) -> None:
    async def scenario() -> None:
        async with contextlib.AsyncExitStack() as stack:
            pool = make_pool()
            a, b, moved = await phone(stack), await phone(stack), await phone(stack)
            relay = await session(stack, pool, expected_b=b.addr)
            relay.set_expected("b", moved.addr)
            a.send(rtp(1), relay.ports_a[0])
            assert (await moved.recv())[0] == rtp(1)
            assert b.queue.empty()

    run(scenario())


# -- RTCP ---------------------------------------------------------------------------------


def test_rtcp_is_relayed_between_the_odd_ports(run: Run) -> None:
    async def scenario() -> None:
        async with contextlib.AsyncExitStack() as stack:
            pool = make_pool()
            a_rtcp, b_rtcp = await phone(stack), await phone(stack)
            relay = await session(stack, pool)
            b_rtcp.send(rtcp(2), relay.ports_b[1])  # latches B's RTCP; A unknown: dropped
            a_rtcp.send(rtcp(1), relay.ports_a[1])
            data, source = await b_rtcp.recv()
            assert (data, source) == (rtcp(1), (LOCAL, relay.ports_b[1]))
            b_rtcp.send(rtcp(2), relay.ports_b[1])
            data, source = await a_rtcp.recv()
            assert (data, source) == (rtcp(2), (LOCAL, relay.ports_a[1]))
            stats = relay.stats()
            assert stats.a_to_b.packets == stats.b_to_a.packets == 1
            assert stats.b_to_a.dropped_no_target == 1

    run(scenario())


def test_rtcp_follows_rtp_to_the_next_port_of_the_sdp_address(run: Run) -> None:
    async def scenario() -> None:
        async with contextlib.AsyncExitStack() as stack:
            pool = make_pool()
            a_rtcp = await phone(stack)
            # B's SDP names an even port whose odd neighbour is B's RTCP socket.
            b_rtcp = await phone(stack, port=pool.first + 2 * pool.capacity + 1)
            relay = await session(stack, pool, expected_b=(LOCAL, b_rtcp.addr[1] - 1))
            a_rtcp.send(rtcp(1), relay.ports_a[1])
            assert (await b_rtcp.recv())[0] == rtcp(1)

    run(scenario())


@pytest.mark.parametrize("mux_b", [False, True], ids=["b-unmuxed", "b-muxed"])
def test_rtcp_mux_on_one_leg(run: Run, mux_b: bool) -> None:
    async def scenario() -> None:
        async with contextlib.AsyncExitStack() as stack:
            pool = make_pool()
            a = await phone(stack)  # muxed: RTP and RTCP on one socket (RFC 5761)
            b_rtp, b_rtcp = await phone(stack), await phone(stack)
            relay = await session(stack, pool, mux_a=True, mux_b=mux_b)
            b_rtp.send(rtp(1, ssrc=2), relay.ports_b[0])  # latch B
            if not mux_b:
                b_rtcp.send(rtcp(2), relay.ports_b[1])
            a.send(rtp(1), relay.ports_a[0])
            a.send(rtcp(1), relay.ports_a[0])
            a.send(rtp(2), relay.ports_a[0])
            if mux_b:  # everything on B's RTP socket, in order
                got = [(await b_rtp.recv())[0] for _ in range(3)]
                assert got == [rtp(1), rtcp(1), rtp(2)]
            else:  # demultiplexed toward B's two sockets
                assert [(await b_rtp.recv())[0] for _ in range(2)] == [rtp(1), rtp(2)]
                data, source = await b_rtcp.recv()
                assert (data, source) == (rtcp(1), (LOCAL, relay.ports_b[1]))
                # ... and B's RTCP goes to A on A's RTP port, from the relay's RTP port.
                b_rtcp.send(rtcp(2), relay.ports_b[1])
                assert await a.recv() == (rtcp(2), (LOCAL, relay.ports_a[0]))
            b_rtp.send(rtp(3, ssrc=2), relay.ports_b[0])
            assert await a.recv() == (rtp(3, ssrc=2), (LOCAL, relay.ports_a[0]))

    run(scenario())


# -- ports --------------------------------------------------------------------------------


def test_close_releases_both_pairs_and_is_idempotent(run: Run) -> None:
    async def scenario() -> None:
        async with contextlib.AsyncExitStack() as stack:
            pool = make_pool(pairs=2)  # exactly one session's worth
            relay = await session(stack, pool)
            assert pool.in_use == 2 and pool.available == 0
            ports = (relay.ports_a[0], relay.ports_b[0])
            assert all(port in pool for port in ports)
            relay.close()
            relay.close()
            assert pool.in_use == 0
            # The same two pairs bind again at once (the retry lets the loop finish closing).
            again = await session(stack, pool)
            assert {again.ports_a[0], again.ports_b[0]} == set(ports)

    run(scenario())


def test_an_exhausted_pool_raises_and_keeps_nothing(run: Run) -> None:
    async def scenario() -> None:
        pool = make_pool(pairs=1)
        with pytest.raises(RelayPortError):
            await RelaySession.open(asyncio.get_running_loop(), pool, LOCAL)
        assert pool.in_use == 0

    run(scenario())


@pytest.mark.parametrize("held", [0, 1], ids=["rtp-port-taken", "rtcp-port-taken"])
def test_a_port_held_elsewhere_is_skipped(run: Run, held: int) -> None:
    async def scenario() -> None:
        pool = make_pool(pairs=3)
        blocked = pool.first + 2  # some pair's RTP (held=0) or RTCP (held=1) port
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
            squatter.bind((LOCAL, blocked + held))
            relay = await RelaySession.open(asyncio.get_running_loop(), pool, LOCAL)
            try:
                assert blocked not in (relay.ports_a[0], relay.ports_b[0])
                assert pool.in_use == 2
            finally:
                relay.close()
        assert pool.in_use == 0

    run(scenario())


def test_an_expected_address_that_is_not_unicast_is_refused(run: Run) -> None:
    async def scenario() -> None:
        pool = make_pool()
        loop = asyncio.get_running_loop()
        for bad in (("224.0.0.1", 4000), ("0.0.0.0", 4000), ("255.255.255.255", 9), ("a.b", 5)):
            with pytest.raises(ValueError):
                await RelaySession.open(loop, pool, LOCAL, expected_a=bad)
        assert pool.in_use == 0
        relay = await RelaySession.open(loop, pool, LOCAL)
        try:
            with pytest.raises(ValueError):
                relay.set_expected("b", ("239.1.1.1", 5004))
        finally:
            relay.close()

    run(scenario())


# -- payload map: PCMU <-> PCMA (RFC 3551 §4.5.14) ------------------------------------------


def g711(pt: int, seq: int, ssrc: int = 0x1234) -> bytes:
    """A 20 ms G.711 frame whose 160 payload octets run through most code values."""
    payload = bytes((seq + i) & 0xFF for i in range(160))
    return RtpPacket(pt, seq, seq * 160, ssrc, payload, marker=seq == 0).to_bytes()


def to_pcma(payload: bytes) -> bytes:
    return encode_alaw(decode_ulaw(payload))  # G.711 through the linear value


def to_pcmu(payload: bytes) -> bytes:
    return encode_ulaw(decode_alaw(payload))


def transcoded(data: bytes, pt: int, convert: Callable[[bytes], bytes] = bytes) -> bytes:
    packet = parse_rtp(data)
    packet.payload_type, packet.payload = pt, convert(packet.payload)
    return packet.to_bytes()


@pytest.mark.parametrize("mux", [False, True], ids=["unmuxed", "muxed"])
def test_pcmu_on_leg_a_arrives_as_pcma_on_leg_b_and_back(run: Run, mux: bool) -> None:
    async def scenario() -> None:
        async with contextlib.AsyncExitStack() as stack:
            pool = make_pool()
            a, b = await phone(stack), await phone(stack)
            relay = await session(stack, pool, expected_b=b.addr, mux_a=mux, mux_b=mux)
            relay.set_payload_map("a", {0: (8, "ulaw_to_alaw")})
            relay.set_payload_map("b", {8: (0, "alaw_to_ulaw")})
            sent = [g711(0, seq) for seq in range(20)]
            for packet in sent:
                a.send(packet, relay.ports_a[0])
            got = [(await b.recv())[0] for _ in sent]
            assert got == [transcoded(p, 8, to_pcma) for p in sent]
            assert parse_rtp(got[0]).marker and parse_rtp(got[0]).payload_type == 8

            back = [g711(8, seq, ssrc=0x9999) for seq in range(20)]
            for packet in back:
                b.send(packet, relay.ports_b[0])
            got = [(await a.recv())[0] for _ in back]
            assert got == [transcoded(p, 0, to_pcmu) for p in back]
            if mux:  # RTCP on a muxed port is never transcoded (nor taken for RTP)
                a.send(rtcp(1), relay.ports_a[0])
                assert (await b.recv())[0] == rtcp(1)
            # Other payload types pass unchanged.
            a.send(g711(18, 99), relay.ports_a[0])
            assert (await b.recv())[0] == g711(18, 99)

    run(scenario())


def test_an_empty_payload_map_puts_the_leg_back_on_the_fast_path(run: Run) -> None:
    async def scenario() -> None:
        async with contextlib.AsyncExitStack() as stack:
            pool = make_pool()
            a, b = await phone(stack), await phone(stack)
            relay = await session(stack, pool, expected_b=b.addr)
            fast_path = type(relay._a.rtp)  # the protocol class of an untouched RTP socket
            relay.set_payload_map("a", {0: (8, "ulaw_to_alaw")})
            assert type(relay._a.rtp) is not fast_path
            assert type(relay._b.rtp) is fast_path  # the other leg is untouched
            a.send(g711(0, 1), relay.ports_a[0])
            assert (await b.recv())[0] == transcoded(g711(0, 1), 8, to_pcma)
            relay.set_payload_map("a", {})
            assert type(relay._a.rtp) is fast_path
            a.send(g711(0, 2), relay.ports_a[0])
            assert (await b.recv())[0] == g711(0, 2)

    run(scenario())


def test_malformed_rtp_on_a_transcoded_leg_is_dropped_and_counted(run: Run) -> None:
    async def scenario() -> None:
        async with contextlib.AsyncExitStack() as stack:
            pool = make_pool()
            a, b = await phone(stack), await phone(stack)
            relay = await session(stack, pool, expected_b=b.addr)
            relay.set_payload_map("a", {0: (8, "ulaw_to_alaw")})
            a.send(g711(0, 1), relay.ports_a[0])  # latch A
            await b.recv()
            for junk in (
                b"\x80\x00short",
                b"\x40" + g711(0, 2)[1:],
                b"\xa0" + g711(0, 3)[1:-1] + b"\xff",
            ):
                a.send(junk, relay.ports_a[0])
            a.send(g711(0, 4), relay.ports_a[0])
            assert (await b.recv())[0] == transcoded(g711(0, 4), 8, to_pcma)
            stats = relay.stats().a_to_b
            assert (stats.dropped_malformed, stats.packets) == (3, 2)

    run(scenario())


# -- DTMF (RFC 4733) --------------------------------------------------------------------------


def key_press(event: int, timestamp: int, pt: int = 101) -> list[bytes]:
    """One key press of 100 ms at 8 kHz: three updates, then the end packet three times
    (RFC 4733 §2.5.1.4), every packet with the event's start timestamp."""
    durations = [(160, False), (480, False), (640, False)] + [(800, True)] * 3
    return [
        RtpPacket(
            pt,
            500 + i,
            timestamp,
            0x1234,
            build_dtmf_event(event, end=end, volume=10, duration=duration),
            marker=i == 0,
        ).to_bytes()
        for i, (duration, end) in enumerate(durations)
    ]


class Digits:
    """A DTMF callback that queues what it is told."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[str, int]] = asyncio.Queue()

    def __call__(self, digit: str, duration_ms: int) -> None:
        self.queue.put_nowait((digit, duration_ms))

    async def next(self) -> tuple[str, int]:
        return await asyncio.wait_for(self.queue.get(), WAIT)


@pytest.mark.parametrize("forward", [False, True], ids=["info-only", "forwarded"])
def test_dtmf_is_reported_once_per_key_press(run: Run, forward: bool) -> None:
    async def scenario() -> None:
        async with contextlib.AsyncExitStack() as stack:
            pool = make_pool()
            a, b = await phone(stack), await phone(stack)
            relay = await session(stack, pool, expected_b=b.addr)
            digits = Digits()
            relay.set_dtmf("a", 101, digits, forward=forward)
            presses = key_press(5, 16000) + key_press(11, 19200)
            for packet in [rtp(1), *presses, rtp(2)]:
                a.send(packet, relay.ports_a[0])
            expected = [rtp(1), *presses, rtp(2)] if forward else [rtp(1), rtp(2)]
            assert [(await b.recv())[0] for _ in expected] == expected
            assert [await digits.next(), await digits.next()] == [("5", 100), ("#", 100)]
            await assert_silent(b, a, relay.ports_a[0])
            assert digits.queue.empty()  # three end packets, one report each press

            relay.set_dtmf("a", None, None, forward=False)  # off: events pass like any RTP
            for packet in key_press(1, 22400):
                a.send(packet, relay.ports_a[0])
            assert [(await b.recv())[0] for _ in range(6)] == key_press(1, 22400)
            assert digits.queue.empty()

    run(scenario())


def test_dtmf_and_transcoding_on_one_leg(run: Run) -> None:
    async def scenario() -> None:
        async with contextlib.AsyncExitStack() as stack:
            pool = make_pool()
            a, b = await phone(stack), await phone(stack)
            relay = await session(stack, pool, expected_b=b.addr)
            digits = Digits()
            # A has PCMU + telephone-event/8000 as 101, B has PCMA + telephone-event as 96.
            relay.set_payload_map("a", {0: (8, "ulaw_to_alaw"), 101: (96, None)})
            relay.set_dtmf("a", 101, digits, forward=True)
            presses = key_press(0, 32000)
            for packet in [g711(0, 1), *presses]:
                a.send(packet, relay.ports_a[0])
            assert (await b.recv())[0] == transcoded(g711(0, 1), 8, to_pcma)
            got = [(await b.recv())[0] for _ in presses]
            assert got == [transcoded(p, 96) for p in presses]
            assert await digits.next() == ("0", 100)

    run(scenario())


def test_a_failing_dtmf_callback_does_not_stop_the_media(run: Run) -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        errors: list[BaseException | None] = []
        loop.set_exception_handler(lambda _, context: errors.append(context.get("exception")))
        async with contextlib.AsyncExitStack() as stack:
            pool = make_pool()
            a, b = await phone(stack), await phone(stack)
            relay = await session(stack, pool, expected_b=b.addr)

            def broken(digit: str, duration_ms: int) -> None:
                raise RuntimeError(f"B2BUA bug on {digit}")

            relay.set_dtmf("a", 101, broken, forward=False)
            for packet in [*key_press(9, 8000), rtp(1)]:
                a.send(packet, relay.ports_a[0])
            assert (await b.recv())[0] == rtp(1)
            await asyncio.sleep(0)  # the callback's turn on the loop
            assert [type(e) for e in errors] == [RuntimeError]
            a.send(rtp(2), relay.ports_a[0])
            assert (await b.recv())[0] == rtp(2)

    run(scenario())


def test_no_digit_is_reported_after_close(run: Run) -> None:
    async def scenario() -> None:
        async with contextlib.AsyncExitStack() as stack:
            relay = await session(stack, make_pool())
            digits = Digits()
            relay.set_dtmf("a", 101, digits, forward=False)
            socket_a = relay._a.rtp  # fed directly: detection and close in one loop turn
            for packet in key_press(2, 8000):
                socket_a.datagram_received(packet, (LOCAL, 40000))
            relay.close()
            for _ in range(3):
                await asyncio.sleep(0)
            assert digits.queue.empty()

    run(scenario())


# -- RTCP reception reports (RFC 3550 §6.4) ---------------------------------------------------


def report(ssrc: int, lost: int, jitter: int, *, sender: bool = False) -> bytes:
    """What a phone sends about the stream it receives (SSRC 0x5555 here)."""
    block = ReportBlock(0x5555, 64, lost, 1000, jitter, 0, 0)
    first = (
        SenderReport(ssrc, 0, 0, 10, 1600, (block,)) if sender else ReceiverReport(ssrc, (block,))
    )
    return first.to_bytes() + sdes_cname(ssrc, "phone@test").to_bytes()


def test_rtcp_reports_from_each_far_end_show_in_the_stats(run: Run) -> None:
    async def scenario() -> None:
        async with contextlib.AsyncExitStack() as stack:
            pool = make_pool()
            a_rtcp, b_rtcp = await phone(stack), await phone(stack)
            relay = await session(stack, pool)
            assert (relay.stats().report_a, relay.stats().report_b) == (None, None)
            b_rtcp.send(rtcp(2), relay.ports_b[1])  # latch B's RTCP (an RR without blocks)
            a_rtcp.send(report(1, lost=7, jitter=80), relay.ports_a[1])
            assert (await b_rtcp.recv())[0] == report(1, lost=7, jitter=80)  # relayed unchanged
            stats = relay.stats()
            assert stats.report_a == ReceptionReport(
                cumulative_lost=7, fraction_lost=0.25, jitter_ms=10.0
            )
            assert stats.report_b is None

            b_rtcp.send(report(2, lost=3, jitter=160, sender=True), relay.ports_b[1])
            await a_rtcp.recv()
            relay.set_clock_rate("b", 16000)  # B negotiated a 16 kHz codec
            assert relay.stats().report_b == ReceptionReport(3, 0.25, 10.0)

            a_rtcp.send(report(1, lost=9, jitter=8), relay.ports_a[1])  # the latest one counts
            await b_rtcp.recv()
            assert relay.stats().report_a == ReceptionReport(9, 0.25, 1.0)
            a_rtcp.send(b"\x80\xc9\x00\x07garbage", relay.ports_a[1])  # malformed: relayed, ignored
            assert (await b_rtcp.recv())[0] == b"\x80\xc9\x00\x07garbage"
            assert relay.stats().report_a == ReceptionReport(9, 0.25, 1.0)

    run(scenario())


@pytest.mark.parametrize("mux_b", [False, True], ids=["b-unmuxed", "b-muxed"])
def test_rtcp_reports_on_a_muxed_leg_show_in_the_stats(run: Run, mux_b: bool) -> None:
    async def scenario() -> None:
        async with contextlib.AsyncExitStack() as stack:
            pool = make_pool()
            a, b_rtp, b_rtcp = await phone(stack), await phone(stack), await phone(stack)
            relay = await session(stack, pool, mux_a=True, mux_b=mux_b, expected_b=b_rtp.addr)
            if not mux_b:  # latch B's RTCP socket to its own phone socket
                b_rtcp.send(rtcp(2), relay.ports_b[1])
            sr = report(1, lost=2, jitter=40, sender=True)
            for packet in (rtp(1), sr, rtp(2)):
                a.send(packet, relay.ports_a[0])
            if mux_b:
                assert [(await b_rtp.recv())[0] for _ in range(3)] == [rtp(1), sr, rtp(2)]
            else:
                assert [(await b_rtp.recv())[0] for _ in range(2)] == [rtp(1), rtp(2)]
                assert (await b_rtcp.recv())[0] == sr
            assert relay.stats().report_a == ReceptionReport(2, 0.25, 5.0)
            assert relay.stats().a_to_b.packets == 3
            rr = report(2, lost=1, jitter=8)
            b_rtcp_port = relay.ports_b[0] if mux_b else relay.ports_b[1]
            (b_rtp if mux_b else b_rtcp).send(rr, b_rtcp_port)
            assert await a.recv() == (rr, (LOCAL, relay.ports_a[0]))
            assert relay.stats().report_b == ReceptionReport(1, 0.25, 1.0)

    run(scenario())
