"""First-run self-signed TLS material and the server TLS context (edge/certs.py)."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from edge.certs import ensure_self_signed, server_ssl_context

HOSTS = ["127.0.0.1", "::1", "localhost", "edge-1.voxedge.test"]


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "tls" / "cert.pem", tmp_path / "tls" / "key.pem"
    ensure_self_signed(cert, key, "edge-1", HOSTS)
    return cert, key


def load(cert: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(cert.read_bytes())


def test_generates_a_self_signed_p256_certificate(pair: tuple[Path, Path]) -> None:
    certificate = load(pair[0])

    public_key = certificate.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    assert isinstance(public_key.curve, ec.SECP256R1)
    assert certificate.subject == certificate.issuer
    assert certificate.subject.rfc4514_string() == "CN=edge-1"
    public_key.verify(
        certificate.signature,
        certificate.tbs_certificate_bytes,
        ec.ECDSA(hashes.SHA256()),
    )


def test_certificate_is_valid_for_825_days_from_now(pair: tuple[Path, Path]) -> None:
    certificate = load(pair[0])
    now = datetime.datetime.now(datetime.UTC)

    assert certificate.not_valid_before_utc <= now
    lifetime = certificate.not_valid_after_utc - now
    assert datetime.timedelta(days=824) < lifetime <= datetime.timedelta(days=825)


def test_hosts_become_ip_and_dns_subject_alt_names(pair: tuple[Path, Path]) -> None:
    san = load(pair[0]).extensions.get_extension_for_class(x509.SubjectAlternativeName).value

    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    assert san.get_values_for_type(x509.DNSName) == ["localhost", "edge-1.voxedge.test"]


def test_common_name_is_the_only_san_when_no_hosts_given(tmp_path: Path) -> None:
    ensure_self_signed(tmp_path / "c.pem", tmp_path / "k.pem", "edge-1.voxedge.test", [])

    san = load(tmp_path / "c.pem").extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.value.get_values_for_type(x509.DNSName) == ["edge-1.voxedge.test"]


def test_key_file_is_readable_by_owner_only(pair: tuple[Path, Path]) -> None:
    assert stat.S_IMODE(pair[1].stat().st_mode) == 0o600


def test_existing_files_are_left_untouched(pair: tuple[Path, Path]) -> None:
    cert, key = pair
    before = [(p.read_bytes(), p.stat().st_mtime_ns) for p in pair]

    ensure_self_signed(cert, key, "other", ["10.0.0.1"])

    assert [(p.read_bytes(), p.stat().st_mtime_ns) for p in pair] == before


def test_missing_half_of_the_pair_regenerates_both(pair: tuple[Path, Path]) -> None:
    cert, key = pair
    old_key = key.read_bytes()
    cert.unlink()

    ensure_self_signed(cert, key, "edge-1", HOSTS)

    assert cert.exists()
    assert key.read_bytes() != old_key
    server_ssl_context(cert, key)  # the new certificate matches the new key


def test_no_temporary_files_are_left_behind(pair: tuple[Path, Path]) -> None:
    assert sorted(p.name for p in pair[0].parent.iterdir()) == ["cert.pem", "key.pem"]


def test_server_context_requires_tls_1_2_or_later(pair: tuple[Path, Path]) -> None:
    context = server_ssl_context(*pair)

    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


@pytest.mark.parametrize("server_name", ["127.0.0.1", "localhost"])
def test_client_trusting_the_certificate_completes_a_handshake(
    pair: tuple[Path, Path], server_name: str
) -> None:
    client = ssl.create_default_context(cafile=pair[0])

    version = handshake(server_ssl_context(*pair), client, server_name)

    assert version in {"TLSv1.2", "TLSv1.3"}


def test_tls_1_2_client_is_accepted(pair: tuple[Path, Path]) -> None:
    client = ssl.create_default_context(cafile=pair[0])
    client.maximum_version = ssl.TLSVersion.TLSv1_2

    assert handshake(server_ssl_context(*pair), client, "localhost") == "TLSv1.2"


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_server_refuses_a_tls_1_1_client_hello(pair: tuple[Path, Path]) -> None:
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.load_verify_locations(cafile=pair[0])
    client_ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let the client offer TLS 1.1 at all
    client_ctx.minimum_version = client_ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_ctx.wrap_bio(to_client, to_server, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        client.do_handshake()  # the TLS 1.1 ClientHello is now in to_server
    server = server_ssl_context(*pair).wrap_bio(to_server, to_client, server_side=True)

    with pytest.raises(ssl.SSLError, match="UNSUPPORTED_PROTOCOL"):
        server.do_handshake()


def handshake(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, server_name: str) -> str:
    """Run a TLS handshake over memory BIOs; return the negotiated protocol version."""
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_ctx.wrap_bio(to_client, to_server, server_hostname=server_name)
    server = server_ctx.wrap_bio(to_server, to_client, server_side=True)
    done = {id(client): False, id(server): False}
    for _ in range(10):
        for end in (client, server):
            if not done[id(end)]:
                try:
                    end.do_handshake()
                    done[id(end)] = True
                except ssl.SSLWantReadError:
                    pass
        if all(done.values()):
            version = client.version()
            assert version is not None
            return version
    raise AssertionError("handshake did not finish")
