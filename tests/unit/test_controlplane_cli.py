"""``voxedge-controlplane init`` / ``serve`` command lines: what they create and refuse."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import pytest
from sqlalchemy import select

from controlplane.__main__ import Address, UsageError, main, parse_address
from controlplane.ca import CertificateAuthority
from controlplane.models import AdminUser, Organisation, Role
from controlplane.passwords import verify_password
from controlplane.store import Store, sqlite_url


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("127.0.0.1:8443", Address("127.0.0.1", 8443)),
        ("[::1]:50051", Address("::1", 50051)),
        ("localhost:0", Address("localhost", 0)),
    ],
)
def test_listen_addresses_are_ip_literals_or_localhost(text: str, address: Address) -> None:
    assert parse_address("--https", text) == address


@pytest.mark.parametrize(
    ("text", "fault"),
    [
        ("example.com:8443", "must be an IP address or localhost"),
        ("127.0.0.1", 'expected "host:port"'),
        ("127.0.0.1:99999", "port must be a number from 0 to 65535"),
        ("127.0.0.1:x", "port must be a number"),
    ],
)
def test_bad_listen_addresses_are_refused_naming_the_option(text: str, fault: str) -> None:
    with pytest.raises(UsageError, match="--https: .*" + fault):
        parse_address("--https", text)


def _users(data_dir: Path) -> list[tuple[str, str, Role, str]]:
    async def read() -> list[tuple[str, str, Role, str]]:
        store = Store(sqlite_url(data_dir / "controlplane.sqlite"))
        try:
            async with store.read() as session:
                rows = await session.execute(
                    select(
                        Organisation.sip_domain,
                        AdminUser.email,
                        AdminUser.role,
                        AdminUser.password_hash,
                    ).join(AdminUser, AdminUser.org_id == Organisation.id)
                )
                return [(d, e, r, h) for d, e, r, h in rows]
        finally:
            await store.close()

    return asyncio.run(read())


def test_init_creates_the_store_the_ca_the_org_and_its_admin(tmp_path: Path) -> None:
    data = tmp_path / "cp"
    argv = ["init", "--data-dir", str(data), "--org", "acme", "--admin", "root"]
    assert main([*argv, "--admin-password", "s3cret-pass", "--domain", "acme.test"]) == 0
    [(domain, user, role, password_hash)] = _users(data)
    assert (domain, user, role) == ("acme.test", "root", Role.ADMIN)
    assert verify_password("s3cret-pass", password_hash)
    CertificateAuthority.load(data / "ca")
    assert stat.S_IMODE((data / "ca" / "ca-key.pem").stat().st_mode) == 0o600


def test_init_prints_a_generated_password_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "cp"
    assert main(["init", "--data-dir", str(data), "--org", "acme", "--admin", "root"]) == 0
    printed = capsys.readouterr().out
    password = printed.split("admin password (shown once): ")[1].split()[0]
    [(_, _, _, password_hash)] = _users(data)
    assert verify_password(password, password_hash)
    assert "voxedge.test" in printed  # the default SIP domain


def test_init_twice_for_one_org_is_refused_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["init", "--data-dir", str(tmp_path), "--org", "acme", "--admin", "root"]
    assert main([*argv, "--admin-password", "first-pass"]) == 0
    assert main([*argv, "--admin-password", "second-pass"]) == 2
    assert "--org/--domain: an organisation named 'acme'" in capsys.readouterr().err


def test_serve_without_init_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--data-dir", str(tmp_path)]) == 2
    assert "no control plane CA" in capsys.readouterr().err


def test_serve_refuses_a_host_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["init", "--data-dir", str(tmp_path), "--org", "acme", "--admin", "root"]
    assert main([*argv, "--admin-password", "first-pass"]) == 0
    assert main(["serve", "--data-dir", str(tmp_path), "--https", "cp.example.com:8443"]) == 2
    assert "--https:" in capsys.readouterr().err
