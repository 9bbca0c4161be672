"""The control plane's CA (controlplane/ca.py): root, edge client certificates from CSRs, the
server certificate, identity in the SAN, verification on a fixed clock, and real mutual TLS."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import ssl
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from controlplane.ca import (
    CERT_FILE,
    KEY_FILE,
    CertificateAuthority,
    CertificateFault,
    CertificateRejected,
    CsrFault,
    CsrRejected,
    EdgeIdentity,
    edge_identity,
)

NOW = datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.UTC)
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority.create("acme", NOW)


def csr_for(key: PrivateKey, common_name: str = "whatever the edge says") -> bytes:
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .sign(key, algorithm)
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def edge_certificate(ca: CertificateAuthority, now: datetime.datetime = NOW) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM) of edge-7 in org-3, issued at `now`."""
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = ca.sign_edge_csr(csr_for(key), "edge-7", "org-3", now)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return certificate, key_pem


def extension(certificate: x509.Certificate, kind: type[x509.ExtensionType]) -> x509.Extension:
    return certificate.extensions.get_extension_for_class(kind)


def test_root_is_a_p256_ca_named_after_the_deployment(ca: CertificateAuthority) -> None:
    root = ca.certificate

    assert root.subject == root.issuer
    assert root.subject.rfc4514_string() == "CN=VoxEdge CA acme"
    assert isinstance(root.public_key(), ec.EllipticCurvePublicKey)
    assert isinstance(root.signature_hash_algorithm, hashes.SHA256)
    root.verify_directly_issued_by(root)
    constraints = extension(root, x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca
    usage = extension(root, x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign
    assert root.not_valid_after_utc - NOW >= datetime.timedelta(days=3650)


def test_save_and_load_round_trip_with_a_private_key_file(
    ca: CertificateAuthority, tmp_path: Path
) -> None:
    directory = tmp_path / "ca"
    ca.save(directory)

    loaded = CertificateAuthority.load(directory)

    assert stat.S_IMODE((directory / KEY_FILE).stat().st_mode) == 0o600
    assert loaded.certificate == ca.certificate
    assert loaded.key.private_numbers() == ca.key.private_numbers()
    certificate, _ = edge_certificate(loaded)
    assert ca.verify_edge_certificate(certificate, NOW) == ("org-3", "edge-7")


def test_load_or_create_creates_once_and_then_loads(tmp_path: Path) -> None:
    first = CertificateAuthority.load_or_create(tmp_path, "acme", NOW)
    again = CertificateAuthority.load_or_create(tmp_path, "other", NOW)

    assert again.certificate == first.certificate


def test_load_or_create_refuses_a_half_written_ca(ca: CertificateAuthority, tmp_path: Path) -> None:
    ca.save(tmp_path)
    (tmp_path / CERT_FILE).unlink()

    with pytest.raises(ValueError, match="only one"):
        CertificateAuthority.load_or_create(tmp_path, "acme", NOW)


def test_load_refuses_a_key_of_another_ca(ca: CertificateAuthority, tmp_path: Path) -> None:
    ca.save(tmp_path)
    CertificateAuthority.create("other", NOW).save(tmp_path / "other")
    (tmp_path / KEY_FILE).write_bytes((tmp_path / "other" / KEY_FILE).read_bytes())

    with pytest.raises(ValueError, match="does not match"):
        CertificateAuthority.load(tmp_path)


def test_signed_edge_certificate_verifies_and_names_org_and_edge(ca: CertificateAuthority) -> None:
    pem, _ = edge_certificate(ca)
    certificate = x509.load_pem_x509_certificate(pem)

    certificate.verify_directly_issued_by(ca.certificate)
    assert certificate.subject.rfc4514_string() == "CN=edge-7"  # not what the CSR asked for
    assert extension(certificate, x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.CLIENT_AUTH]
    )
    assert not extension(certificate, x509.BasicConstraints).value.ca
    uris = extension(certificate, x509.SubjectAlternativeName).value.get_values_for_type(
        x509.UniformResourceIdentifier
    )
    assert uris == ["urn:voxedge:org:org-3:edge:edge-7"]
    assert edge_identity(pem) == EdgeIdentity(org_id="org-3", edge_id="edge-7")
    assert edge_identity(certificate.public_bytes(serialization.Encoding.DER)) == (
        "org-3",
        "edge-7",
    )
    assert ca.verify_edge_certificate(pem, NOW) == ("org-3", "edge-7")
    assert certificate.not_valid_after_utc - NOW == datetime.timedelta(days=365)


def test_serials_are_random(ca: CertificateAuthority) -> None:
    serials = {x509.load_pem_x509_certificate(edge_certificate(ca)[0]).serial_number}
    serials.add(x509.load_pem_x509_certificate(edge_certificate(ca)[0]).serial_number)

    assert len(serials) == 2 and min(serials) > 2**64


def test_rsa_2048_csr_is_accepted(ca: CertificateAuthority) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    pem = ca.sign_edge_csr(csr_for(key), "edge-7", "org-3", NOW)

    assert ca.verify_edge_certificate(pem, NOW) == ("org-3", "edge-7")


def test_csr_with_a_bad_signature_is_refused(ca: CertificateAuthority) -> None:
    csr = x509.load_pem_x509_csr(csr_for(ec.generate_private_key(ec.SECP256R1())))
    der = bytearray(csr.public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01  # the last byte of the ECDSA signature's s
    tampered = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM)

    with pytest.raises(CsrRejected) as caught:
        ca.sign_edge_csr(tampered, "edge-7", "org-3", NOW)
    assert caught.value.fault is CsrFault.BAD_SIGNATURE
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    "make_key",
    [
        lambda: ec.generate_private_key(ec.SECP384R1()),
        lambda: rsa.generate_private_key(public_exponent=65537, key_size=1024),
        ed25519.Ed25519PrivateKey.generate,
    ],
    ids=["p384", "rsa1024", "ed25519"],
)
def test_csr_with_an_unsupported_key_is_refused(
    ca: CertificateAuthority, make_key: Callable[[], PrivateKey]
) -> None:
    with pytest.raises(CsrRejected, match="UNSUPPORTED_KEY") as caught:
        ca.sign_edge_csr(csr_for(make_key()), "edge-7", "org-3", NOW)
    assert caught.value.fault is CsrFault.UNSUPPORTED_KEY


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"garbage",
        b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
    ],
    ids=["empty", "garbage", "broken-pem"],
)
def test_garbage_is_not_a_csr(ca: CertificateAuthority, data: bytes) -> None:
    with pytest.raises(CsrRejected) as caught:
        ca.sign_edge_csr(data, "edge-7", "org-3", NOW)
    assert caught.value.fault is CsrFault.NOT_A_CSR


