"""edge.pairing's trust on first use: join tokens, CA pins, the CA picked from a chain."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from controlplane.ca import CertificateAuthority
from edge.pairing import TrustError, pin_of, pinned_ca, split_join_token, trusted_ca

NOW = datetime.datetime(2026, 11, 23, tzinfo=datetime.UTC)


def der(pem: bytes) -> bytes:
    return x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority.create("test", NOW)


@pytest.fixture(scope="module")
def chain(ca: CertificateAuthority) -> list[bytes]:
    """What the pairing port sends: its certificate, then the CA."""
    server = ca.server_certificate(["127.0.0.1"], NOW)
    return [der(server.certificate_pem), der(ca.certificate_pem)]


def test_a_join_token_is_the_secret_and_the_pin() -> None:
    assert split_join_token("vxp_abc.PIN-x_y") == ("vxp_abc", "PIN-x_y")
    assert split_join_token("vxp_abc") == ("vxp_abc", None)


def test_the_edge_and_the_control_plane_compute_one_pin(ca: CertificateAuthority) -> None:
    assert pin_of(ca.certificate) == ca.pin
    assert len(ca.pin) == 43 and "=" not in ca.pin


def test_the_ca_that_hashes_to_the_pin_is_taken_from_the_chain(
    ca: CertificateAuthority, chain: list[bytes]
) -> None:
    assert pinned_ca(chain, ca.pin) == ca.certificate_pem


def test_a_chain_without_the_pinned_ca_is_refused(chain: list[bytes]) -> None:
    other = CertificateAuthority.create("other", NOW)
    with pytest.raises(TrustError, match="matches the join token's pin"):
        pinned_ca(chain, other.pin)
    with pytest.raises(TrustError, match="no certificate"):
        pinned_ca([], other.pin)


def test_a_pinned_leaf_is_not_a_ca(chain: list[bytes]) -> None:
    leaf = x509.load_der_x509_certificate(chain[0])
    with pytest.raises(TrustError, match="not a CA"):
        pinned_ca(chain, pin_of(leaf))


def test_a_pinned_ca_that_did_not_issue_the_server_certificate_is_refused(
    chain: list[bytes],
) -> None:
    """An attacker's server sends its own leaf plus the real CA (public): the pin matches,
    the signature does not."""
    real = CertificateAuthority.create("real", NOW)
    rogue_leaf = chain[0]  # issued by the fixture's CA, not by `real`
    with pytest.raises(TrustError, match="did not issue"):
        pinned_ca([rogue_leaf, der(real.certificate_pem)], real.pin)


def test_a_ca_file_must_match_the_pin(ca: CertificateAuthority) -> None:
    assert trusted_ca("127.0.0.1", 1, ca.pin, ca.certificate_pem) == ca.certificate_pem
    assert trusted_ca("127.0.0.1", 1, None, ca.certificate_pem) == ca.certificate_pem
    other = CertificateAuthority.create("other", NOW)
    with pytest.raises(TrustError, match="does not match"):
        trusted_ca("127.0.0.1", 1, other.pin, ca.certificate_pem)


def test_without_pin_or_ca_file_nothing_is_trusted() -> None:
    with pytest.raises(TrustError, match="no CA pin"):
        trusted_ca("127.0.0.1", 1, None, None)
