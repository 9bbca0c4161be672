"""Pairing the edge with the control plane, and the credentials it keeps afterwards.

First start: the edge makes an ECDSA P-256 key (it never leaves the edge), sends a CSR with the
single-use pairing token to the control plane's **pairing port** (server TLS only), and stores
in its data dir:

- ``edge.key``: the private key, PKCS#8 PEM, mode 0600;
- ``edge.crt``: the client certificate the control plane's CA issued;
- ``controlplane-ca.pem``: the CA chain it returned, the only root trusted from then on.

Trust on the first start comes from one of two places. A **join token** as the admin API issues
it, ``<secret>.<pin>``, pins the control plane's CA: the pairing port sends the CA after its
own certificate, and the edge takes it only if its DER hashes (SHA-256, base64url) to the pin
and it issued the server's certificate (kubeadm's discovery-token CA hash, in one string). Or
``--controlplane-ca`` names the CA file (then a pin, if any, must match it too). The secret
alone goes to the control plane.

Each file is written atomically (temporary file, fsync, rename, fsync of the folder); the
certificate is written last, so its presence means "paired". Later starts reuse the files and
every RPC runs over mutual TLS. Keys and tokens are never logged.
"""

from __future__ import annotations

import _ssl
import base64
import contextlib
import hashlib
import hmac
import logging
import os
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import grpc
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from protos.voxedge.v1 import edge_pb2, edge_pb2_grpc

log = logging.getLogger("voxedge.pairing")

KEY_FILE: Final = "edge.key"
CERT_FILE: Final = "edge.crt"
CA_FILE: Final = "controlplane-ca.pem"
SOFTWARE_VERSION: Final = "voxedge-edge 0.3"
PAIR_TIMEOUT: Final = 10.0
_REFUSED: Final = (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.INVALID_ARGUMENT)


class PairingRefused(Exception):
    """The control plane refused to pair (bad/used/expired token, bad CSR, revoked edge)."""


class TrustError(Exception):
    """The control plane's CA cannot be trusted: no pin and no CA file, or no match."""


def split_join_token(token: str) -> tuple[str, str | None]:
    """(the pairing secret, the CA pin or None) of ``<secret>.<pin>`` or a bare secret."""
    secret, dot, pin = token.partition(".")
    return secret, (pin if dot else None)


def pin_of(certificate: x509.Certificate) -> str:
    digest = hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def pinned_ca(chain_der: list[bytes], pin: str) -> bytes:
    """The PEM of the CA in a server's certificate chain (leaf first) that hashes to ``pin``
    and issued the leaf; TrustError naming what did not match."""
    certificates = [x509.load_der_x509_certificate(der) for der in chain_der]
    if not certificates:
        raise TrustError("the control plane sent no certificate")
    matching = [c for c in certificates if hmac.compare_digest(pin_of(c), pin)]
    if not matching:
        raise TrustError("no certificate the control plane sent matches the join token's pin")
    ca = matching[0]
    try:
        constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise TrustError("the pinned certificate is not a CA")
    try:
        certificates[0].verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature) as error:
        raise TrustError(f"the pinned CA did not issue the server's certificate: {error}") from None
    return ca.public_bytes(serialization.Encoding.PEM)


def server_chain(host: str, port: int, timeout: float = PAIR_TIMEOUT) -> list[bytes]:
    """The certificate chain (DER, as sent) the TLS server at ``host:port`` presents, read
    without verifying it: only ``pinned_ca`` decides what is trusted. Blocking."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["h2"])  # gRPC's server refuses a handshake without it
    with (
        socket.create_connection((host, port), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        # Public as SSLSocket.get_unverified_chain from Python 3.13; the same object below.
        reader = getattr(tls, "get_unverified_chain", None)
        if reader is None:
            reader = tls._sslobj.get_unverified_chain  # type: ignore[attr-defined]
        return [certificate.public_bytes(_ssl.ENCODING_DER) for certificate in reader() or []]


def trusted_ca(host: str, port: int, pin: str | None, ca_file_pem: bytes | None) -> bytes:
    """The CA PEM to verify the pairing port with (blocking): the CA file, checked against the
    pin when there is one, or the CA the server presents that matches the pin."""
    if ca_file_pem is not None:
        if pin is not None:
            ca = x509.load_pem_x509_certificate(ca_file_pem)
            if not hmac.compare_digest(pin_of(ca), pin):
                raise TrustError("--controlplane-ca does not match the join token's pin")
        return ca_file_pem
    if pin is None:
        raise TrustError(
            "the token carries no CA pin: give the join token the admin API issued, or "
            "--controlplane-ca"
        )
    return pinned_ca(server_chain(host, port), pin)


@dataclass(frozen=True, slots=True)
class EdgeCredentials:
    key_pem: bytes
    certificate_pem: bytes
    ca_pem: bytes

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """Mutual TLS: our key and certificate, the control plane's CA as the only root."""
        return grpc.ssl_channel_credentials(self.ca_pem, self.key_pem, self.certificate_pem)


def load_credentials(data_dir: Path) -> EdgeCredentials | None:
    """The stored credentials, or None when the edge has not paired (no certificate yet)."""
    paths = [data_dir / name for name in (KEY_FILE, CERT_FILE, CA_FILE)]
    if not all(path.is_file() for path in paths):
        return None
    key, cert, ca = (path.read_bytes() for path in paths)
    return EdgeCredentials(key, cert, ca)


def new_key_and_csr() -> tuple[bytes, bytes]:
    """(PKCS#8 PEM of a new P-256 key, PEM CSR signed with it). The CA ignores the subject."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "voxedge-edge")]))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return key_pem, csr.public_bytes(serialization.Encoding.PEM)


def write_atomically(path: Path, data: bytes, mode: int) -> None:
    """``data`` at ``path`` with ``mode``, all or nothing, durable on return."""
    temporary = path.with_name(f".{path.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)  # umask may have narrowed it; never widen past ``mode``
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


async def pair(
    target: str, ca_pem: bytes, token: str, data_dir: Path, *, timeout: float = PAIR_TIMEOUT
) -> tuple[EdgeCredentials, edge_pb2.PairResponse]:
    """Pair at ``target`` (the pairing port), store and return the credentials.

    ``PairingRefused`` with the server's message for a refusal; ``grpc.aio.AioRpcError`` for
    anything else (unreachable: the caller retries)."""
    key_pem, csr_pem = new_key_and_csr()
    credentials = grpc.ssl_channel_credentials(root_certificates=ca_pem)
    async with grpc.aio.secure_channel(target, credentials) as channel:
        stub = edge_pb2_grpc.EdgeServiceStub(channel)  # type: ignore[no-untyped-call]
        request = edge_pb2.PairRequest(
            token=token, csr_pem=csr_pem, software_version=SOFTWARE_VERSION
        )
        try:
            reply = await stub.Pair(request, timeout=timeout)
        except grpc.aio.AioRpcError as error:
            if error.code() in _REFUSED:
                raise PairingRefused(error.details() or error.code().name) from None
            raise
    chain = b"".join(bytes(pem) for pem in reply.ca_chain_pem) or ca_pem
    certificate = bytes(reply.certificate_pem)
    data_dir.mkdir(parents=True, exist_ok=True)
    write_atomically(data_dir / KEY_FILE, key_pem, 0o600)
    write_atomically(data_dir / CA_FILE, chain, 0o644)
    write_atomically(data_dir / CERT_FILE, certificate, 0o644)  # last: "paired"
    log.info("paired: org=%s edge=%s", reply.org_id, reply.edge_id)
    return EdgeCredentials(key_pem, certificate, chain), reply