def test_a_certificate_is_not_a_csr(ca: CertificateAuthority) -> None:
    with pytest.raises(CsrRejected, match="NOT_A_CSR"):
        ca.sign_edge_csr(ca.certificate_pem, "edge-7", "org-3", NOW)


@pytest.mark.parametrize("bad_id", ["", "a:b", "../x", "x" * 65, "é"])
def test_ids_that_would_break_the_urn_are_refused(ca: CertificateAuthority, bad_id: str) -> None:
    csr = csr_for(ec.generate_private_key(ec.SECP256R1()))

    with pytest.raises(ValueError, match="edge_id"):
        ca.sign_edge_csr(csr, bad_id, "org-3", NOW)


def test_certificate_of_another_ca_fails_verification(ca: CertificateAuthority) -> None:
    impostor = CertificateAuthority.create("acme", NOW)  # same name, different key
    pem, _ = edge_certificate(impostor)

    with pytest.raises(CertificateRejected) as caught:
        ca.verify_edge_certificate(pem, NOW)
    assert caught.value.fault is CertificateFault.WRONG_ISSUER


def test_validity_follows_the_given_clock(ca: CertificateAuthority) -> None:
    pem, _ = edge_certificate(ca)
    after_a_year = NOW + datetime.timedelta(days=365, seconds=1)
    before_issue = NOW - datetime.timedelta(hours=1)

    assert ca.verify_edge_certificate(pem, NOW + datetime.timedelta(days=364)) == (
        "org-3",
        "edge-7",
    )
    with pytest.raises(CertificateRejected, match="EXPIRED"):
        ca.verify_edge_certificate(pem, after_a_year)
    with pytest.raises(CertificateRejected, match="NOT_YET_VALID"):
        ca.verify_edge_certificate(pem, before_issue)


def test_edge_certificate_never_outlives_the_root(ca: CertificateAuthority) -> None:
    late = ca.certificate.not_valid_after_utc - datetime.timedelta(days=30)
    pem, _ = edge_certificate(ca, now=late)

    expires = x509.load_pem_x509_certificate(pem).not_valid_after_utc
    assert expires == ca.certificate.not_valid_after_utc


def test_server_certificate_is_not_an_edge_certificate(ca: CertificateAuthority) -> None:
    server = ca.server_certificate(["127.0.0.1"], NOW)

    with pytest.raises(CertificateRejected, match="NOT_A_CLIENT_CERTIFICATE"):
        ca.verify_edge_certificate(server.certificate_pem, NOW)


