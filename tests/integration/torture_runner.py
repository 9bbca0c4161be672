"""Replay the RFC 4475/5118 torture corpus at a running edge; print what came back as JSON.

Run only inside a loopback-only network namespace (``unshare -n``): the messages carry foreign
Via hosts, and a SIP server answers to the Via. ``test_torture_edge.py`` starts it that way.
Each message goes over UDP (from a socket bound where §18.2.2 sends the answer) and over its own
TCP connection. The edge runs in this process with domain ``example.com`` so the REGISTERs of
the corpus reach the registrar.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from edge.config import parse_config  # noqa: E402
from edge.sipserver import SipService  # noqa: E402
from sip.errors import SipParseError  # noqa: E402
from sip.headers import parse_via  # noqa: E402
from sip.message import split_list  # noqa: E402
from sip.parser import parse_message  # noqa: E402

CORPUS = ROOT.parent / "shared" / "sip-torture"
UDP_WAIT = 0.4
TCP_WAIT = 3.0  # above the edge's idle timeout below, so a stuck connection shows as closed

CONFIG = """
[edge]
name = "torture"
domain = "example.com"
advertise = "127.0.0.1"
data_dir = "{data}"
tcp_idle_timeout = 1.5

[listen.phones]
udp = "127.0.0.1:0"
tcp = "127.0.0.1:0"

[[phones]]
name = "user"
type = "generic_sip"
extension = "user"
password = "secret-user"
"""


def _reply_port(data: bytes) -> int:
    """Where the edge will answer a UDP request: the top Via port, 5060 by default."""
    try:
        head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "surrogateescape")
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() in ("via", "v"):
                via = parse_via(split_list(value.strip())[0])
                return via.port or 5060
    except SipParseError:
        pass
    return 5060


def _call_id(data: bytes) -> bytes | None:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() in (b"call-id", b"i"):
            return value.strip()
    return None


def _replies(sent: bytes, datagrams: list[bytes]) -> dict[str, list[object]]:
    """Status and Via count of each reply to ``sent`` (other messages' replies filtered out)."""
    statuses: list[object] = []
    vias: list[object] = []
    call_id = _call_id(sent)
    for data in datagrams:
        if _call_id(data) != call_id:
            continue
        try:
            message = parse_message(data, datagram=True)
        except SipParseError:
            statuses.append("unparseable")
            continue
        statuses.append(getattr(message, "status", "request"))
        vias.append(len(message.headers.values("Via")))
    return {"udp": statuses, "udp_vias": vias}


async def _udp(port: int, data: bytes) -> list[bytes]:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", _reply_port(data)))
    sock.setblocking(False)
    replies: list[bytes] = []
    try:
        sock.sendto(data, ("127.0.0.1", port))
        deadline = time.monotonic() + UDP_WAIT
        while (left := deadline - time.monotonic()) > 0:
            try:
                replies.append(await asyncio.wait_for(loop.sock_recv(sock, 65536), left))
            except TimeoutError:
                break
            # After the first answer, linger only briefly for a second one.
            deadline = min(deadline, time.monotonic() + 0.1)
    finally:
        sock.close()
    return replies


async def _tcp(port: int, data: bytes) -> dict[str, object]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    received = b""
    closed = False
    deadline = time.monotonic() + TCP_WAIT
    while (left := deadline - time.monotonic()) > 0:
        try:
            chunk = await asyncio.wait_for(reader.read(65536), left)
        except TimeoutError:
            break
        if not chunk:
            closed = True
            break
        received += chunk
    writer.close()
    statuses = []
    for part in received.split(b"SIP/2.0 ")[1:]:
        code = part[:3].decode(errors="replace")
        statuses.append(int(code) if code.isdigit() else code)
    return {"statuses": statuses, "closed": closed}


async def _with_edge(transport: str, work: Callable[[int], Awaitable[None]]) -> dict[str, object]:
    """Run ``work(port)`` against a fresh edge; return what the edge kept and counted."""
    with tempfile.TemporaryDirectory() as data:
        service = SipService(parse_config(CONFIG.format(data=data), Path(data)))
        await service.start()
        port = next(b.address[1] for b in service.listeners if b.transport == transport)
        try:
            await work(port)
        finally:
            now = asyncio.get_running_loop().time()
            kept = {
                "bindings": {
                    aor: [b.contact for b in service.location.lookup(aor, now)]
                    for aor in service.location.aors()
                },
                "stats": dict(service.transports.stats),
                "counters": dict(service.counters),
            }
            await service.stop()
    return kept


async def main() -> None:
    index = json.loads((CORPUS / "index.json").read_text())
    messages = [(row["name"], (CORPUS / row["file"]).read_bytes()) for row in index]
    results: dict[str, dict[str, object]] = {name: {} for name, _ in messages}
    edges: dict[str, object] = {}
    # UDP: a fresh edge per message. Many corpus messages share a branch and sent-by, which
    # RFC 3261 §17.2.3 makes one transaction: on one edge the later ones would be absorbed as
    # retransmissions of the first (over TCP Timer J is 0, so one edge serves them all).
    for name, sent in messages:

        async def one(port: int, name: str = name, sent: bytes = sent) -> None:
            results[name].update(_replies(sent, await _udp(port, sent)))

        edges[f"udp:{name}"] = await _with_edge("udp", one)

    async def all_tcp(port: int) -> None:
        outcomes = await asyncio.gather(*(_tcp(port, sent) for _, sent in messages))
        for (name, _), outcome in zip(messages, outcomes, strict=True):
            results[name]["tcp"] = outcome

    edges["tcp"] = await _with_edge("tcp", all_tcp)
    print(json.dumps({"results": results, "edges": edges}))


if __name__ == "__main__":
    asyncio.run(main())
