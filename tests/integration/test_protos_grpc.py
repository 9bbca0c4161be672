"""The generated EdgeService over real gRPC on 127.0.0.1: a server stream and unary calls.

(Plain TCP here: pairing and mutual TLS come with the control plane that serves it.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from protos.voxedge.v1 import edge_pb2, edge_pb2_grpc

pytestmark = pytest.mark.integration


class Service(edge_pb2_grpc.EdgeServiceServicer):
    def __init__(self) -> None:
        self.stored: set[str] = set()

    async def WatchConfig(
        self, request: edge_pb2.WatchConfigRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[edge_pb2.ConfigUpdate]:
        version = request.from_version + 1
        yield edge_pb2.ConfigUpdate(version=version, snapshot=edge_pb2.ConfigSnapshot())
        delta = edge_pb2.ConfigDelta(delete_phones=["p1"])
        yield edge_pb2.ConfigUpdate(version=version + 1, delta=delta)

    async def PushEvents(
        self, request: edge_pb2.EventBatch, context: grpc.aio.ServicerContext
    ) -> edge_pb2.EventAck:
        ack = edge_pb2.EventAck()
        for event in request.events:
            if not event.idempotency_key:
                ack.refused.add(idempotency_key="", reason="idempotency_key missing")
                continue
            self.stored.add(event.idempotency_key)  # a retried key is stored once
            ack.stored_keys.append(event.idempotency_key)
        return ack


async def test_watch_config_streams_and_push_events_acknowledges() -> None:
    server = grpc.aio.server()
    service = Service()
    edge_pb2_grpc.add_EdgeServiceServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = edge_pb2_grpc.EdgeServiceStub(channel)
            updates = [
                update
                async for update in stub.WatchConfig(
                    edge_pb2.WatchConfigRequest(from_version=4), timeout=5
                )
            ]
            assert [(u.version, u.WhichOneof("change")) for u in updates] == [
                (5, "snapshot"),
                (6, "delta"),
            ]
            cdr = edge_pb2.Event(idempotency_key="cdr:e1:c1", kind="cdr", payload_json="{}")
            batch = edge_pb2.EventBatch(events=[cdr, cdr, edge_pb2.Event(kind="cdr")])
            ack = await stub.PushEvents(batch, timeout=5)
            assert list(ack.stored_keys) == ["cdr:e1:c1", "cdr:e1:c1"]
            assert [r.reason for r in ack.refused] == ["idempotency_key missing"]
            assert service.stored == {"cdr:e1:c1"}
    finally:
        await server.stop(grace=None)
