"""Two control-plane processes on one PostgreSQL both feed edges (LISTEN/NOTIFY).

This process serves the EdgeService on store A; a second OS process
(tests/integration/feed_replica.py, the venv's python) serves another on the same database.
An edge paired through the first and watching the second gets a write made through the
first's store within 1 s, and its stream ends when the first revokes it. The second process
is stopped by its PID; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from controlplane.ca import CertificateAuthority
from controlplane.edge_service import EdgeServer, serve_edges
from controlplane.models import Edge, Organisation, Site
from controlplane.store import Store
from protos.voxedge.v1 import edge_pb2, edge_pb2_grpc
from tests.integration.test_edge_service_grpc import _csr, _phone

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
WAIT = 5.0
STARTUP = 30.0  # the replica imports grpc, SQLAlchemy, alembic... on a cold cache


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass
class Replicas:
    store: Store
    ca: CertificateAuthority
    first: EdgeServer
    second_port: int
    second_pid: int
    org: Organisation
    edge: Edge


@pytest.fixture
async def replicas(pg_database: str, tmp_path: Path) -> AsyncIterator[Replicas]:
    store = Store(pg_database)
    await store.migrate()
    ca = CertificateAuthority.create("test", utcnow())
    ca.save(tmp_path / "ca")
    org = await store.create_organisation("acme", "acme.voxedge.test")
    async with store.write(org.id) as session:
        site = Site(org_id=org.id, name="HQ")
        session.add(site)
        await session.flush()
        edge = Edge(org_id=org.id, site_id=site.id, name="edge-1")
        session.add(edge)
        session.add(_phone(org, "1001"))
    first = await serve_edges(
        store,
        ca,
        "127.0.0.1",
        0,
        pairing_port=0,
        server_credentials=ca.server_certificate(["127.0.0.1"], utcnow()),
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.integration.feed_replica",
        pg_database,
        str(tmp_path / "ca"),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), STARTUP)
        ready = json.loads(line)
        assert ready["pid"] == process.pid
        yield Replicas(store, ca, first, ready["port"], process.pid, org, edge)
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), WAIT)
        except TimeoutError:
            process.kill()
            await asyncio.wait_for(process.wait(), WAIT)
        await first.stop(None)
        await store.close()


async def _pair(replicas: Replicas) -> tuple[bytes, bytes]:
    """(key PEM, certificate PEM) of the edge, paired through the first replica."""
    token = await replicas.store.issue_pairing_token(replicas.org.id, replicas.edge.id, utcnow())
    key_pem, csr_pem = _csr()
    credentials = grpc.ssl_channel_credentials(root_certificates=replicas.ca.certificate_pem)
    target = f"127.0.0.1:{replicas.first.pairing_port}"
    async with grpc.aio.secure_channel(target, credentials) as channel:
        stub = edge_pb2_grpc.EdgeServiceStub(channel)
        reply = await stub.Pair(edge_pb2.PairRequest(token=token, csr_pem=csr_pem), timeout=WAIT)
    return key_pem, bytes(reply.certificate_pem)


async def test_an_edge_on_the_second_replica_gets_the_first_replicas_writes(
    replicas: Replicas,
) -> None:
    key_pem, cert_pem = await _pair(replicas)
    credentials = grpc.ssl_channel_credentials(replicas.ca.certificate_pem, key_pem, cert_pem)
    target = f"127.0.0.1:{replicas.second_port}"
    async with grpc.aio.secure_channel(target, credentials) as channel:
        stub = edge_pb2_grpc.EdgeServiceStub(channel)
        stream = stub.WatchConfig(edge_pb2.WatchConfigRequest())
        try:
            first = await asyncio.wait_for(stream.read(), WAIT)
            assert (first.version, first.WhichOneof("change")) == (1, "snapshot")
            assert [p.extension for p in first.snapshot.phones] == ["1001"]

            async with replicas.store.write(replicas.org.id) as session:
                session.add(_phone(replicas.org, "1002"))
            update = await asyncio.wait_for(stream.read(), 1.0)
            assert (update.version, update.WhichOneof("change")) == (2, "delta")
            assert [p.extension for p in update.delta.upsert_phones] == ["1002"]

            # A revocation through the first replica ends the watch on the second promptly.
            await replicas.store.revoke_edge(replicas.org.id, replicas.edge.id, utcnow())
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await asyncio.wait_for(stream.read(), 1.0)
            assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        finally:
            stream.cancel()
