"""sip.transport over real sockets on 127.0.0.1 (and ::1), on both the asyncio and uvloop loops.

Each test is a plain function that runs its scenario on a fresh loop of each kind: the edge
runs on uvloop, development machines often on asyncio, and the two differ in how they deliver
datagrams, start reading and wrap TLS. Every network wait is bounded (``WAIT``) and so is each
whole scenario (``SCENARIO_BOUND``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import socket
import ssl
import warnings
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import uvloop

import sip.transport.stream
from edge.certs import ensure_self_signed, server_ssl_context
from sip.flow import Flow
from sip.framer import KeepAlivePing, StreamFramer
from sip.transport import STAT_KEYS, Transports

pytestmark = pytest.mark.integration

WAIT = 2.0  # one network event
SCENARIO_BOUND = 15.0  # one whole test
LOCAL = "127.0.0.1"
T = TypeVar("T")

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}

Run = Callable[[Coroutine[Any, Any, None]], None]


def _can_bind(host: str) -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind((host, 0))
    except OSError:
        return False
    return True


HAS_IPV6_LOOPBACK = _can_bind("::1")


@pytest.fixture(params=sorted(LOOPS))
def run(request: pytest.FixtureRequest) -> Run:
    factory = LOOPS[request.param]

    def runner(scenario: Coroutine[Any, Any, None]) -> None:
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(asyncio.wait_for(scenario, SCENARIO_BOUND))

    return runner


# -- helpers --------------------------------------------------------------------------------


class Inbox:
    """A sink that queues what the transports deliver."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, Flow]] = asyncio.Queue()

    def __call__(self, data: bytes, flow: Flow) -> None:
        self.queue.put_nowait((data, flow))

    async def get(self) -> tuple[bytes, Flow]:
        return await asyncio.wait_for(self.queue.get(), WAIT)


@contextlib.asynccontextmanager
async def running(**options: Any) -> AsyncIterator[tuple[Transports, Inbox]]:
    inbox = Inbox()
    transports = Transports(inbox, **options)
    try:
        yield transports, inbox
    finally:
        await transports.close()


