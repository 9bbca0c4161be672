"""The store's edge methods on SQLite and PostgreSQL: single-use pairing tokens redeemed in
the certificate's transaction, and call records stored once without a config version bump."""

from __future__ import annotations

import asyncio
import datetime

import pytest

from controlplane.models import Edge, Site
from controlplane.pairing import PairingError, PairingFailure
from controlplane.store import CdrRejected, EdgeRevokedError, PairedEdge, Store

NOW = datetime.datetime(2026, 11, 23, 12, 0, tzinfo=datetime.UTC)
CDR = {"call_id": "c1", "from_uri": "sip:a@x", "to_uri": "sip:b@x", "started": 1.7e9}


async def _edge(store: Store) -> Edge:
    org = await store.create_organisation("acme", "acme.voxedge.test")
    async with store.write(org.id) as session:
        site = Site(org_id=org.id, name="HQ")
        session.add(site)
        await session.flush()
        edge = Edge(org_id=org.id, site_id=site.id, name="edge-1")
        session.add(edge)
    return edge


async def test_concurrent_redeemers_of_one_token_pair_once(store: Store) -> None:
    edge = await _edge(store)
    token = await store.issue_pairing_token(edge.org_id, edge.id, NOW)

    async def pair(n: int) -> PairedEdge | PairingFailure:
        try:
            return await store.pair_edge(token, NOW, lambda o, e: f"cert-{n}".encode())
        except PairingError as error:
            return error.reason

    results = await asyncio.gather(*(pair(n) for n in range(4)))
    paired = [r for r in results if isinstance(r, PairedEdge)]
    assert len(paired) == 1
    assert sorted(r for r in results if not isinstance(r, PairedEdge)) == ["ALREADY_USED"] * 3
    stored = await store.get(edge.org_id, Edge, edge.id)
    assert stored.certificate_pem == paired[0].certificate_pem.decode()


async def test_token_is_refused_when_expired_unknown_or_malformed(store: Store) -> None:
    edge = await _edge(store)
    token = await store.issue_pairing_token(edge.org_id, edge.id, NOW, ttl=60)
    later = NOW + datetime.timedelta(seconds=61)
    for text, when, reason in [
        (token, later, PairingFailure.EXPIRED),
        ("x" * 43, NOW, PairingFailure.UNKNOWN),
        ("tökén", NOW, PairingFailure.MALFORMED),
    ]:
        with pytest.raises(PairingError) as caught:
            await store.pair_edge(text, when, lambda o, e: b"cert")
        assert caught.value.reason is reason


async def test_failed_certify_leaves_the_token_unused(store: Store) -> None:
    edge = await _edge(store)
    token = await store.issue_pairing_token(edge.org_id, edge.id, NOW)

    def refuse(org_id: str, edge_id: str) -> bytes:
        raise ValueError("bad csr")

    with pytest.raises(ValueError):
        await store.pair_edge(token, NOW, refuse)
    assert (await store.pair_edge(token, NOW, lambda o, e: b"cert")).edge_id == edge.id


async def test_revoked_edge_gets_no_token_and_cannot_pair(store: Store) -> None:
    edge = await _edge(store)
    token = await store.issue_pairing_token(edge.org_id, edge.id, NOW)
    await store.revoke_edge(edge.org_id, edge.id, NOW)
    with pytest.raises(EdgeRevokedError):
        await store.pair_edge(token, NOW, lambda o, e: b"cert")
    with pytest.raises(EdgeRevokedError):
        await store.issue_pairing_token(edge.org_id, edge.id, NOW)


async def test_cdr_is_stored_once_per_key_without_a_version_bump(store: Store) -> None:
    edge = await _edge(store)
    version = await store.config_version(edge.org_id)
    assert await store.store_cdr(edge.org_id, edge.id, "cdr:e:c1", CDR) is True
    assert await store.store_cdr(edge.org_id, edge.id, "cdr:e:c1", CDR) is False
    with pytest.raises(CdrRejected, match="started"):
        await store.store_cdr(edge.org_id, edge.id, "cdr:e:c2", {**CDR, "started": "x"})
    assert await store.config_version(edge.org_id) == version
