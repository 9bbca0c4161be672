"""A real SIP user agent (Debian's baresip) registers to a running edge over UDP, TCP and TLS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.baresip import Baresip, baresip_path
from tests.integration.edgeproc import EdgeProcess

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(baresip_path() is None, reason="baresip is installed by `make test`"),
]


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EdgeProcess]:
    proc = EdgeProcess(
        tmp_path_factory.mktemp("edge"),
        [("1001", "alice-secret"), ("1002", "bob-secret")],
        # baresip 1.0 (libre 1.1) gives up on a 401 that carries any SHA-256 challenge, even
        # beside an MD5 one; phones like it are configured MD5-only.
        phone_extra='digest_algorithms = ["MD5"]\n',
        tls=True,
    )
    with proc:
        yield proc


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
def test_baresip_registers_over_each_transport(
    edge: EdgeProcess, tmp_path: Path, transport: str
) -> None:
    ua = Baresip(
        tmp_path,
        user="1001",
        password="alice-secret",
        domain="voxedge.test",
        registrar=f"127.0.0.1:{edge.port(transport)}",
        transport=transport,  # type: ignore[arg-type]
        ca_file=edge.cert if transport == "tls" else None,
    )
    with ua:
        assert ua.wait_registered(timeout=10), ua.output
        assert "200 OK (VoxEdge)" in ua.output
        assert ua.dns_queries() == 0


def test_baresip_with_wrong_password_is_refused(edge: EdgeProcess, tmp_path: Path) -> None:
    ua = Baresip(
        tmp_path,
        user="1002",
        password="not-bobs",
        domain="voxedge.test",
        registrar=f"127.0.0.1:{edge.port('udp')}",
        transport="udp",
    )
    with ua:
        assert ua.wait_register_failed(timeout=10) == "403 Authentication failed", ua.output
        assert not ua.wait_registered(timeout=0.5)