def request(n: int, body: bytes = b"", transport: str = "TCP") -> bytes:
    head = (
        f"OPTIONS sip:edge@{LOCAL} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} {LOCAL}:5070;branch=z9hG4bK-{n}\r\n"
        f"Call-ID: {n}@test\r\n"
        f"CSeq: {n} OPTIONS\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


RESPONSE = b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n"


async def eventually(predicate: Callable[[], bool], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    spins = 0
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        spins += 1
        await asyncio.sleep(0 if spins < 100 else 0.001)


async def closed_by_peer(reader: asyncio.StreamReader) -> bool:
    """Read to the end; True once the other side has closed (FIN or RST)."""
    try:
        while await asyncio.wait_for(reader.read(65536), WAIT):
            pass
    except ConnectionError:
        pass
    return True


async def connect(
    port: int, host: str = LOCAL
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.wait_for(asyncio.open_connection(host, port), WAIT)


async def close_writer(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError, TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), WAIT)


class UdpClient(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.queue.put_nowait((data, (addr[0], addr[1])))

    def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(data, addr)

    def address(self) -> tuple[str, int]:
        assert self.transport is not None
        sockname = self.transport.get_extra_info("sockname")
        return (sockname[0], sockname[1])

    async def get(self) -> tuple[bytes, tuple[str, int]]:
        return await asyncio.wait_for(self.queue.get(), WAIT)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


@contextlib.asynccontextmanager
async def udp_client(host: str = LOCAL) -> AsyncIterator[UdpClient]:
    loop = asyncio.get_running_loop()
    _, client = await loop.create_datagram_endpoint(UdpClient, local_addr=(host, 0))
    try:
        yield client
    finally:
        client.close()


@dataclass
class FramerLog:
    fed: int = 0
    chunks: list[int] = field(default_factory=list)
    peak: int = 0  # the most the framer held after any successful feed

    def has_fed(self, total: int) -> Callable[[], bool]:
        return lambda: self.fed == total


@pytest.fixture
def framer_log(monkeypatch: pytest.MonkeyPatch) -> FramerLog:
    """Watch every connection's framer: how many bytes it was fed, what it kept buffered."""
    log = FramerLog()

    class RecordingFramer(StreamFramer):
        def feed(self, data: bytes) -> list[bytes | KeepAlivePing]:
            log.fed += len(data)
            log.chunks.append(len(data))
            out = super().feed(data)
            log.peak = max(log.peak, self.buffered)
            return out

    monkeypatch.setattr(sip.transport.stream, "StreamFramer", RecordingFramer)
    return log


# -- UDP ------------------------------------------------------------------------------------


def test_udp_datagram_reaches_sink_and_reply_returns_from_the_same_listener(run: Run) -> None:
    async def scenario() -> None:
        async with running() as (transports, inbox), udp_client() as client:
            first = await transports.listen_udp(LOCAL, 0)
            second = await transports.listen_udp(LOCAL, 0)
            assert first[0] == LOCAL and first[1] > 0 and second != first

            client.sendto(request(1, transport="UDP"), second)
            data, flow = await inbox.get()

            assert data == request(1, transport="UDP")
            assert flow == Flow("udp", client.address(), second)
            assert transports.send(flow, RESPONSE)
            assert await client.get() == (RESPONSE, second)  # RFC 3261 §18.2.2: same socket
            # Without a local address the first UDP listener of the family answers.
            assert transports.send(Flow("udp", client.address()), RESPONSE)
            assert await client.get() == (RESPONSE, first)
            assert transports.stats["udp_rx"] == 1
            assert transports.stats["udp_tx"] == 2

    run(scenario())


def test_udp_crlf_keepalives_are_not_passed_on(run: Run) -> None:
    async def scenario() -> None:
        async with running() as (transports, inbox), udp_client() as client:
            server = await transports.listen_udp(LOCAL, 0)
            client.sendto(b"\r\n\r\n", server)
            client.sendto(b"\r\n", server)
            client.sendto(request(2, transport="UDP"), server)

            data, _ = await inbox.get()  # loopback keeps order: the keep-alives came first

            assert data == request(2, transport="UDP")
            assert inbox.queue.empty()
            assert transports.stats["udp_keepalives"] == 2

    run(scenario())


def test_udp_oversize_datagram_is_dropped_and_counted(run: Run) -> None:
    async def scenario() -> None:
        async with running(max_datagram=1000) as (transports, inbox), udp_client() as client:
            server = await transports.listen_udp(LOCAL, 0)
            client.sendto(request(3, body=b"x" * 1200, transport="UDP"), server)
            client.sendto(request(4, transport="UDP"), server)

            data, _ = await inbox.get()

            assert data == request(4, transport="UDP")
            assert transports.stats["oversize_dropped"] == 1

    run(scenario())


def test_udp_listener_survives_a_sink_that_raises(run: Run) -> None:
    async def scenario() -> None:
        delivered: asyncio.Queue[bytes] = asyncio.Queue()

        def sink(data: bytes, flow: Flow) -> None:
            if b"CSeq: 5 " in data:
                raise RuntimeError("bug upstream")
            delivered.put_nowait(data)

        transports = Transports(sink)
        try:
            async with udp_client() as client:
                server = await transports.listen_udp(LOCAL, 0)
                client.sendto(request(5, transport="UDP"), server)
                client.sendto(request(6, transport="UDP"), server)
                assert await asyncio.wait_for(delivered.get(), WAIT) == request(6, transport="UDP")
                assert transports.stats["sink_errors"] == 1
        finally:
            await transports.close()

    run(scenario())


def test_send_to_a_broadcast_address_is_refused(run: Run) -> None:
    async def scenario() -> None:
        async with running() as (transports, _):
            await transports.listen_udp(LOCAL, 0)

            # RFC 4475 §3.3.10: never send to a broadcast Via. Refused before any socket call.
            assert not transports.send(Flow("udp", ("255.255.255.255", 5060)), RESPONSE)
            assert not transports.send(Flow("tcp", ("255.255.255.255", 5060)), RESPONSE)

            assert transports.stats["blocked_destinations"] == 2
            assert transports.stats["udp_tx"] == 0
            assert transports.stats["send_failures"] == 0

    run(scenario())


def test_udp_send_without_a_matching_listener_fails(run: Run) -> None:
    async def scenario() -> None:
        async with running() as (transports, _):
            server = await transports.listen_udp(LOCAL, 0)
            gone = Flow("udp", (LOCAL, 9), (LOCAL, server[1] + 1 if server[1] < 65535 else 1))

            assert not transports.send(gone, RESPONSE)
            assert not transports.send(Flow("udp", ("sip.example.com", 5060)), RESPONSE)
            assert transports.stats["send_failures"] == 2

    run(scenario())


@pytest.mark.skipif(not HAS_IPV6_LOOPBACK, reason="::1 cannot be bound on this machine")
def test_ipv6_loopback_udp_and_tcp(run: Run) -> None:
    async def scenario() -> None:
        async with running() as (transports, inbox), udp_client("::1") as client:
            udp = await transports.listen_udp("::1", 0)
            tcp = await transports.listen_tcp("::1", 0)
            assert udp[0] == "::1" and tcp[0] == "::1"

            client.sendto(request(7, transport="UDP"), udp)
            _, flow = await inbox.get()
            assert flow == Flow("udp", client.address(), udp)
            assert transports.send(flow, RESPONSE)
            assert await client.get() == (RESPONSE, udp)

            reader, writer = await connect(tcp[1], "::1")
            writer.write(request(8))
            _, stream_flow = await inbox.get()
            assert stream_flow.transport == "tcp" and stream_flow.remote[0] == "::1"
            assert transports.send(stream_flow, RESPONSE)
            assert await asyncio.wait_for(reader.readexactly(len(RESPONSE)), WAIT) == RESPONSE
            await close_writer(writer)

    run(scenario())


# -- TCP ------------------------------------------------------------------------------------


def test_tcp_message_fed_byte_by_byte_arrives_whole(run: Run, framer_log: FramerLog) -> None:
    async def scenario() -> None:
        async with running() as (transports, inbox):
            _, port = await transports.listen_tcp(LOCAL, 0)
            _, writer = await connect(port)
            message = b"\r\n" + request(9, body=b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n")

            for i in range(len(message)):
                writer.write(message[i : i + 1])
                # Wait until the server has read this byte: every boundary is a real split.
                await eventually(framer_log.has_fed(i + 1), f"byte {i}")

            data, flow = await inbox.get()
            assert data == message[2:]  # RFC 3261 §7.5: CRLF before a start line is ignored
            assert flow.transport == "tcp" and flow.conn_id > 0
            assert flow.remote == writer.get_extra_info("sockname")[:2]
            assert flow.local == (LOCAL, port)
            assert framer_log.chunks == [1] * len(message)
            assert inbox.queue.empty()
            await close_writer(writer)

    run(scenario())


def test_tcp_pipelined_messages_split_at_random_points_arrive_whole(
    run: Run, framer_log: FramerLog
) -> None:
    async def scenario() -> None:
        rng = random.Random(5626)
        messages = [
            request(n, body=bytes(rng.randrange(256) for _ in range(n * 37))) for n in range(6)
        ]
        stream = b"".join(messages)
        cuts = sorted({0, len(stream), *(rng.randrange(1, len(stream)) for _ in range(25))})
        async with running() as (transports, inbox):
            _, port = await transports.listen_tcp(LOCAL, 0)
            _, writer = await connect(port)

            for start, end in itertools.pairwise(cuts):
                writer.write(stream[start:end])
                await eventually(framer_log.has_fed(end), f"offset {end}")

            received = [await inbox.get() for _ in messages]
            assert [data for data, _ in received] == messages
            assert len({flow for _, flow in received}) == 1  # the Flow is cached per connection
            assert transports.stats["stream_rx"] == len(messages)
            await close_writer(writer)

    run(scenario())


def test_crlfcrlf_ping_gets_a_single_crlf_pong(run: Run) -> None:
    async def scenario() -> None:
        async with running() as (transports, inbox):
            _, port = await transports.listen_tcp(LOCAL, 0)
            reader, writer = await connect(port)

            writer.write(b"\r\n\r\n")  # RFC 5626 §4.4.1
            assert await asyncio.wait_for(reader.readexactly(2), WAIT) == b"\r\n"
            writer.write(request(10))
            data, flow = await inbox.get()

            assert data == request(10)
            assert transports.send(flow, RESPONSE)
            # The pong was one CRLF: the next bytes are the response.
            assert await asyncio.wait_for(reader.readexactly(len(RESPONSE)), WAIT) == RESPONSE
            assert transports.stats["pings"] == 1
            await close_writer(writer)

    run(scenario())


BROKEN_FRAMING = {
    "negative-length": (
        b"OPTIONS sip:edge@127.0.0.1 SIP/2.0\r\nCall-ID: a@test\r\nContent-Length: -5\r\n\r\n"
    ),
    "two-lengths": (
        b"OPTIONS sip:edge@127.0.0.1 SIP/2.0\r\nContent-Length: 5\r\nCall-ID: b@test\r\n"
        b"l: 6\r\n\r\nhello!"
    ),
}


@pytest.mark.parametrize("message", BROKEN_FRAMING.values(), ids=BROKEN_FRAMING.keys())
def test_lost_framing_closes_the_connection(run: Run, message: bytes) -> None:
    async def scenario() -> None:
        async with running() as (transports, inbox):
            _, port = await transports.listen_tcp(LOCAL, 0)
            reader, writer = await connect(port)

            writer.write(message)

            assert await closed_by_peer(reader)
            assert inbox.queue.empty()
            assert transports.stats["framing_errors"] == 1
            await eventually(lambda: transports.stats["connections_open"] == 0, "close")
            await close_writer(writer)

    run(scenario())


OVERSIZE = {
    # Content-Length says 70 KiB: refused as soon as the header section is complete.
    "long-body": request(11, body=b"x" * 70 * 1024),
    # No end of the header section within the limit: refused once the buffer passes it.
    "long-header": b"OPTIONS sip:edge@127.0.0.1 SIP/2.0\r\n"
    + b"".join(b"X-Filler-%05d: %s\r\n" % (i, b"y" * 60) for i in range(1000))
    + b"Content-Length: 0\r\n\r\n",
}


@pytest.mark.parametrize("message", OVERSIZE.values(), ids=OVERSIZE.keys())
def test_70k_message_closes_the_connection_with_bounded_buffer(
    run: Run, framer_log: FramerLog, message: bytes
) -> None:
    async def scenario() -> None:
        assert len(message) > 70 * 1024
        async with running(max_message=65536) as (transports, inbox):
            _, port = await transports.listen_tcp(LOCAL, 0)
            reader, writer = await connect(port)

            for start in range(0, len(message), 4096):
                writer.write(message[start : start + 4096])

            assert await closed_by_peer(reader)
            assert inbox.queue.empty()
            assert transports.stats["oversize_dropped"] == 1
            assert framer_log.peak <= 65536
            await close_writer(writer)

    run(scenario())


def test_max_connections_refuses_the_extra_connection(run: Run) -> None:
    async def scenario() -> None:
        async with running(max_connections=2) as (transports, inbox):
            _, port = await transports.listen_tcp(LOCAL, 0)
            first = await connect(port)
            second = await connect(port)
            await eventually(lambda: transports.stats["connections_open"] == 2, "two open")

            reader, writer = await connect(port)
            assert await closed_by_peer(reader)
            assert transports.stats["connections_refused"] == 1
            await close_writer(writer)

            # The two admitted ones still work, and a freed slot admits a new connection.
            second[1].write(request(12))
            assert (await inbox.get())[0] == request(12)
            await close_writer(first[1])
            await eventually(lambda: transports.stats["connections_open"] == 1, "one left")
            third = await connect(port)
            third[1].write(request(13))
            assert (await inbox.get())[0] == request(13)
            assert transports.stats["connections_open"] == 2
            await close_writer(second[1])
            await close_writer(third[1])

    run(scenario())


def test_idle_connection_is_closed_by_the_sweep(run: Run) -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        async with running(idle_timeout=0.2) as (transports, _):
            _, port = await transports.listen_tcp(LOCAL, 0)
            idle_reader, idle_writer = await connect(port)
            busy_reader, busy_writer = await connect(port)
            opened = loop.time()

            # The busy one pings every 50 ms (RFC 5626 §4.4.1 keep-alive) and stays open.
            while not idle_reader.at_eof() and loop.time() - opened < WAIT:
                busy_writer.write(b"\r\n\r\n")
                assert await asyncio.wait_for(busy_reader.readexactly(2), WAIT) == b"\r\n"
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(idle_reader.read(1), 0.05)

            assert idle_reader.at_eof()
            assert loop.time() - opened >= 0.2
            assert transports.stats["idle_closed"] == 1
            assert not busy_reader.at_eof()
            assert transports.stats["connections_open"] == 1
            await close_writer(idle_writer)
            await close_writer(busy_writer)

    run(scenario())


def test_send_with_a_stale_conn_id_reuses_the_open_connection_to_that_peer(run: Run) -> None:
    async def scenario() -> None:
        async with running() as (transports, inbox):
            _, port = await transports.listen_tcp(LOCAL, 0)
            reader, writer = await connect(port)
            writer.write(request(14))
            _, flow = await inbox.get()

            # RFC 5626 §5.3 / RFC 3261 §18.2.2: e.g. a registered contact's flow whose
            # connection id is out of date, to the same remote address.
            stale = Flow("tcp", flow.remote, flow.local, conn_id=flow.conn_id + 1000)
            assert transports.send(stale, RESPONSE)
            assert await asyncio.wait_for(reader.readexactly(len(RESPONSE)), WAIT) == RESPONSE

            # Neither another transport nor another remote port may borrow that connection.
            assert not transports.send(Flow("tls", flow.remote, conn_id=flow.conn_id), RESPONSE)
            other_port = (flow.remote[0], flow.remote[1] % 65535 + 1)
            assert not transports.send(Flow("tcp", other_port), RESPONSE)
            assert transports.stats["send_failures"] == 2

            # Once the connection is gone nothing is opened: the send fails.
            await close_writer(writer)
            await eventually(lambda: transports.stats["connections_open"] == 0, "close")
            assert not transports.send(flow, RESPONSE)
            assert transports.stats["send_failures"] == 3
            assert transports.stats["stream_tx"] == 1

    run(scenario())


def test_connection_whose_peer_does_not_read_is_closed(run: Run) -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        async with running(max_write_buffer=256 * 1024) as (transports, inbox):
            _, port = await transports.listen_tcp(LOCAL, 0)
            with socket.socket() as client:
                client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                client.setblocking(False)
                await asyncio.wait_for(loop.sock_connect(client, (LOCAL, port)), WAIT)
                await asyncio.wait_for(loop.sock_sendall(client, request(15)), WAIT)
                _, flow = await inbox.get()

                chunk = b"x" * 65536
                sent = 0
                while transports.send(flow, chunk):  # the client never reads
                    sent += 1
                    assert sent < 2000, "write buffer grew without bound"
                    if sent % 8 == 0:
                        await asyncio.sleep(0)  # let the transport push to the kernel

                assert transports.stats["write_overflows"] == 1
                await eventually(lambda: transports.stats["connections_open"] == 0, "abort")

    run(scenario())


def test_close_closes_connections_and_can_be_called_twice(run: Run) -> None:
    async def scenario() -> None:
        transports = Transports(Inbox())
        try:
            _, port = await transports.listen_tcp(LOCAL, 0)
            reader, writer = await connect(port)
            await eventually(lambda: transports.stats["connections_open"] == 1, "open")

            await transports.close()

            assert await closed_by_peer(reader)
            assert transports.stats["connections_open"] == 0
            with pytest.raises(RuntimeError):
                await transports.listen_udp(LOCAL, 0)
            await close_writer(writer)
        finally:
            await transports.close()

    run(scenario())


def test_stats_start_at_zero_with_every_key() -> None:
    transports = Transports(Inbox())
    assert transports.stats == dict.fromkeys(STAT_KEYS, 0)


# -- TLS ------------------------------------------------------------------------------------


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    ensure_self_signed(cert, key, LOCAL, [LOCAL])
    return cert, key


def test_tls_round_trip_with_a_self_signed_certificate(
    run: Run, certificate: tuple[Path, Path]
) -> None:
    async def scenario() -> None:
        cert, key = certificate
        client_context = ssl.create_default_context(cafile=str(cert))
        async with running() as (transports, inbox):
            _, port = await transports.listen_tls(LOCAL, 0, server_ssl_context(cert, key))
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(LOCAL, port, ssl=client_context, server_hostname=LOCAL),
                WAIT,
            )

            writer.write(b"\r\n\r\n" + request(16, body=b"hello", transport="TLS"))
            assert await asyncio.wait_for(reader.readexactly(2), WAIT) == b"\r\n"
            data, flow = await inbox.get()

            assert data == request(16, body=b"hello", transport="TLS")
            assert flow.transport == "tls" and flow.local == (LOCAL, port)
            assert transports.send(flow, RESPONSE)
            assert await asyncio.wait_for(reader.readexactly(len(RESPONSE)), WAIT) == RESPONSE
            assert transports.stats["tls_handshake_failures"] == 0
            await close_writer(writer)

    run(scenario())


def _legacy_server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server context that would accept TLS 1.0 and 1.1 if left alone."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.minimum_version = ssl.TLSVersion.TLSv1
    context.set_ciphers("DEFAULT:@SECLEVEL=0")  # OpenSSL 3 refuses TLS < 1.2 above level 0
    return context


def _tls11_client_context(cert: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cert)
    context.minimum_version = ssl.TLSVersion.TLSv1
    context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
def test_tls11_client_is_refused(run: Run, certificate: tuple[Path, Path]) -> None:
    async def scenario() -> None:
        cert, key = certificate
        loop = asyncio.get_running_loop()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            client_context = _tls11_client_context(cert)
            control_context = _legacy_server_context(cert, key)
            context = _legacy_server_context(cert, key)

        # Control: this client can speak TLS 1.1 to a server that allows it.
        control = await loop.create_server(asyncio.Protocol, LOCAL, 0, ssl=control_context)
        try:
            control_port = control.sockets[0].getsockname()[1]
            try:
                _, writer = await asyncio.wait_for(
                    asyncio.open_connection(
                        LOCAL, control_port, ssl=client_context, server_hostname=LOCAL
                    ),
                    WAIT,
                )
            except (ssl.SSLError, ConnectionError) as exc:
                pytest.skip(f"this OpenSSL cannot negotiate TLS 1.1 at all: {exc}")
            assert writer.get_extra_info("ssl_object").version() == "TLSv1.1"
            await close_writer(writer)
        finally:
            control.close()

        async with running(tls_handshake_timeout=0.2) as (transports, inbox):
            _, port = await transports.listen_tls(LOCAL, 0, context)
            assert context.minimum_version == ssl.TLSVersion.TLSv1_2

            with pytest.raises((ssl.SSLError, ConnectionError)):
                await asyncio.wait_for(
                    asyncio.open_connection(LOCAL, port, ssl=client_context, server_hostname=LOCAL),
                    WAIT,
                )

            # The failure is settled once the handshake deadline has passed.
            await eventually(lambda: transports.stats["tls_handshake_failures"] == 1, "count")
            assert transports.stats["connections_open"] == 0
            assert inbox.queue.empty()

    run(scenario())
