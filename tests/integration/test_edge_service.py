"""The edge's SIP service on real loopback sockets: what each kind of request gets back."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from edge.config import parse_config
from edge.responses import ALLOW
from edge.sipserver import SipService
from sip.message import Response
from sip.parser import parse_message
from tests.digest_client import authorization

pytestmark = pytest.mark.integration

CONFIG = """
[edge]
name = "svc"
domain = "voxedge.test"
advertise = "127.0.0.1"
data_dir = "{data}"

[listen.phones]
udp = "127.0.0.1:0"
tcp = "127.0.0.1:0"
{phones_extra}

[listen.trunks]
udp = "127.0.0.1:0"

[[phones]]
name = "alice"
type = "generic_sip"
extension = "1001"
password = "alice-secret"
"""


def request(
    method: str,
    uri: str = "sip:voxedge.test",
    *,
    call_id: str = "c1",
    transport: str = "UDP",
    port: int = 5999,
    extra: str = "",
    cseq_method: str | None = None,
) -> bytes:
    return (
        f"{method} {uri} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} 127.0.0.1:{port};branch=z9hG4bK-{call_id};rport\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:1001@voxedge.test>;tag=ft\r\n"
        "To: <sip:1001@voxedge.test>\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: 1 {cseq_method or method}\r\n"
        "Contact: <sip:1001@127.0.0.1:5999>\r\n"
        f"{extra}"
        "Content-Length: 0\r\n\r\n"
    ).encode()


class Client:
    """A UDP phone on 127.0.0.1 talking to one listener."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port = port

    async def ask(self, data: bytes, timeout: float = 2.0) -> Response:
        loop = asyncio.get_running_loop()
        self.sock.sendto(data, ("127.0.0.1", self.port))
        reply = await asyncio.wait_for(loop.sock_recv(self.sock, 65536), timeout)
        message = parse_message(reply)
        assert isinstance(message, Response)
        return message

    def close(self) -> None:
        self.sock.close()


async def start(tmp_path: Path, phones_extra: str = "", **kw: int) -> SipService:
    text = CONFIG.format(data=tmp_path, phones_extra=phones_extra)
    service = SipService(parse_config(text, tmp_path), **kw)
    await service.start()
    return service


def port_of(service: SipService, transport: str, side: str = "phones") -> int:
    return next(
        b.address[1] for b in service.listeners if b.transport == transport and b.side == side
    )


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[SipService]:
    svc = await start(tmp_path)
    yield svc
    await svc.stop()


@pytest.fixture
async def phone(service: SipService) -> AsyncIterator[Client]:
    client = Client(port_of(service, "udp"))
    yield client
    client.close()


async def test_options_is_answered_with_capabilities(phone: Client) -> None:
    response = await phone.ask(request("OPTIONS"))
    assert response.status == 200
    assert response.headers.get("Allow") == ALLOW
    assert response.headers.get("Accept") == "application/sdp"
    assert "Supported" in [name for name, _ in response.headers]
    assert ";tag=" in (response.headers.get("To") or "")


async def test_response_carries_received_and_rport(phone: Client) -> None:
    response = await phone.ask(request("OPTIONS"))
    via = response.headers.get("Via") or ""
    assert f"rport={phone.sock.getsockname()[1]}" in via


async def test_unknown_method_gets_501(phone: Client) -> None:
    response = await phone.ask(request("FROBNICATE"))
    assert (response.status, response.headers.get("Allow")) == (
        501,
        ALLOW,
    )


async def test_known_method_not_served_gets_405_with_allow(phone: Client) -> None:
    response = await phone.ask(request("MESSAGE", "sip:1001@voxedge.test"))
    assert response.status == 405
    assert response.headers.get("Allow") == ALLOW


@pytest.mark.parametrize(
    "uri", ["sip:elsewhere.example", "sip:9999@voxedge.test", "sip:1001@203.0.113.9"]
)
async def test_foreign_domain_or_unknown_user_gets_404(phone: Client, uri: str) -> None:
    assert (await phone.ask(request("OPTIONS", uri))).status == 404


async def test_cancel_without_invite_gets_481(phone: Client) -> None:
    assert (await phone.ask(request("CANCEL"))).status == 481


async def test_require_with_unknown_extension_gets_420(phone: Client) -> None:
    response = await phone.ask(request("OPTIONS", extra="Require: foo, bar\r\n"))
    assert (response.status, response.headers.get("Unsupported")) == (420, "foo, bar")


async def test_malformed_request_gets_400_naming_the_fault(phone: Client) -> None:
    response = await phone.ask(request("OPTIONS", cseq_method="INVITE"))
    assert (response.status, response.reason) == (400, "CSeq method mismatch")


async def test_retransmitted_request_gets_the_same_response(phone: Client) -> None:
    first = await phone.ask(request("OPTIONS", call_id="rt"))
    again = await phone.ask(request("OPTIONS", call_id="rt"))
    assert first.to_bytes() == again.to_bytes()


async def test_trunk_side_refuses_unknown_sources(service: SipService) -> None:
    client = Client(port_of(service, "udp", "trunks"))
    try:
        response = await client.ask(request("OPTIONS"))
    finally:
        client.close()
    assert (response.status, response.reason) == (403, "No trunk admits this source")
    assert service.counters["ACL_DENY"] == 1


