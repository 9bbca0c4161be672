"""The control plane's EdgeService over real gRPC and TLS on 127.0.0.1, on a SQLite store:
pairing with a one-time token, then mutual TLS with the certificate it gave."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy import delete, func, select, update

from controlplane.ca import CertificateAuthority
from controlplane.edge_service import EdgeServer, serve_edges
from controlplane.models import (
    Cdr,
    Did,
    Edge,
    EdgeStatus,
    NumberPlan,
    Organisation,
    OutboundRoute,
    Phone,
    PhoneKind,
    Site,
    Trunk,
    TrunkTransport,
)
from controlplane.passwords import digest_ha1
from controlplane.store import Store, sqlite_url
from edge.pairing import new_key_and_csr
from protos.voxedge.v1 import edge_pb2, edge_pb2_grpc

pytestmark = pytest.mark.integration

WAIT = 5.0  # bound on every network wait; a change must arrive within 1 s


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass
class Plant:
    store: Store
    ca: CertificateAuthority
    server: EdgeServer
    org: Organisation
    edge: Edge


@pytest.fixture
async def plant(tmp_path: Path) -> AsyncIterator[Plant]:
    store = Store(sqlite_url(tmp_path / "controlplane.sqlite"))
    await store.migrate()
    ca = CertificateAuthority.create("test", utcnow())
    org = await store.create_organisation("acme", "acme.voxedge.test")
    async with store.write(org.id) as session:
        site = Site(org_id=org.id, name="HQ")
        session.add(site)
        await session.flush()
        edge = Edge(org_id=org.id, site_id=site.id, name="edge-1")
        session.add(edge)
        session.add(_phone(org, "1001"))
    server = await serve_edges(
        store,
        ca,
        "127.0.0.1",
        0,
        pairing_port=0,
        server_credentials=ca.server_certificate(["127.0.0.1"], utcnow()),
    )
    try:
        yield Plant(store, ca, server, org, edge)
    finally:
        await server.stop(None)
        await store.close()


def _phone(org: Organisation, extension: str) -> Phone:
    username = f"u{extension}"
    return Phone(
        org_id=org.id,
        kind=PhoneKind.GENERIC_SIP,
        extension=extension,
        sip_username=username,
        ha1_md5=digest_ha1(username, org.sip_domain, "pw"),
        ha1_sha256=digest_ha1(username, org.sip_domain, "pw", "SHA-256"),
    )


def _csr() -> tuple[bytes, bytes]:
    """(private key PEM, CSR PEM) of a fresh EC P-256 key, as an edge makes them."""
    return new_key_and_csr()


def _pairing_channel(plant: Plant) -> grpc.aio.Channel:
    credentials = grpc.ssl_channel_credentials(root_certificates=plant.ca.certificate_pem)
    return grpc.aio.secure_channel(f"127.0.0.1:{plant.server.pairing_port}", credentials)


def _edge_channel(plant: Plant, key_pem: bytes, cert_pem: bytes) -> grpc.aio.Channel:
    credentials = grpc.ssl_channel_credentials(plant.ca.certificate_pem, key_pem, cert_pem)
    return grpc.aio.secure_channel(f"127.0.0.1:{plant.server.port}", credentials)


async def _pair(plant: Plant) -> tuple[bytes, edge_pb2.PairResponse]:
    token = await plant.store.issue_pairing_token(plant.org.id, plant.edge.id, utcnow())
    key_pem, csr_pem = _csr()
    async with _pairing_channel(plant) as channel:
        stub = edge_pb2_grpc.EdgeServiceStub(channel)
        reply = await stub.Pair(
            edge_pb2.PairRequest(token=token, csr_pem=csr_pem, software_version="0.3.0"),
            timeout=WAIT,
        )
    return key_pem, reply


async def _pair_error(plant: Plant, token: str, csr_pem: bytes) -> grpc.aio.AioRpcError:
    async with _pairing_channel(plant) as channel:
        stub = edge_pb2_grpc.EdgeServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Pair(edge_pb2.PairRequest(token=token, csr_pem=csr_pem), timeout=WAIT)
    return caught.value


async def test_pair_issues_a_client_certificate_once_per_token(plant: Plant) -> None:
    token = await plant.store.issue_pairing_token(plant.org.id, plant.edge.id, utcnow())
    _, csr_pem = _csr()
    async with _pairing_channel(plant) as channel:
        stub = edge_pb2_grpc.EdgeServiceStub(channel)
        reply = await stub.Pair(
            edge_pb2.PairRequest(token=token, csr_pem=csr_pem, software_version="0.3.0"),
            timeout=WAIT,
        )
    assert (reply.org_id, reply.edge_id) == (plant.org.id, plant.edge.id)
    assert list(reply.ca_chain_pem) == [plant.ca.certificate_pem]
    identity = plant.ca.verify_edge_certificate(reply.certificate_pem, utcnow())
    assert identity == (plant.org.id, plant.edge.id)
    edge = await plant.store.get(plant.org.id, Edge, plant.edge.id)
    assert edge.certificate_pem == reply.certificate_pem.decode()
    assert (edge.software_version, edge.status) == ("0.3.0", EdgeStatus.OFFLINE)

    again = await _pair_error(plant, token, csr_pem)
    assert again.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "ALREADY_USED" in (again.details() or "")


async def test_pair_refuses_expired_unknown_tokens_and_bad_csrs(plant: Plant) -> None:
    _, csr_pem = _csr()
    long_ago = utcnow() - datetime.timedelta(hours=2)
    expired = await plant.store.issue_pairing_token(plant.org.id, plant.edge.id, long_ago, 3600)
    error = await _pair_error(plant, expired, csr_pem)
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "EXPIRED" in (error.details() or "")

    error = await _pair_error(plant, "no-such-token", csr_pem)
    assert (error.code(), "UNKNOWN" in (error.details() or "")) == (
        grpc.StatusCode.PERMISSION_DENIED,
        True,
    )

    token = await plant.store.issue_pairing_token(plant.org.id, plant.edge.id, utcnow())
    error = await _pair_error(plant, token, b"-----BEGIN CERTIFICATE REQUEST-----\nxx")
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "NOT_A_CSR" in (error.details() or "")
    # A bad CSR does not use the token up.
    async with _pairing_channel(plant) as channel:
        stub = edge_pb2_grpc.EdgeServiceStub(channel)
        reply = await stub.Pair(edge_pb2.PairRequest(token=token, csr_pem=csr_pem), timeout=WAIT)
    assert reply.edge_id == plant.edge.id


async def test_watch_config_sends_a_snapshot_then_one_per_write(plant: Plant) -> None:
    key_pem, paired = await _pair(plant)
    async with _edge_channel(plant, key_pem, paired.certificate_pem) as channel:
        stub = edge_pb2_grpc.EdgeServiceStub(channel)
        stream = stub.WatchConfig(edge_pb2.WatchConfigRequest(from_version=0))
        try:
            first = await asyncio.wait_for(stream.read(), WAIT)
            assert first.version == await plant.store.config_version(plant.org.id) == 1
            snapshot = first.snapshot
            assert (snapshot.edge.name, snapshot.edge.domain) == ("edge-1", "acme.voxedge.test")
            [phone] = snapshot.phones
            assert (phone.extension, phone.type) == ("1001", edge_pb2.PHONE_TYPE_GENERIC_SIP)
            realm = "acme.voxedge.test"
            assert [(d.algorithm, d.ha1) for d in phone.digest] == [
                ("SHA-256", digest_ha1("u1001", realm, "pw", "SHA-256")),
                ("MD5", digest_ha1("u1001", realm, "pw")),
            ]

            async with plant.store.write(plant.org.id) as session:
                session.add(_phone(plant.org, "1002"))
            second = await asyncio.wait_for(stream.read(), 1.0)
            assert (second.version, second.WhichOneof("change")) == (2, "delta")
            assert [p.extension for p in second.delta.upsert_phones] == ["1002"]
        finally:
            stream.cancel()


async def test_watch_config_from_the_current_version_waits_for_a_change(plant: Plant) -> None:
    key_pem, paired = await _pair(plant)
    async with _edge_channel(plant, key_pem, paired.certificate_pem) as channel:
        stub = edge_pb2_grpc.EdgeServiceStub(channel)
        stream = stub.WatchConfig(edge_pb2.WatchConfigRequest(from_version=1))
        try:
            read = asyncio.ensure_future(stream.read())
            done, _ = await asyncio.wait({read}, timeout=0.2)
            assert not done  # nothing new: nothing sent
            async with plant.store.write(plant.org.id) as session:
                session.add(_phone(plant.org, "1002"))
            update = await asyncio.wait_for(read, WAIT)
            assert (update.version, update.WhichOneof("change")) == (2, "delta")
            assert [p.extension for p in update.delta.upsert_phones] == ["1002"]
        finally:
            stream.cancel()
        # The idle server side notices the edge left and ends (no handler is leaked).
        await asyncio.wait_for(_until(lambda: not plant.server.service.calls), WAIT)


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.01)


async def test_calls_without_a_client_certificate_are_unauthenticated(plant: Plant) -> None:
    async with _pairing_channel(plant) as channel:
        stub = edge_pb2_grpc.EdgeServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            stream = stub.WatchConfig(edge_pb2.WatchConfigRequest(), timeout=WAIT)
            await asyncio.wait_for(stream.read(), WAIT)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ReportStatus(edge_pb2.EdgeStatus(), timeout=WAIT)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_revoked_or_repaired_edges_certificate_is_refused(plant: Plant) -> None:
    old_key, old = await _pair(plant)
    new_key, new = await _pair(plant)  # a second pairing supersedes the first certificate
    async with _edge_channel(plant, old_key, old.certificate_pem) as channel:
        stub = edge_pb2_grpc.EdgeServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ReportStatus(edge_pb2.EdgeStatus(), timeout=WAIT)
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    await plant.store.revoke_edge(plant.org.id, plant.edge.id, utcnow())
    async with _edge_channel(plant, new_key, new.certificate_pem) as channel:
        stub = edge_pb2_grpc.EdgeServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ReportStatus(edge_pb2.EdgeStatus(), timeout=WAIT)
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "revoked" in (caught.value.details() or "")


async def test_report_status_records_the_edge_and_returns_the_latest_version(
    plant: Plant,
) -> None:
    key_pem, paired = await _pair(plant)
    async with _edge_channel(plant, key_pem, paired.certificate_pem) as channel:
        stub = edge_pb2_grpc.EdgeServiceStub(channel)
        status = edge_pb2.EdgeStatus(config_version=1, link=edge_pb2.LINK_STATE_DEGRADED)
        ack = await stub.ReportStatus(status, timeout=WAIT)
    assert ack.latest_version == 1
    edge = await plant.store.get(plant.org.id, Edge, plant.edge.id)
    assert (edge.status, edge.config_version) == (EdgeStatus.DEGRADED, 1)
    assert edge.last_seen_at is not None
    async with _edge_channel(plant, key_pem, paired.certificate_pem) as channel:
        stub = edge_pb2_grpc.EdgeServiceStub(channel)
        ack = await stub.ReportStatus(
            edge_pb2.EdgeStatus(config_version=1, link=edge_pb2.LINK_STATE_UP), timeout=WAIT
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ReportStatus(edge_pb2.EdgeStatus(config_version=2**40), timeout=WAIT)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    edge = await plant.store.get(plant.org.id, Edge, plant.edge.id)
    assert (edge.status, edge.config_version) == (EdgeStatus.ONLINE, 1)
    # Status reports are not configuration: the version did not move, no watcher was woken.
    assert await plant.store.config_version(plant.org.id) == 1


async def test_push_events_stores_a_cdr_once_and_refuses_bad_events(plant: Plant) -> None:
    key_pem, paired = await _pair(plant)
    payload = {
        "call_id": "c1",
        "from_uri": "sip:1001@acme.voxedge.test",
        "to_uri": "sip:1002@acme.voxedge.test",
        "started": 1_700_000_000.0,
        "answered": 1_700_000_002.0,
        "ended": 1_700_000_060.0,
        "end_cause": "normal",
    }
    cdr = edge_pb2.Event(
        idempotency_key=f"cdr:{plant.edge.id}:c1", kind="cdr", payload_json=json.dumps(payload)
    )
    bad = [
        edge_pb2.Event(kind="cdr", payload_json="{}"),
        edge_pb2.Event(idempotency_key="k-json", kind="cdr", payload_json="{nope"),
        edge_pb2.Event(idempotency_key="k-field", kind="cdr", payload_json='{"call_id": 5}'),
    ]
    async with _edge_channel(plant, key_pem, paired.certificate_pem) as channel:
        stub = edge_pb2_grpc.EdgeServiceStub(channel)
        first = await stub.PushEvents(edge_pb2.EventBatch(events=[cdr, *bad]), timeout=WAIT)
        again = await stub.PushEvents(edge_pb2.EventBatch(events=[cdr]), timeout=WAIT)
    assert list(first.stored_keys) == list(again.stored_keys) == [cdr.idempotency_key]
    reasons = {r.idempotency_key: r.reason for r in first.refused}
    assert reasons[""] == "idempotency_key missing"
    assert "not JSON" in reasons["k-json"]
    assert "call_id" in reasons["k-field"]
    async with plant.store.read() as session:
        rows = list(await session.scalars(select(Cdr)))
        count = await session.scalar(select(func.count()).select_from(Cdr))
    assert count == 1
    assert (rows[0].call_id, rows[0].edge_id, rows[0].disposition) == (
        "c1",
        plant.edge.id,
        "normal",
    )
    # Call records are not configuration: the version did not move.
    assert await plant.store.config_version(plant.org.id) == 1


# -- the configuration feed: deltas, resumption, revocation, shared reads ----------------------


@contextlib.asynccontextmanager
async def _watch(
    plant: Plant, key_pem: bytes, cert_pem: bytes, from_version: int = 0
) -> AsyncIterator[Any]:
    async with _edge_channel(plant, key_pem, cert_pem) as channel:
        stub = edge_pb2_grpc.EdgeServiceStub(channel)
        stream = stub.WatchConfig(edge_pb2.WatchConfigRequest(from_version=from_version))
        try:
            yield stream
        finally:
            stream.cancel()


async def _read(stream: Any, within: float = 1.0) -> edge_pb2.ConfigUpdate:
    update = await asyncio.wait_for(stream.read(), within)
    assert isinstance(update, edge_pb2.ConfigUpdate)
    return update


async def _phone_id(plant: Plant, extension: str) -> str:
    phone = await plant.store.find_phone_by_extension(plant.org.id, extension)
    assert phone is not None
    return phone.id


async def test_watch_config_sends_deltas_for_phone_add_change_delete(plant: Plant) -> None:
    key_pem, paired = await _pair(plant)
    async with _watch(plant, key_pem, paired.certificate_pem) as stream:
        first = await _read(stream, WAIT)
        assert first.WhichOneof("change") == "snapshot"

        async with plant.store.write(plant.org.id) as session:
            session.add(_phone(plant.org, "1002"))
        added = await _read(stream)
        assert (added.version, [p.extension for p in added.delta.upsert_phones]) == (2, ["1002"])
        assert not added.delta.HasField("edge") and not added.delta.delete_phones

        phone_id = await _phone_id(plant, "1001")
        async with plant.store.write(plant.org.id) as session:
            await session.execute(
                update(Phone).where(Phone.id == phone_id).values(display_name="Reception")
            )
        changed = await _read(stream)
        assert changed.version == 3
        assert [(p.id, p.name) for p in changed.delta.upsert_phones] == [(phone_id, "Reception")]

        async with plant.store.write(plant.org.id) as session:
            await session.execute(delete(Phone).where(Phone.id == phone_id))
        deleted = await _read(stream)
        assert deleted.version == 4
        assert list(deleted.delta.delete_phones) == [phone_id]
        assert not deleted.delta.upsert_phones

        # A write the edge does not see still brings it the new version (an empty delta).
        async with plant.store.write(plant.org.id) as session:
            session.add(Site(org_id=plant.org.id, name="Branch"))
        empty = await _read(stream)
        assert (empty.version, empty.delta) == (5, edge_pb2.ConfigDelta())

        # Edge settings: the delta carries them only when they change.
        async with plant.store.write(plant.org.id) as session:
            await session.execute(
                update(Edge)
                .where(Edge.id == plant.edge.id)
                .values(settings={"max_expires": 900, "media_ports": "20000-20099"})
            )
        settings = await _read(stream)
        assert settings.version == 6 and settings.delta.HasField("edge")
        assert (settings.delta.edge.max_expires, settings.delta.edge.media_ports) == (
            900,
            "20000-20099",
        )
        assert settings.delta.edge.domain == "acme.voxedge.test"


async def test_watch_config_feeds_trunks_dids_plans_and_routes(plant: Plant) -> None:
    key_pem, paired = await _pair(plant)
    async with _watch(plant, key_pem, paired.certificate_pem) as stream:
        await _read(stream, WAIT)
        async with plant.store.write(plant.org.id) as session:
            trunk = Trunk(
                org_id=plant.org.id,
                name="carrier",
                host="2001:db8::10",
                port=5080,
                transport=TrunkTransport.TCP,
                allowed_sources=["2001:db8::/64"],
                auth_username="acct",
                auth_ha1_md5="a" * 32,
                auth_ha1_sha256="b" * 64,
                codecs=["PCMA", "PCMU"],
            )
            off = Trunk(org_id=plant.org.id, name="spare", host="192.0.2.9", enabled=False)
            session.add_all([trunk, off])
            await session.flush()
            phone = await session.scalar(select(Phone).where(Phone.extension == "1001"))
            assert phone is not None
            session.add(
                Did(org_id=plant.org.id, number="+15550100", trunk_id=trunk.id, phone_id=phone.id)
            )
            session.add(
                NumberPlan(
                    org_id=plant.org.id,
                    name="national",
                    pattern=r"^0(\d{9})$",
                    replacement=r"+33\1",
                    classification="national",
                    priority=5,
                )
            )
            session.add(
                OutboundRoute(
                    org_id=plant.org.id,
                    name="default",
                    classifications=["national"],
                    trunk_ids=[trunk.id],
                    priority=7,
                )
            )
        delta = (await _read(stream)).delta
        [fed] = delta.upsert_trunks
        assert (fed.name, fed.outbound_proxy, fed.transport) == (
            "carrier",
            "[2001:db8::10]:5080",
            "tcp",
        )
        assert (list(fed.allow_cidrs), fed.digest_username, list(fed.codecs)) == (
            ["2001:db8::/64"],
            "acct",
            ["PCMA", "PCMU"],
        )
        assert [(d.algorithm, d.ha1) for d in fed.digest] == [
            ("SHA-256", "b" * 64),
            ("MD5", "a" * 32),
        ]
        assert [(d.number, d.trunk_id, d.target_extension) for d in delta.upsert_dids] == [
            ("+15550100", trunk.id, "1001")
        ]
        [plan] = delta.upsert_number_plans
        assert (plan.match, plan.replace, plan.classification, plan.priority) == (
            r"^0(\d{9})$",
            r"+33\1",
            "national",
            5,
        )
        [route] = delta.upsert_outbound_routes
        assert (list(route.classifications), list(route.trunk_ids), route.priority) == (
            ["national"],
            [trunk.id],
            7,
        )

        # Disabling the trunk deletes it from the edge.
        async with plant.store.write(plant.org.id) as session:
            await session.execute(update(Trunk).where(Trunk.id == trunk.id).values(enabled=False))
        assert list((await _read(stream)).delta.delete_trunks) == [trunk.id]


async def test_watch_config_resumes_or_starts_over_by_version(plant: Plant) -> None:
    key_pem, paired = await _pair(plant)
    for extension in ("1002", "1003"):
        async with plant.store.write(plant.org.id) as session:
            session.add(_phone(plant.org, extension))
    # From the current version: nothing until the next write, which comes as a delta.
    async with _watch(plant, key_pem, paired.certificate_pem, from_version=3) as stream:
        read = asyncio.ensure_future(stream.read())
        done, _ = await asyncio.wait({read}, timeout=0.3)
        assert not done
        async with plant.store.write(plant.org.id) as session:
            session.add(_phone(plant.org, "1004"))
        update_ = await asyncio.wait_for(read, 1.0)
        assert (update_.version, update_.WhichOneof("change")) == (4, "delta")
        assert [p.extension for p in update_.delta.upsert_phones] == ["1004"]
    # From an older version (or one we never had): a full snapshot.
    for from_version in (2, 99):
        async with _watch(plant, key_pem, paired.certificate_pem, from_version) as stream:
            first = await _read(stream, WAIT)
            assert (first.version, first.WhichOneof("change")) == (4, "snapshot")
            assert [p.extension for p in first.snapshot.phones] == ["1001", "1002", "1003", "1004"]


async def test_revoking_or_deleting_the_edge_ends_its_watch(plant: Plant) -> None:
    key_pem, paired = await _pair(plant)
    async with _watch(plant, key_pem, paired.certificate_pem) as stream:
        await _read(stream, WAIT)
        await plant.store.revoke_edge(plant.org.id, plant.edge.id, utcnow())
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _read(stream)
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "revoked" in (caught.value.details() or "")

    async with plant.store.write(plant.org.id) as session:
        other = Edge(org_id=plant.org.id, site_id=plant.edge.site_id, name="edge-2")
        session.add(other)
    plant.edge = other
    key_pem, paired = await _pair(plant)
    async with _watch(plant, key_pem, paired.certificate_pem) as stream:
        await _read(stream, WAIT)
        async with plant.store.write(plant.org.id) as session:
            await session.execute(delete(Edge).where(Edge.id == other.id))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _read(stream)
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "deleted" in (caught.value.details() or "")


async def test_pairing_again_ends_the_watch_of_the_superseded_certificate(plant: Plant) -> None:
    key_pem, paired = await _pair(plant)
    async with _watch(plant, key_pem, paired.certificate_pem) as stream:
        await _read(stream, WAIT)
        await _pair(plant)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _read(stream)
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "superseded" in (caught.value.details() or "")


async def test_twenty_watchers_of_one_org_share_one_read_per_write(plant: Plant) -> None:
    key_pem, paired = await _pair(plant)
    feed = plant.server.service.feed
    async with _edge_channel(plant, key_pem, paired.certificate_pem) as channel:
        stub = edge_pb2_grpc.EdgeServiceStub(channel)
        streams = [stub.WatchConfig(edge_pb2.WatchConfigRequest()) for _ in range(20)]
        try:
            firsts = await asyncio.wait_for(asyncio.gather(*(s.read() for s in streams)), WAIT)
            assert {(u.version, u.WhichOneof("change")) for u in firsts} == {(1, "snapshot")}
            assert feed.loads == 1
            async with plant.store.write(plant.org.id) as session:
                session.add(_phone(plant.org, "1002"))
            updates = await asyncio.wait_for(asyncio.gather(*(s.read() for s in streams)), 1.0)
            assert {u.version for u in updates} == {2}
            assert all([p.extension for p in u.delta.upsert_phones] == ["1002"] for u in updates)
            # One store read for the write, one snapshot built for the site, for all 20.
            assert feed.loads == 2
            loaded = feed.loaded(plant.org.id)
            assert loaded is not None and (loaded.version, loaded.views_built) == (2, 1)
        finally:
            for stream in streams:
                stream.cancel()