def test_server_certificate_has_server_auth_and_its_hosts(ca: CertificateAuthority) -> None:
    server = ca.server_certificate(["127.0.0.1", "::1", "cp.voxedge.test"], NOW)
    certificate = x509.load_pem_x509_certificate(server.certificate_pem)

    certificate.verify_directly_issued_by(ca.certificate)
    assert ExtendedKeyUsageOID.SERVER_AUTH in extension(certificate, x509.ExtendedKeyUsage).value
    san = extension(certificate, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    assert san.get_values_for_type(x509.DNSName) == ["cp.voxedge.test"]
    key = serialization.load_pem_private_key(server.key_pem, None)
    assert key.public_key() == certificate.public_key()


@pytest.mark.parametrize(
    "uri",
    [None, "urn:example:org:org-3:edge:edge-7", "urn:voxedge:org:org-3", "https://voxedge.test"],
    ids=["no-san", "foreign-urn", "truncated", "url"],
)
def test_edge_identity_refuses_certificates_without_one(uri: str | None) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "edge-7")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW)
        .not_valid_after(NOW + datetime.timedelta(days=1))
    )
    if uri is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)]), critical=False
        )
    pem = builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)

    with pytest.raises(CertificateRejected) as caught:
        edge_identity(pem)
    assert caught.value.fault is CertificateFault.NO_EDGE_IDENTITY


def test_edge_identity_of_garbage_is_a_clear_error() -> None:
    with pytest.raises(CertificateRejected, match="NOT_A_CERTIFICATE"):
        edge_identity(b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")


def tls_contexts(
    ca: CertificateAuthority, issuer: CertificateAuthority, directory: Path, now: datetime.datetime
) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server, client) contexts: the server trusts `ca` only; the edge's cert is by `issuer`."""
    server = ca.server_certificate(["127.0.0.1"], now)
    client_cert, client_key = edge_certificate(issuer, now)
    for name, data in {
        "server.pem": server.certificate_pem,
        "server.key": server.key_pem,
        "edge.pem": client_cert,
        "edge.key": client_key,
    }.items():
        (directory / name).write_bytes(data)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.minimum_version = ssl.TLSVersion.TLSv1_2
    server_context.load_cert_chain(directory / "server.pem", directory / "server.key")
    server_context.verify_mode = ssl.CERT_REQUIRED
    server_context.load_verify_locations(cadata=ca.certificate_pem.decode())
    client_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_context.minimum_version = ssl.TLSVersion.TLSv1_2
    client_context.load_verify_locations(cadata=ca.certificate_pem.decode())
    client_context.load_cert_chain(directory / "edge.pem", directory / "edge.key")
    return server_context, client_context


async def exchange(
    ca: CertificateAuthority,
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
    now: datetime.datetime,
) -> tuple[bytes, list[EdgeIdentity]]:
    """Connect over 127.0.0.1; (what the edge read, identities the server's handler saw)."""
    seen: list[EdgeIdentity] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        seen.append(ca.verify_edge_certificate(peer, now))
        writer.write(b"paired\n")
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    listener = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_context)
    port = listener.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(
                "127.0.0.1", port, ssl=client_context, server_hostname="127.0.0.1"
            ),
            timeout=5,
        )
        try:
            assert writer.get_extra_info("ssl_object").version() in {"TLSv1.2", "TLSv1.3"}
            line = await asyncio.wait_for(reader.readline(), timeout=5)
        finally:
            writer.close()
            with contextlib.suppress(ssl.SSLError, ConnectionError):
                await writer.wait_closed()
        return line, seen
    finally:
        listener.close()
        await listener.wait_closed()


async def test_mutual_tls_handshake_shows_the_server_the_edge_identity(
    ca: CertificateAuthority, tmp_path: Path
) -> None:
    # Real certificates from the real clock: OpenSSL checks validity against its own time.
    now = datetime.datetime.now(datetime.UTC)
    server_context, client_context = tls_contexts(ca, ca, tmp_path, now)

    line, seen = await exchange(ca, server_context, client_context, now)

    assert line == b"paired\n"
    assert seen == [("org-3", "edge-7")]


async def test_mutual_tls_refuses_an_edge_certificate_of_another_ca(
    ca: CertificateAuthority, tmp_path: Path
) -> None:
    now = datetime.datetime.now(datetime.UTC)
    impostor = CertificateAuthority.create("acme", now)
    server_context, client_context = tls_contexts(ca, impostor, tmp_path, now)

    # TLS 1.3 finishes the client's side of the handshake before the server's verdict arrives,
    # so the refusal shows up on the first read (or on connect, with TLS 1.2).
    try:
        line, seen = await exchange(ca, server_context, client_context, now)
    except (ssl.SSLError, ConnectionError):
        line, seen = b"", []

    assert line == b""
    assert seen == []
