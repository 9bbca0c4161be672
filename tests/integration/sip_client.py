"""A minimal UDP phone for integration tests: REGISTER with digest, from any loopback address."""

from __future__ import annotations

import itertools
import socket

from sip.message import Response
from sip.parser import parse_message
from tests.digest_client import authorization

_branches = itertools.count(1)


def register(
    port: int,
    user: str,
    password: str,
    *,
    contact: str | None = "",
    expires: int | None = None,
    source_ip: str = "127.0.0.1",
    algorithm: str | None = None,
) -> Response:
    """REGISTER ``user`` at 127.0.0.1:``port``, answering one challenge; the final response.

    ``contact`` "" means this socket's own address, None sends no Contact (a query).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((source_ip, 0))
    sock.settimeout(3)
    local = sock.getsockname()[1]
    if contact == "":
        contact = f"sip:{user}@{source_ip}:{local}"
    lines = [f"Contact: <{contact}>"] if contact is not None else []
    if expires is not None:
        lines.append(f"Expires: {expires}")
    try:
        auth: list[str] = []
        for cseq in (1, 2):
            head = [
                "REGISTER sip:voxedge.test SIP/2.0",
                f"Via: SIP/2.0/UDP {source_ip}:{local};branch=z9hG4bK-t{next(_branches)};rport",
                f"From: <sip:{user}@voxedge.test>;tag=t{local}",
                f"To: <sip:{user}@voxedge.test>",
                f"Call-ID: {user}-{local}@{source_ip}",
                f"CSeq: {cseq} REGISTER",
                *lines,
                *auth,
                "Content-Length: 0",
            ]
            sock.sendto(("\r\n".join(head) + "\r\n\r\n").encode(), ("127.0.0.1", port))
            response = parse_message(sock.recv(65536))
            assert isinstance(response, Response)
            if response.status != 401 or auth:
                return response
            value = authorization(response, user, password, algorithm=algorithm)
            auth = [f"Authorization: {value}"]
        return response
    finally:
        sock.close()


def contacts(response: Response) -> list[str]:
    return response.headers.values("Contact")
