"""The control plane's certificate authority: the root that issues edge client certificates at
pairing and the control plane's own server certificate (DESIGN.md, Security).

Pure apart from `save`/`load`: every function that looks at time takes `now` (timezone-aware), so
tests run on fixed dates. An edge's identity travels in its certificate as one SAN URI,
`urn:voxedge:org:<org_id>:edge:<edge_id>`, which the gRPC service reads back from the peer
certificate with `edge_identity`.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Final, NamedTuple

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_VALIDITY: Final = datetime.timedelta(days=3652)  # ten years
EDGE_VALIDITY: Final = datetime.timedelta(days=365)
SERVER_VALIDITY: Final = datetime.timedelta(days=397)  # the CA/Browser Forum's maximum
BACKDATE: Final = datetime.timedelta(minutes=5)  # tolerate peers whose clock runs a bit slow
MAX_PEM_BYTES: Final = 16 * 1024  # a CSR or certificate larger than this is not one of ours
MIN_RSA_BITS: Final = 2048
MAX_RSA_BITS: Final = 8192  # bigger keys only cost CPU on every handshake
CA_CN_PREFIX: Final = "VoxEdge CA "
KEY_FILE: Final = "ca-key.pem"
CERT_FILE: Final = "ca-cert.pem"
URN_PREFIX: Final = "urn:voxedge:"

# An id becomes a CN (at most 64 characters, RFC 5280 ub-common-name) and a URN segment, so it
# may not contain ':' or anything else that would make the URN ambiguous.
_ID = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
_ID_RE: Final = re.compile(rf"\A{_ID}\Z")
_EDGE_URN_RE: Final = re.compile(rf"\Aurn:voxedge:org:({_ID}):edge:({_ID})\Z")


class CsrFault(StrEnum):
    NOT_A_CSR = "NOT_A_CSR"
    BAD_SIGNATURE = "BAD_SIGNATURE"
    UNSUPPORTED_KEY = "UNSUPPORTED_KEY"


class CertificateFault(StrEnum):
    NOT_A_CERTIFICATE = "NOT_A_CERTIFICATE"
    WRONG_ISSUER = "WRONG_ISSUER"
    NOT_YET_VALID = "NOT_YET_VALID"
    EXPIRED = "EXPIRED"
    NOT_A_CLIENT_CERTIFICATE = "NOT_A_CLIENT_CERTIFICATE"
    NO_EDGE_IDENTITY = "NO_EDGE_IDENTITY"


class CsrRejected(ValueError):
    """A certificate signing request the CA will not sign; `fault` names why."""

    def __init__(self, fault: CsrFault, detail: str) -> None:
        super().__init__(f"{fault}: {detail}")
        self.fault = fault


class CertificateRejected(ValueError):
    """A certificate that is not a valid edge certificate of this CA; `fault` names why."""

    def __init__(self, fault: CertificateFault, detail: str) -> None:
        super().__init__(f"{fault}: {detail}")
        self.fault = fault


class EdgeIdentity(NamedTuple):
    org_id: str
    edge_id: str


@dataclass(frozen=True, slots=True)
class ServerCredentials:
    """A server certificate and its private key, both PEM (the key unencrypted PKCS#8)."""

    certificate_pem: bytes
    key_pem: bytes


@dataclass(frozen=True, slots=True)
class CertificateAuthority:
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @classmethod
    def create(cls, name: str, now: datetime.datetime) -> CertificateAuthority:
        """A new self-signed ECDSA P-256 root named "VoxEdge CA <name>", valid ten years."""
        _require_aware(now)
        common_name = CA_CN_PREFIX + name.strip()
        if not name.strip() or len(common_name) > 64:
            raise ValueError(f"CA name must be 1..{64 - len(CA_CN_PREFIX)} characters: {name!r}")
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        public_key = key.public_key()
        certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + CA_VALIDITY)
            # path_length=0: this root signs end-entity certificates only, never another CA.
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(key, certificate)

    @classmethod
    def load(cls, directory: Path) -> CertificateAuthority:
        """The CA saved in `directory`; ValueError when the files do not make a CA."""
        key = serialization.load_pem_private_key((directory / KEY_FILE).read_bytes(), None)
        certificate = x509.load_pem_x509_certificate((directory / CERT_FILE).read_bytes())
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{directory / KEY_FILE}: not an EC private key")
        if key.public_key() != certificate.public_key():
            raise ValueError(f"{directory}: the CA key does not match the CA certificate")
        try:
            constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
        except x509.ExtensionNotFound:
            constraints = None
        if constraints is None or not constraints.value.ca:
            raise ValueError(f"{directory / CERT_FILE}: not a CA certificate")
        return cls(key, certificate)

    @classmethod
    def load_or_create(
        cls, directory: Path, name: str, now: datetime.datetime
    ) -> CertificateAuthority:
        """Load the CA in `directory`, or create and save one when neither file exists.

        Only one of the two files present is an error, not a cue to start over: a new root
        would silently orphan every edge certificate the old one issued.
        """
        present = [(directory / f).exists() for f in (KEY_FILE, CERT_FILE)]
        if all(present):
            return cls.load(directory)
        if any(present):
            raise ValueError(f"{directory}: holds only one of {KEY_FILE}, {CERT_FILE}")
        authority = cls.create(name, now)
        authority.save(directory)
        return authority

    def save(self, directory: Path) -> None:
        """Write the key (PKCS#8 PEM, mode 0600) and the certificate (PEM) into `directory`."""
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        key_pem = self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        # Key first: a crash in between leaves no certificate, and load_or_create says so.
        _write_atomically(directory / KEY_FILE, key_pem, 0o600)
        _write_atomically(directory / CERT_FILE, self.certificate_pem, 0o644)

    @property
    def certificate_pem(self) -> bytes:
        """The root certificate, PEM: what edges pin to verify the control plane."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def pin(self) -> str:
        """The CA's pin in join tokens: base64url (no padding) of the SHA-256 of its DER."""
        return ca_pin(self.certificate.public_bytes(serialization.Encoding.DER))

    def sign_edge_csr(
        self, csr_pem: bytes, edge_id: str, org_id: str, now: datetime.datetime
    ) -> bytes:
        """Issue a one-year client certificate (PEM) for the key in `csr_pem`.

        Only the CSR's public key is used: its subject and requested extensions are ignored, and
        the identity comes from the caller (who has redeemed the pairing token). Raises
        CsrRejected when the input is not a CSR, its signature does not verify, or its key is
        neither EC P-256 nor RSA of 2048..8192 bits.
        """
        _require_aware(now)
        _require_id("edge_id", edge_id)
        _require_id("org_id", org_id)
        csr = _parse_csr(csr_pem)
        public_key = csr.public_key()
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            if not isinstance(public_key.curve, ec.SECP256R1):
                raise CsrRejected(
                    CsrFault.UNSUPPORTED_KEY, f"EC curve {public_key.curve.name}, want secp256r1"
                )
        elif isinstance(public_key, rsa.RSAPublicKey):
            if not MIN_RSA_BITS <= public_key.key_size <= MAX_RSA_BITS:
                raise CsrRejected(
                    CsrFault.UNSUPPORTED_KEY,
                    f"RSA {public_key.key_size} bits, want {MIN_RSA_BITS}..{MAX_RSA_BITS}",
                )
        else:
            raise CsrRejected(
                CsrFault.UNSUPPORTED_KEY,
                f"{type(public_key).__name__}, want EC P-256 or RSA >= {MIN_RSA_BITS} bits",
            )
        # Proof of possession: whoever sent the CSR holds the private key.
        if not csr.is_signature_valid:
            raise CsrRejected(CsrFault.BAD_SIGNATURE, "the CSR's signature does not verify")
        certificate = (
            self._leaf_builder(edge_id, public_key, now, EDGE_VALIDITY)
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.UniformResourceIdentifier(edge_urn(org_id, edge_id))]
                ),
                critical=False,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return certificate.public_bytes(serialization.Encoding.PEM)

    def server_certificate(self, hosts: Sequence[str], now: datetime.datetime) -> ServerCredentials:
        """A fresh P-256 key and a serverAuth certificate for the control plane's listeners.

        `hosts` become subjectAltNames: IP literals as IP addresses, anything else as DNS
        names. The first host is also the CN.
        """
        _require_aware(now)
        if not hosts:
            raise ValueError("server_certificate needs at least one host name or IP address")
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = (
            self._leaf_builder(hosts[0][:64], key.public_key(), now, SERVER_VALIDITY)
            .add_extension(x509.SubjectAlternativeName(_alt_names(hosts)), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return ServerCredentials(certificate.public_bytes(serialization.Encoding.PEM), key_pem)

    def verify_edge_certificate(self, cert: bytes, now: datetime.datetime) -> EdgeIdentity:
        """The identity in `cert` (PEM or DER) when this CA issued it for an edge and it is valid
        at `now`; CertificateRejected naming the fault otherwise. Revocation is the caller's
        check: it knows which edges are revoked."""
        _require_aware(now)
        certificate = _parse_certificate(cert)
        try:
            certificate.verify_directly_issued_by(self.certificate)
        except (ValueError, TypeError, InvalidSignature) as error:
            raise CertificateRejected(
                CertificateFault.WRONG_ISSUER, f"not issued by {self.common_name}: {error}"
            ) from None
        if now < certificate.not_valid_before_utc:
            raise CertificateRejected(
                CertificateFault.NOT_YET_VALID,
                f"valid from {certificate.not_valid_before_utc.isoformat()}",
            )
        if now > certificate.not_valid_after_utc:
            raise CertificateRejected(
                CertificateFault.EXPIRED,
                f"expired at {certificate.not_valid_after_utc.isoformat()}",
            )
        try:
            usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            usages = x509.ExtendedKeyUsage([])
        if ExtendedKeyUsageOID.CLIENT_AUTH not in usages:
            raise CertificateRejected(
                CertificateFault.NOT_A_CLIENT_CERTIFICATE, "no clientAuth extended key usage"
            )
        identity = _identity_of(certificate)
        common_names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if [attribute.value for attribute in common_names] != [identity.edge_id]:
            raise CertificateRejected(
                CertificateFault.NO_EDGE_IDENTITY, "the CN does not match the edge id in the SAN"
            )
        return identity

    @property
    def common_name(self) -> str:
        names = self.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(names[0].value) if names else self.certificate.subject.rfc4514_string()

    def _leaf_builder(
        self,
        common_name: str,
        public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey,
        now: datetime.datetime,
        validity: datetime.timedelta,
    ) -> x509.CertificateBuilder:
        # A leaf never outlives its root: past that point nobody could verify it anyway.
        not_after = min(now + validity, self.certificate.not_valid_after_utc)
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                _key_usage(
                    digital_signature=True,
                    key_encipherment=isinstance(public_key, rsa.RSAPublicKey),
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )


def ca_pin(certificate_der: bytes) -> str:
    """What a join token pins: base64url (no padding) of the certificate's DER SHA-256."""
    return base64.urlsafe_b64encode(hashlib.sha256(certificate_der).digest()).decode().rstrip("=")


def edge_urn(org_id: str, edge_id: str) -> str:
    """The SAN URI that names an edge: `urn:voxedge:org:<org_id>:edge:<edge_id>`."""
    _require_id("org_id", org_id)
    _require_id("edge_id", edge_id)
    return f"{URN_PREFIX}org:{org_id}:edge:{edge_id}"


def edge_identity(cert: bytes) -> EdgeIdentity:
    """(org_id, edge_id) from the SAN URI of `cert` (PEM or DER), without checking who issued
    it: use `CertificateAuthority.verify_edge_certificate` for that, or let mTLS do it.
    CertificateRejected (a ValueError) when the certificate carries no VoxEdge edge identity."""
    return _identity_of(_parse_certificate(cert))


def _identity_of(certificate: x509.Certificate) -> EdgeIdentity:
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise CertificateRejected(
            CertificateFault.NO_EDGE_IDENTITY, "no subjectAltName extension"
        ) from None
    ours = [
        u
        for u in san.get_values_for_type(x509.UniformResourceIdentifier)
        if u.startswith(URN_PREFIX)
    ]
    if len(ours) != 1:
        raise CertificateRejected(
            CertificateFault.NO_EDGE_IDENTITY,
            f"want exactly one {URN_PREFIX} SAN URI, found {len(ours)}",
        )
    match = _EDGE_URN_RE.match(ours[0])
    if match is None:
        raise CertificateRejected(
            CertificateFault.NO_EDGE_IDENTITY, f"not an edge URN: {ours[0][:100]!r}"
        )
    return EdgeIdentity(org_id=match[1], edge_id=match[2])


def _parse_csr(data: bytes) -> x509.CertificateSigningRequest:
    if not isinstance(data, bytes) or len(data) > MAX_PEM_BYTES:
        raise CsrRejected(CsrFault.NOT_A_CSR, f"want PEM bytes of at most {MAX_PEM_BYTES}")
    try:
        return x509.load_pem_x509_csr(data)
    except ValueError:
        raise CsrRejected(CsrFault.NOT_A_CSR, "not a PEM certificate signing request") from None


def _parse_certificate(data: bytes) -> x509.Certificate:
    if not isinstance(data, bytes) or len(data) > MAX_PEM_BYTES:
        raise CertificateRejected(
            CertificateFault.NOT_A_CERTIFICATE, f"want PEM or DER bytes of at most {MAX_PEM_BYTES}"
        )
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)  # what ssl's getpeercert(True) gives
    except ValueError:
        raise CertificateRejected(
            CertificateFault.NOT_A_CERTIFICATE, "not a PEM or DER X.509 certificate"
        ) from None


def _key_usage(
    *,
    digital_signature: bool = False,
    key_encipherment: bool = False,
    key_cert_sign: bool = False,
    crl_sign: bool = False,
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _alt_names(hosts: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host.strip("[]"))))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _require_id(what: str, value: str) -> None:
    if not isinstance(value, str) or not _ID_RE.match(value):
        raise ValueError(f"{what} must match {_ID}: {value!r}")


def _require_aware(now: datetime.datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    # The same pattern as edge/certs.py; repeated here because controlplane/ may not import edge/.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "wb") as f:
            os.fchmod(f.fileno(), mode)  # the umask must not change what we asked for
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
