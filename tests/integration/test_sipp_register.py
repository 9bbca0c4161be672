"""SIPp (Debian sip-tester) registers 1,000 phones with digest auth against a running edge.

SIPp 3.6 computes MD5 digests only and aborts on a SHA-256 challenge, so these phones are
configured ``digest_algorithms = ["MD5"]`` (the SHA-256 path is proven by the unit tests and by
``test_edge_service.py``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.sipp.users import phone_users, write_sipp_csv
from tests.integration.edgeproc import EdgeProcess
from tests.integration.sip_client import contacts, register
from tests.integration.sipp import SippResult, run_sipp, sipp_path

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(sipp_path() is None, reason="SIPp is installed by `make test`"),
]

SCENARIOS = Path(__file__).resolve().parents[2] / "benchmarks" / "sipp"
USERS = phone_users(1000)
KEYS = {"domain": "voxedge.test", "expires": "3600"}


def edge_for(tmp_path: Path, edge_extra: str = "") -> EdgeProcess:
    return EdgeProcess(
        tmp_path / "edge",
        [(u.extension, u.password) for u in USERS],
        phone_extra='digest_algorithms = ["MD5"]\n',
        edge_extra=edge_extra,
    )


@pytest.fixture
def users_csv(tmp_path: Path) -> Path:
    return write_sipp_csv(tmp_path / "users.csv", USERS)


@pytest.fixture
def edge(tmp_path: Path) -> Iterator[EdgeProcess]:
    with edge_for(tmp_path, "min_expires = 2\n") as proc:
        yield proc


def sipp(
    edge: EdgeProcess,
    scenario: str,
    csv: Path,
    *,
    transport: str = "u1",
    calls: int = len(USERS),
    rate: float = 500,
    expires: int = 3600,
    local_port: int | None = None,
) -> SippResult:
    return run_sipp(
        SCENARIOS / scenario,
        f"127.0.0.1:{edge.port('udp' if transport.startswith('u') else 'tcp')}",
        transport=transport,
        calls=calls,
        rate=rate,
        csv=csv,
        timeout=60,
        keys={**KEYS, "expires": str(expires)},
        extra_args=["-auth_uri", "voxedge.test"],
        local_port=local_port,
        limit=200,
    )


@pytest.mark.parametrize("transport", ["u1", "t1"])
def test_1000_phones_register_with_digest_and_unregister(
    edge: EdgeProcess, users_csv: Path, transport: str
) -> None:
    registered = sipp(edge, "register_auth.xml", users_csv, transport=transport)
    assert (registered.exit_code, registered.successful, registered.failed) == (0, 1000, 0), (
        registered.errors
    )
    assert registered.final_statuses == {200: 1000}
    first = USERS[0]
    query = register(edge.port("udp"), first.extension, first.password, contact=None)
    [binding] = contacts(query)
    uri, _, expires = binding.partition(">;expires=")
    assert uri.lower() == (
        f"<sip:{first.extension}@127.0.0.1:{registered.local_port};transport="
        f"{'udp' if transport == 'u1' else 'tcp'}"
    )
    assert 3500 < int(expires) <= 3600

    # Unregister from the same address, so the Contact matches the binding.
    removed = sipp(
        edge,
        "unregister_auth.xml",
        users_csv,
        transport=transport,
        local_port=registered.local_port,
    )
    assert (removed.exit_code, removed.successful, removed.failed) == (0, 1000, 0), removed.errors
    query = register(edge.port("udp"), first.extension, first.password, contact=None)
    assert contacts(query) == []


def test_wrong_password_gets_refused_and_binds_nothing(tmp_path: Path, users_csv: Path) -> None:
    with edge_for(tmp_path) as edge:
        refused = sipp(edge, "register_wrong_password.xml", users_csv, calls=200, rate=200)
        assert (refused.exit_code, refused.successful, refused.failed) == (0, 200, 0), (
            refused.errors
        )
        assert set(refused.final_statuses) <= {401, 403}
        assert 403 in refused.final_statuses
        # 127.0.0.1 is now throttled; look from another loopback address.
        first = USERS[0]
        query = register(
            edge.port("udp"), first.extension, first.password, contact=None, source_ip="127.0.0.2"
        )
        assert (query.status, contacts(query)) == (200, [])
        assert "auth throttle: source 127.0.0.1 blocked" in edge.log()


def test_registrations_expire_and_phones_register_again(edge: EdgeProcess, users_csv: Path) -> None:
    first = USERS[0]

    def bound() -> int:
        query = register(edge.port("udp"), first.extension, first.password, contact=None)
        return len(contacts(query))

    short = sipp(edge, "register_auth.xml", users_csv, calls=100, expires=2)
    assert (short.successful, short.failed) == (100, 0), short.errors
    assert bound() == 1
    # The edge drops the bindings on its own timer 2 s after they were made.
    deadline = time.monotonic() + 6
    while bound() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert bound() == 0
    again = sipp(edge, "register_auth.xml", users_csv, calls=100)
    assert (again.successful, again.failed) == (100, 0), again.errors
    assert bound() == 1
