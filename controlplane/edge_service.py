"""The control plane's side of the edge feed: protos' EdgeService over TLS (grpc.aio).

Two listeners share one servicer. gRPC's Python TLS server either demands a verified client
certificate or does not ask for one at all (``require_client_auth`` maps to
REQUEST_AND_REQUIRE…_AND_VERIFY or DONT_REQUEST), so "Pair without a certificate, everything
else with one" cannot be one port:

- the **edge port** (mTLS, the CA as the only root): every method; Pair is unusable there in
  practice, since an edge that has a certificate does not pair;
- the **pairing port** (server TLS only): Pair works; any other method finds no peer
  certificate and is refused UNAUTHENTICATED.

Every method but Pair checks the peer certificate itself too: issued by our CA, valid now,
an edge identity, the certificate the edge row holds (a re-paired edge's old certificate is
refused), and the edge not revoked.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Final

import grpc

from controlplane.ca import (
    CertificateAuthority,
    CertificateRejected,
    CsrRejected,
    EdgeIdentity,
    ServerCredentials,
)
from controlplane.models import Edge, EdgeStatus, PhoneKind, utcnow
from controlplane.models import Phone as PhoneRow
from controlplane.pairing import PairingError
from controlplane.store import (
    CdrRejected,
    EdgeConfig,
    EdgeRevokedError,
    NotFoundError,
    Store,
    certificate_fingerprint,
)
from protos.voxedge.v1 import edge_pb2, edge_pb2_grpc

log = logging.getLogger(__name__)

MAX_EVENTS_PER_BATCH: Final = 1000
MAX_KEY_CHARS: Final = 128  # cdrs.idempotency_key is String(128)
MAX_PAYLOAD_BYTES: Final = 256 * 1024
MAX_SOFTWARE_VERSION: Final = 64
# Without LISTEN/NOTIFY a write by another replica is only seen by re-reading the version.
RECHECK_INTERVAL: Final = 30.0

_PHONE_TYPES: Final = {
    PhoneKind.GENERIC_SIP: edge_pb2.PHONE_TYPE_GENERIC_SIP,
    PhoneKind.MANAGED: edge_pb2.PHONE_TYPE_MANAGED,
    PhoneKind.WEBRTC: edge_pb2.PHONE_TYPE_WEBRTC,
    PhoneKind.REMOTE_NUMBER: edge_pb2.PHONE_TYPE_REMOTE_NUMBER,
}
_LINK_STATUS: Final = {
    edge_pb2.LINK_STATE_DEGRADED: EdgeStatus.DEGRADED,
}


class EdgeService(edge_pb2_grpc.EdgeServiceServicer):
    def __init__(
        self,
        store: Store,
        ca: CertificateAuthority,
        *,
        clock: Callable[[], datetime.datetime] = utcnow,
        recheck_interval: float = RECHECK_INTERVAL,
    ) -> None:
        self.store = store
        self.ca = ca
        self.clock = clock
        self.recheck_interval = recheck_interval
        # The tasks running calls: grpc.aio's stop() cancels them without waiting, and a
        # cancelled store read still has to close its session before the store may close.
        self.calls: set[asyncio.Task[Any]] = set()

    def _track(self) -> None:
        task = asyncio.current_task()
        if task is not None and task not in self.calls:
            self.calls.add(task)
            task.add_done_callback(self.calls.discard)

    async def drain(self, timeout: float) -> None:
        """Wait (at most ``timeout`` s) for calls still running, e.g. after a server stop."""
        calls = {task for task in self.calls if task is not asyncio.current_task()}
        if calls:
            await asyncio.wait(calls, timeout=timeout)

    # -- pairing (no client certificate) --------------------------------------------------

    async def Pair(
        self, request: edge_pb2.PairRequest, context: grpc.aio.ServicerContext
    ) -> edge_pb2.PairResponse:
        self._track()
        if len(request.software_version) > MAX_SOFTWARE_VERSION:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"software_version: at most {MAX_SOFTWARE_VERSION} characters",
            )
        now = self.clock()
        csr_pem = bytes(request.csr_pem)

        def certify(org_id: str, edge_id: str) -> bytes:
            return self.ca.sign_edge_csr(csr_pem, edge_id, org_id, now)

        try:
            paired = await self.store.pair_edge(
                request.token, now, certify, request.software_version
            )
        except PairingError as error:
            log.info("pairing refused: %s", error.reason)
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED, f"pairing token refused: {error.reason}"
            )
        except CsrRejected as error:
            log.info("pairing refused: CSR %s", error.fault)
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"certificate signing request refused: {error}"
            )
        except EdgeRevokedError:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "edge revoked")
        log.info("edge paired org=%s edge=%s", paired.org_id, paired.edge_id)
        return edge_pb2.PairResponse(
            edge_id=paired.edge_id,
            org_id=paired.org_id,
            certificate_pem=paired.certificate_pem,
            ca_chain_pem=[self.ca.certificate_pem],
        )

    # -- configuration feed ----------------------------------------------------------------

    async def WatchConfig(
        self, request: edge_pb2.WatchConfigRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[edge_pb2.ConfigUpdate]:
        identity = await self._authenticate(context)
        sent = request.from_version
        while True:
            # Taken before the read: a commit after the read still wakes us.
            changed = self.store.config_changes.waiter(identity.org_id)
            version = await self.store.config_version(identity.org_id)
            if version != sent:  # also lower: the edge holds what we no longer have
                config = await self.store.edge_config(identity.org_id, identity.edge_id)
                yield edge_pb2.ConfigUpdate(version=config.version, snapshot=snapshot_of(config))
                sent = config.version
                continue  # re-check: a write may have landed while we were sending
            # grpc.aio cancels this task when the edge goes away or the server stops.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), self.recheck_interval)

    # -- status and events -----------------------------------------------------------------

    async def ReportStatus(
        self, request: edge_pb2.EdgeStatus, context: grpc.aio.ServicerContext
    ) -> edge_pb2.StatusAck:
        identity = await self._authenticate(context)
        latest = await self.store.record_edge_status(
            identity.org_id,
            identity.edge_id,
            now=self.clock(),
            status=_LINK_STATUS.get(request.link, EdgeStatus.ONLINE),
            config_version=request.config_version,
        )
        return edge_pb2.StatusAck(latest_version=latest)

    async def PushEvents(
        self, request: edge_pb2.EventBatch, context: grpc.aio.ServicerContext
    ) -> edge_pb2.EventAck:
        identity = await self._authenticate(context)
        if len(request.events) > MAX_EVENTS_PER_BATCH:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"events: at most {MAX_EVENTS_PER_BATCH} per batch",
            )
        ack = edge_pb2.EventAck()
        for event in request.events:
            key = event.idempotency_key
            reason = await self._store_event(identity, event)
            if reason is None:
                ack.stored_keys.append(key)
            else:
                log.info("event refused edge=%s key=%r: %s", identity.edge_id, key[:64], reason)
                ack.refused.add(idempotency_key=key, reason=reason)
        return ack

    async def _store_event(self, identity: EdgeIdentity, event: edge_pb2.Event) -> str | None:
        """None when stored (now or before), else why it never will be."""
        key = event.idempotency_key
        if not key:
            return "idempotency_key missing"
        if len(key) > MAX_KEY_CHARS:
            return f"idempotency_key longer than {MAX_KEY_CHARS} characters"
        if event.kind != "cdr":
            return f"kind {event.kind[:32]!r} is not stored by this control plane"
        if len(event.payload_json) > MAX_PAYLOAD_BYTES:
            return f"payload_json larger than {MAX_PAYLOAD_BYTES} bytes"
        try:
            payload = json.loads(event.payload_json)
        except ValueError as error:
            return f"payload_json is not JSON: {error}"
        if not isinstance(payload, dict):
            return "payload_json is not a JSON object"
        try:
            await self.store.store_cdr(identity.org_id, identity.edge_id, key, payload)
        except CdrRejected as error:
            return f"payload_json: {error}"
        return None

    # -- peer identity ---------------------------------------------------------------------

    async def _authenticate(self, context: grpc.aio.ServicerContext) -> EdgeIdentity:
        """The edge behind the call's client certificate, or the call is aborted."""
        self._track()
        certificates = context.auth_context().get("x509_pem_cert") or []
        if not certificates:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "client certificate required")
        certificate = certificates[0]
        try:
            identity = self.ca.verify_edge_certificate(certificate, self.clock())
        except CertificateRejected as error:
            await context.abort(
                grpc.StatusCode.UNAUTHENTICATED, f"client certificate refused: {error.fault}"
            )
        try:
            edge = await self.store.get(identity.org_id, Edge, identity.edge_id)
        except NotFoundError:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "edge deleted")
        if edge.revoked_at is not None:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "edge revoked")
        if edge.certificate_sha256 != certificate_fingerprint(certificate):
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED, "certificate superseded by a later pairing"
            )
        return identity


