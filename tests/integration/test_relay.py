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

from media.latch import Address
from media.ports import PortPool
from media.relay import RelayPortError, RelaySession
from media.rtcp import ReceiverReport, sdes_cname
from media.rtp import RtpPacket

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