async def test_registration_rate_limit_answers_503_with_retry_after(tmp_path: Path) -> None:
    svc = await start(tmp_path, phones_extra='max_registration_rate = "2/10s"')
    client = Client(port_of(svc, "udp"))
    try:
        statuses = []
        for i in range(3):
            response = await client.ask(request("REGISTER", call_id=f"rl{i}"))
            statuses.append(response.status)
        assert statuses == [401, 401, 503]
        assert response.headers.get("Retry-After") == "5"
        assert svc.counters["RATE_LIMITED"] == 1
    finally:
        client.close()
        await svc.stop()


async def test_call_rate_limit_counts_calls_with_credentials(tmp_path: Path) -> None:
    svc = await start(tmp_path, phones_extra='max_call_rate = "1/10s"')
    client = Client(port_of(svc, "udp"))
    invite = "sip:1001@voxedge.test"
    credentials = 'Proxy-Authorization: Digest username="1001", realm="voxedge.test"\r\n'
    try:
        challenged = await client.ask(request("INVITE", invite, call_id="cr0"))
        assert challenged.status == 407  # free: the call has not been placed yet
        statuses = []
        for i in range(2):
            response = await client.ask(
                request("INVITE", invite, call_id=f"cr{i + 1}", extra=credentials)
            )
            statuses.append(response.status)
        # The first attempt passes the limiter (its made-up credentials then fail), the
        # second is over the rate.
        assert statuses[1] == 503 and statuses[0] != 503
        assert response.reason == "Call rate exceeded"
        assert response.headers.get("Retry-After") is not None
        assert svc.counters["RATE_LIMITED"] == 1
    finally:
        client.close()
        await svc.stop()


async def test_full_ingress_queue_answers_503_with_retry_after(tmp_path: Path) -> None:
    svc = await start(tmp_path, max_queue=0)
    client = Client(port_of(svc, "udp"))
    try:
        response = await client.ask(request("OPTIONS"))
        assert (response.status, response.headers.get("Retry-After")) == (503, "5")
        assert svc.counters["OVERLOAD"] == 1
    finally:
        client.close()
        await svc.stop()


async def test_requests_to_a_tcp_registered_contact_reuse_its_connection(
    service: SipService,
) -> None:
    """RFC 5626 §5.3 / RFC 3261 §18.2.2: the edge reaches the phone over its own connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(service, "tcp"))
    try:
        writer.write(request("REGISTER", transport="TCP", call_id="tcpreg"))
        challenge = parse_message(await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2))
        assert isinstance(challenge, Response) and challenge.status == 401
        auth = authorization(challenge, "1001", "alice-secret")
        writer.write(
            request(
                "REGISTER", transport="TCP", call_id="tcpreg2", extra=f"Authorization: {auth}\r\n"
            )
        )
        ok = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
        assert ok.startswith(b"SIP/2.0 200")
        [binding] = service.location.lookup(
            "sip:1001@voxedge.test", asyncio.get_running_loop().time()
        )
        tcp_flow = binding.flow
        assert tcp_flow.transport == "tcp"
        options = request("OPTIONS", "sip:1001@127.0.0.1:5999", call_id="keep", transport="TCP")
        assert service.transports.send(tcp_flow, options)
        received = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
        assert received.startswith(b"OPTIONS sip:1001@127.0.0.1:5999 SIP/2.0")
    finally:
        writer.close()


async def test_reload_applies_domain_and_rate_and_names_what_needs_a_restart(
    tmp_path: Path,
) -> None:
    svc = await start(tmp_path)
    client = Client(port_of(svc, "udp"))
    try:
        text = CONFIG.format(data=tmp_path, phones_extra='max_registration_rate = "1/60s"')
        text = text.replace('domain = "voxedge.test"', 'domain = "example.org"')
        text = text.replace("[edge]\n", "[edge]\nt1 = 0.25\n").replace(
            'tcp = "127.0.0.1:0"',
            'tcp = "127.0.0.1:0"\ntls = "127.0.0.1:0"\n'
            'tls_cert = "c.pem"\ntls_key = "k.pem"\ntls_self_signed = true',
            1,
        )
        pending = svc.reload(parse_config(text, tmp_path))
        assert pending == ["edge.t1", "listen.phones"]
        register = request("REGISTER", "sip:example.org").replace(b"voxedge.test", b"example.org")
        challenge = await client.ask(register.replace(b"c1", b"r1"))
        assert challenge.status == 401
        assert 'realm="example.org"' in (challenge.headers.get("WWW-Authenticate") or "")
        limited = await client.ask(register.replace(b"c1", b"r2"))
        assert limited.status == 503  # the new 1/60s rate applies at once
    finally:
        client.close()
        await svc.stop()


@pytest.mark.parametrize("agent", ["friendly-scanner", "sipvicious 0.3.4", "sipcli/v1.8"])
async def test_known_scanners_are_dropped_silently(
    service: SipService, phone: Client, agent: str
) -> None:
    with pytest.raises(TimeoutError):
        await phone.ask(request("OPTIONS", extra=f"User-Agent: {agent}\r\n"), timeout=0.3)
    assert service.counters["SCANNER"] == 1
    assert (await phone.ask(request("OPTIONS", call_id="c2"))).status == 200