def snapshot_of(config: EdgeConfig) -> edge_pb2.ConfigSnapshot:
    """The edge's full configuration. Trunks, DIDs, number plans and outbound routes are not
    fed yet (empty lists)."""
    return edge_pb2.ConfigSnapshot(
        edge=edge_pb2.EdgeSettings(
            name=config.edge.name,
            domain=config.organisation.sip_domain,
            site_id=config.edge.site_id,
        ),
        phones=[phone_of(phone) for phone in config.phones],
    )


def phone_of(phone: PhoneRow) -> edge_pb2.Phone:
    # RFC 8760: the stronger algorithm is challenged first.
    digest = [
        edge_pb2.DigestSecret(algorithm=algorithm, ha1=ha1)
        for algorithm, ha1 in (("SHA-256", phone.ha1_sha256), ("MD5", phone.ha1_md5))
        if ha1
    ]
    return edge_pb2.Phone(
        id=phone.id,
        name=phone.display_name or phone.sip_username or phone.extension,
        type=_PHONE_TYPES[phone.kind],
        extension=phone.extension,
        digest=digest,
        site_id=phone.site_id or "",
    )


@dataclass(frozen=True, slots=True)
class EdgeServer:
    """The running gRPC server and the ports it bound (useful when asked for port 0)."""

    server: grpc.aio.Server
    service: EdgeService
    port: int  # mutual TLS: every method
    pairing_port: int  # server TLS only: Pair

    async def stop(self, grace: float | None = None, drain: float = 5.0) -> None:
        """Stop serving, then wait up to ``drain`` s for cancelled calls to unwind (close the
        store only after this)."""
        await self.server.stop(grace)
        await self.service.drain(drain)


async def serve_edges(
    store: Store,
    ca: CertificateAuthority,
    host: str,
    port: int,
    *,
    server_credentials: ServerCredentials,
    pairing_port: int,
    clock: Callable[[], datetime.datetime] = utcnow,
) -> EdgeServer:
    """Start the EdgeService on ``host:port`` (mTLS) and ``host:pairing_port`` (TLS)."""
    server = grpc.aio.server()
    service = EdgeService(store, ca, clock=clock)
    edge_pb2_grpc.add_EdgeServiceServicer_to_server(service, server)  # type: ignore[no-untyped-call]
    pair = [(server_credentials.key_pem, server_credentials.certificate_pem)]
    mutual = grpc.ssl_server_credentials(
        pair, root_certificates=ca.certificate_pem, require_client_auth=True
    )
    bound = server.add_secure_port(f"{host}:{port}", mutual)
    pairing_bound = server.add_secure_port(
        f"{host}:{pairing_port}", grpc.ssl_server_credentials(pair)
    )
    await server.start()
    return EdgeServer(server, service, bound, pairing_bound)
