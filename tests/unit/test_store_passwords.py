"""Secrets at rest: PBKDF2-SHA512 admin passwords, HA1-only SIP secrets."""

from __future__ import annotations

import hmac

import pytest

from controlplane import passwords
from controlplane.models import Base
from controlplane.passwords import digest_ha1, hash_password, needs_rehash, verify_password

FAST = 1_000  # the minimum work factor keeps the tests quick


def test_two_hashes_of_one_password_differ_because_each_is_salted() -> None:
    first = hash_password("correct horse", iterations=FAST)
    second = hash_password("correct horse", iterations=FAST)
    assert first != second
    assert first.split("$")[2] != second.split("$")[2]  # different salts
    assert verify_password("correct horse", first)
    assert verify_password("correct horse", second)


def test_hash_records_scheme_and_iterations_and_never_the_password() -> None:
    encoded = hash_password("s3cret-pass", iterations=FAST)
    scheme, iterations, _salt, _digest = encoded.split("$")
    assert scheme == "pbkdf2_sha512"
    assert int(iterations) == FAST
    assert "s3cret-pass" not in encoded


def test_verify_rejects_a_wrong_password() -> None:
    encoded = hash_password("right", iterations=FAST)
    assert not verify_password("wrong", encoded)
    assert not verify_password("", encoded)


def test_default_work_factor_verifies() -> None:
    encoded = hash_password("default cost")
    assert int(encoded.split("$")[1]) == passwords.DEFAULT_ITERATIONS
    assert verify_password("default cost", encoded)
    assert not needs_rehash(encoded)


@pytest.mark.parametrize(
    "encoded",
    [
        "",
        "plaintext",
        "md5$1000$c2FsdA==$aGFzaA==",
        "pbkdf2_sha512$notanumber$c2FsdA==$aGFzaA==",
        "pbkdf2_sha512$1$c2FsdA==$aGFzaA==",  # weakened below the minimum work factor
        "pbkdf2_sha512$1000$!!!$aGFzaA==",
        "pbkdf2_sha512$1000$c2FsdA==$",
    ],
)
def test_malformed_or_weakened_hash_verifies_false(encoded: str) -> None:
    assert not verify_password("anything", encoded)


def test_verify_compares_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(passwords.hmac, "compare_digest", spy)
    encoded = hash_password("pw", iterations=FAST)
    assert verify_password("pw", encoded)
    assert not verify_password("pW", encoded)
    assert len(calls) == 2


def test_needs_rehash_when_work_factor_is_below_policy() -> None:
    assert needs_rehash(hash_password("pw", iterations=FAST))
    assert needs_rehash("garbage")


def test_iterations_out_of_range_are_refused() -> None:
    with pytest.raises(ValueError):
        hash_password("pw", iterations=10)


def test_digest_ha1_matches_rfc_examples() -> None:
    # RFC 2617 §3.5 and RFC 7616 §3.9.1 worked examples.
    assert digest_ha1("Mufasa", "testrealm@host.com", "Circle Of Life") == (
        "939e7578ed9e3c518a452acee763bce9"
    )
    assert digest_ha1("Mufasa", "http-auth@example.org", "Circle of Life", "SHA-256") == (
        "7987c64c30e25f1b74be53f966b49b90f2808aa92faf9a00262392d7b4794232"
    )
    with pytest.raises(ValueError):
        digest_ha1("u", "r", "p", "SHA-512-256")


def test_no_table_has_a_column_that_could_hold_a_plaintext_secret() -> None:
    suspicious = ("password", "secret", "passwd", "token")
    allowed = {
        ("admin_users", "password_hash"),
        ("api_tokens", "token_sha256"),
        ("pairing_tokens", "token_sha256"),
    }
    for table in Base.metadata.tables.values():
        for column in table.columns:
            if any(word in column.name for word in suspicious):
                assert (table.name, column.name) in allowed, f"{table.name}.{column.name}"


def test_phone_and_trunk_secrets_are_stored_as_ha1_per_algorithm() -> None:
    phones = Base.metadata.tables["phones"].columns
    assert phones["ha1_md5"].type.length == 32
    assert phones["ha1_sha256"].type.length == 64
    trunks = Base.metadata.tables["trunks"].columns
    assert {"auth_ha1_md5", "auth_ha1_sha256"} <= set(trunks.keys())
