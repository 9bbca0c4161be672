"""One-time pairing tokens (controlplane/pairing.py), on a fixed clock."""

from __future__ import annotations

import dataclasses
import datetime
import hashlib

import pytest

from controlplane.pairing import (
    PairingError,
    PairingFailure,
    TokenRecord,
    hash_token,
    issue_token,
    redeem,
)

NOW = datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.UTC)


def issued(ttl: float = 3600) -> tuple[str, dict[str, TokenRecord]]:
    token, record = issue_token("edge-1", "org-1", NOW, ttl=ttl)
    return token, {record.token_hash: record}


def refusal(token: str, records: dict[str, TokenRecord], now: datetime.datetime) -> PairingFailure:
    with pytest.raises(PairingError) as caught:
        redeem(token, records, now)
    return caught.value.reason


def test_issued_token_is_32_random_urlsafe_bytes_and_only_its_hash_is_stored() -> None:
    token, record = issue_token("edge-1", "org-1", NOW)
    other, _ = issue_token("edge-1", "org-1", NOW)

    assert len(token) == 47 and token.startswith("vxp_") and token != other
    assert record.token_hash == hashlib.sha256(token.encode()).hexdigest() == hash_token(token)
    assert record.expires_at == NOW + datetime.timedelta(hours=1)
    assert record.used_at is None
    assert all(token not in str(value) for value in dataclasses.astuple(record))
    assert token not in repr(record)


def test_redeem_returns_the_record_and_marks_it_used() -> None:
    token, records = issued()

    record = redeem(token, records, NOW + datetime.timedelta(minutes=59))

    assert (record.edge_id, record.org_id) == ("edge-1", "org-1")
    assert record.used_at == NOW + datetime.timedelta(minutes=59)


def test_token_is_single_use() -> None:
    token, records = issued()
    redeem(token, records, NOW)

    assert refusal(token, records, NOW) is PairingFailure.ALREADY_USED


def test_expired_token_is_refused_and_stays_unused() -> None:
    token, records = issued(ttl=60)

    assert refusal(token, records, NOW + datetime.timedelta(seconds=60)) is PairingFailure.EXPIRED
    assert next(iter(records.values())).used_at is None


def test_unknown_token_is_refused() -> None:
    _, records = issued()
    stranger, _ = issue_token("edge-2", "org-1", NOW)

    assert refusal(stranger, records, NOW) is PairingFailure.UNKNOWN


def test_lookup_may_be_a_store_query() -> None:
    token, records = issued()
    queries: list[str] = []

    def query(token_hash: str) -> TokenRecord | None:
        queries.append(token_hash)
        return records.get(token_hash)

    assert redeem(token, query, NOW).edge_id == "edge-1"
    assert queries == [hash_token(token)]


def test_lookup_returning_a_different_hash_is_unknown() -> None:
    token, records = issued()
    wrong = next(iter(records.values()))

    with pytest.raises(PairingError) as caught:
        redeem(token, lambda _: dataclasses.replace(wrong, token_hash="0" * 64), NOW)
    assert caught.value.reason is PairingFailure.UNKNOWN


@pytest.mark.parametrize("token", ["", "x" * 129, "has space", "ünïcode", "a/b+c="])
def test_malformed_token_is_refused_before_lookup(token: str) -> None:
    def lookup(_: str) -> TokenRecord | None:
        raise AssertionError("looked up a malformed token")

    with pytest.raises(PairingError) as caught:
        redeem(token, lookup, NOW)
    assert caught.value.reason is PairingFailure.MALFORMED


@pytest.mark.parametrize("ttl", [0, -1, 8 * 24 * 3600])
def test_issue_refuses_a_silly_ttl(ttl: float) -> None:
    with pytest.raises(ValueError, match="ttl"):
        issue_token("edge-1", "org-1", NOW, ttl=ttl)


def test_naive_clock_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        issue_token("edge-1", "org-1", datetime.datetime(2026, 3, 1))
