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

**The configuration feed** (``WatchConfig``). The first update on a stream is nothing when the
edge asks ``from_version`` = the organisation's current version (it resumes where it was),
else a full snapshot (``snapshot_of``: edge settings, site-scoped phones and trunks, DIDs,
number plans, outbound routes). After that each version the organisation reaches is one
``ConfigDelta``: whole objects upserted by id, ids deleted, ``edge`` set only when the edge's
settings changed; a write that changes nothing this edge sees still sends an empty delta with
the new version, so the edge records it. Versions never repeat on a stream.

Streams share their work (``ConfigFeed``): a change wakes every watcher of the organisation
through one event (``controlplane.notify``), they await one store read (``Store.org_config``)
keyed by that event, each site's snapshot is built once from it, and the delta from a given
older view is computed once; a stream keeps only references to the shared view it last sent
and its own edge settings. On every wake the stream checks its edge row from that same read:
a deleted or revoked edge, or a certificate superseded by a later pairing, ends the stream with
PERMISSION_DENIED (``revoke_edge`` and ``pair_edge`` publish, so that is prompt). Writes made
by another control-plane process arrive through PostgreSQL LISTEN/NOTIFY (``serve_edges``
starts the store's listener); a stream that heard nothing for ``RECHECK_INTERVAL`` makes the
organisation re-read once anyway, a safety net for lost notifications.

``ReportStatus`` stores what the edges table holds of a report: the acknowledged config
version, online/degraded from the link state, and last-seen time (the control plane's clock,
not the edge's ``reported_at``); the registration/call counts and trunk states are not stored.
"""

from __future__ import annotations

import asyncio
import datetime
import itertools
import json
import logging
import math
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import grpc
from sqlalchemy.exc import SQLAlchemyError

from controlplane.ca import (
    CertificateAuthority,
    CertificateRejected,
    CsrRejected,
    EdgeIdentity,
    ServerCredentials,
)
from controlplane.models import Did as DidRow
from controlplane.models import Edge, EdgeStatus, Organisation, PhoneKind, utcnow
from controlplane.models import NumberPlan as NumberPlanRow
from controlplane.models import OutboundRoute as OutboundRouteRow
from controlplane.models import Phone as PhoneRow
from controlplane.models import Trunk as TrunkRow
from controlplane.pairing import PairingError
from controlplane.store import (
    CdrRejected,
    EdgeConfig,
    EdgeRevokedError,
    NotFoundError,
    OrgConfig,
    Store,
    certificate_fingerprint,
    in_site,
)
from protos.voxedge.v1 import edge_pb2, edge_pb2_grpc

log = logging.getLogger(__name__)

MAX_EVENTS_PER_BATCH: Final = 1000
MAX_KEY_CHARS: Final = 128  # cdrs.idempotency_key is String(128)
MAX_PAYLOAD_BYTES: Final = 256 * 1024
MAX_SOFTWARE_VERSION: Final = 64
MAX_CONFIG_VERSION: Final = 2**31 - 1  # organisations.config_version is an Integer column
# The safety net under notifications: a watcher idle this long makes its organisation re-read.
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
        self.feed = ConfigFeed(store, recheck_interval, self._track_task)

    def _track(self) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._track_task(task)

    def _track_task(self, task: asyncio.Task[Any]) -> None:
        if task not in self.calls:
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
        identity, fingerprint = await self._authenticate_certificate(context)
        org_id, edge_id = identity.org_id, identity.edge_id
        self.feed.attach(org_id)
        try:
            sent: Sent | None = None
            while True:
                try:
                    # The wake-up event is taken before the (shared) read: a commit after the
                    # read still wakes us.
                    changed, loaded = await self.feed.current(org_id)
                except NotFoundError:
                    await context.abort(grpc.StatusCode.PERMISSION_DENIED, "edge deleted")
                except (SQLAlchemyError, OSError) as error:
                    # The edge keeps its cached snapshot and comes back with its version.
                    log.warning("config read failed org=%s: %s", org_id, error)
                    await context.abort(
                        grpc.StatusCode.UNAVAILABLE, "configuration store unavailable"
                    )
                edge = loaded.edges.get(edge_id)
                refusal = refusal_of(edge, fingerprint)
                if refusal is not None or edge is None:
                    log.info("config watch ended edge=%s: %s", edge_id, refusal)
                    await context.abort(grpc.StatusCode.PERMISSION_DENIED, refusal or "")
                    return
                update, sent = next_update(sent, request.from_version, loaded, edge)
                if update is not None:
                    yield update
                    continue  # re-check: a write may have landed while we were sending
                # grpc.aio cancels this task when the edge goes away or the server stops.
                try:
                    await asyncio.wait_for(changed.wait(), self.recheck_interval)
                except TimeoutError:
                    self.feed.recheck(org_id, changed)
        finally:
            self.feed.detach(org_id)

    # -- status and events -----------------------------------------------------------------

    async def ReportStatus(
        self, request: edge_pb2.EdgeStatus, context: grpc.aio.ServicerContext
    ) -> edge_pb2.StatusAck:
        identity = await self._authenticate(context)
        if request.config_version > MAX_CONFIG_VERSION:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "config_version: no such version")
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
        identity, _ = await self._authenticate_certificate(context)
        return identity

    async def _authenticate_certificate(
        self, context: grpc.aio.ServicerContext
    ) -> tuple[EdgeIdentity, str]:
        """The edge and its certificate's fingerprint, or the call is aborted."""
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
        fingerprint = certificate_fingerprint(certificate)
        refusal = refusal_of(edge, fingerprint)
        if refusal is not None:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, refusal)
        return identity, fingerprint


def refusal_of(edge: Edge | None, fingerprint: str) -> str | None:
    """Why an edge holding the certificate ``fingerprint`` is refused, or None."""
    if edge is None:
        return "edge deleted"
    if edge.revoked_at is not None:
        return "edge revoked"
    if edge.certificate_sha256 != fingerprint:
        return "certificate superseded by a later pairing"
    return None


def phone_of(phone: PhoneRow) -> edge_pb2.Phone:
    digest = _digest(phone.ha1_sha256, phone.ha1_md5)
    return edge_pb2.Phone(
        id=phone.id,
        name=phone.display_name or phone.sip_username or phone.extension,
        type=_PHONE_TYPES[phone.kind],
        extension=phone.extension,
        digest=digest,
        site_id=phone.site_id or "",
    )


# -- snapshots and deltas (pure) ---------------------------------------------------------------

# (snapshot field, delta upsert field, delta delete field), in proto order.
_KINDS: Final = (
    ("phones", "upsert_phones", "delete_phones"),
    ("trunks", "upsert_trunks", "delete_trunks"),
    ("dids", "upsert_dids", "delete_dids"),
    ("number_plans", "upsert_number_plans", "delete_number_plans"),
    ("outbound_routes", "upsert_outbound_routes", "delete_outbound_routes"),
)
_UINT32_SETTINGS: Final = ("min_expires", "max_expires", "default_expires")
_SECONDS_SETTINGS: Final = ("media_timeout", "no_answer_timeout")
_TEXT_SETTINGS: Final = ("media_ports", "max_registration_rate", "max_call_rate")
_UINT32_MAX: Final = 2**32 - 1


def snapshot_of(config: EdgeConfig) -> edge_pb2.ConfigSnapshot:
    """The edge's full configuration at ``config.version``.

    Which rows an edge gets is the store's decision (``EdgeConfig``): the phones and trunks of
    its own site plus those with no site (never another site's digest secrets), enabled trunks
    and outbound routes only, and every DID and number plan of the organisation. A DID's
    ``target_extension`` is its phone's extension (whatever that phone's site) or "".
    """
    snapshot = _rows_snapshot(
        config.phones,
        config.trunks,
        config.dids,
        config.number_plans,
        config.outbound_routes,
        config.extensions,
    )
    snapshot.edge.CopyFrom(settings_of(config.organisation, config.edge))
    return snapshot


def site_snapshot(config: OrgConfig, site_id: str) -> edge_pb2.ConfigSnapshot:
    """``snapshot_of`` without the edge's own settings: what every edge of ``site_id`` shares."""
    return _rows_snapshot(
        [phone for phone in config.phones if in_site(phone.site_id, site_id)],
        [trunk for trunk in config.trunks if in_site(trunk.site_id, site_id)],
        config.dids,
        config.number_plans,
        config.outbound_routes,
        config.extensions(),
    )


def _rows_snapshot(
    phones: Iterable[PhoneRow],
    trunks: Iterable[TrunkRow],
    dids: Iterable[DidRow],
    number_plans: Iterable[NumberPlanRow],
    outbound_routes: Iterable[OutboundRouteRow],
    extensions: Mapping[str, str],
) -> edge_pb2.ConfigSnapshot:
    return edge_pb2.ConfigSnapshot(
        phones=[phone_of(phone) for phone in phones],
        trunks=[trunk_of(trunk) for trunk in trunks],
        dids=[did_of(did, extensions) for did in dids],
        number_plans=[number_plan_of(plan) for plan in number_plans],
        outbound_routes=[outbound_route_of(route) for route in outbound_routes],
    )


def settings_of(organisation: Organisation, edge: Edge) -> edge_pb2.EdgeSettings:
    """The edge's settings: name, site, the organisation's SIP domain, and whatever the edge
    row's ``settings`` JSON sets. A key that is absent, or not of its field's type and range
    (a whole number of 0..2^32-1 seconds, a finite non-negative number, a string), stays
    zero/empty: "the edge's own default"."""
    raw: Mapping[str, Any] = edge.settings if isinstance(edge.settings, dict) else {}
    values: dict[str, Any] = {}
    for key in _UINT32_SETTINGS:
        number = raw.get(key)
        if isinstance(number, int) and not isinstance(number, bool) and 0 <= number <= _UINT32_MAX:
            values[key] = number
    for key in _SECONDS_SETTINGS:
        seconds = raw.get(key)
        if (
            isinstance(seconds, int | float)
            and not isinstance(seconds, bool)
            and math.isfinite(seconds)
            and seconds >= 0
        ):
            values[key] = float(seconds)
    for key in _TEXT_SETTINGS:
        text = raw.get(key)
        if isinstance(text, str):
            values[key] = text
    return edge_pb2.EdgeSettings(
        name=edge.name,
        domain=organisation.sip_domain,
        site_id=edge.site_id,
        **values,
    )


def _digest(sha256: str | None, md5: str | None) -> list[edge_pb2.DigestSecret]:
    # RFC 8760: the stronger algorithm is challenged first.
    return [
        edge_pb2.DigestSecret(algorithm=algorithm, ha1=ha1)
        for algorithm, ha1 in (("SHA-256", sha256), ("MD5", md5))
        if ha1
    ]


def host_port(host: str, port: int) -> str:
    """``ip:port``, or ``[ipv6]:port`` (an IPv6 literal is bracketed)."""
    if ":" in host and not host.startswith("["):
        return f"[{host}]:{port}"
    return f"{host}:{port}"


def trunk_of(trunk: TrunkRow) -> edge_pb2.Trunk:
    return edge_pb2.Trunk(
        id=trunk.id,
        name=trunk.name,
        allow_cidrs=list(trunk.allowed_sources or ()),
        digest_username=trunk.auth_username or "",
        digest=_digest(trunk.auth_ha1_sha256, trunk.auth_ha1_md5),
        outbound_proxy=host_port(trunk.host, trunk.port),
        transport=str(trunk.transport),
        codecs=list(trunk.codecs or ()),
    )


def did_of(did: DidRow, extensions: Mapping[str, str]) -> edge_pb2.Did:
    return edge_pb2.Did(
        id=did.id,
        number=did.number,
        target_extension=extensions.get(did.phone_id, "") if did.phone_id else "",
        trunk_id=did.trunk_id or "",
    )


def number_plan_of(plan: NumberPlanRow) -> edge_pb2.NumberPlan:
    return edge_pb2.NumberPlan(
        id=plan.id,
        name=plan.name,
        match=plan.pattern,
        replace=plan.replacement or "",
        classification=plan.classification,
        priority=max(0, min(plan.priority, _UINT32_MAX)),
    )


def outbound_route_of(route: OutboundRouteRow) -> edge_pb2.OutboundRoute:
    return edge_pb2.OutboundRoute(
        id=route.id,
        name=route.name,
        classifications=list(route.classifications or ()),
        trunk_ids=list(route.trunk_ids or ()),
        priority=max(0, min(route.priority, _UINT32_MAX)),
    )


@dataclass(frozen=True, slots=True)
class SnapshotIndex:
    """A snapshot as id -> message per kind: what a stream remembers it sent. The messages
    are shared with the snapshot they came from (read them, never change them)."""

    edge: edge_pb2.EdgeSettings
    phones: Mapping[str, edge_pb2.Phone]
    trunks: Mapping[str, edge_pb2.Trunk]
    dids: Mapping[str, edge_pb2.Did]
    number_plans: Mapping[str, edge_pb2.NumberPlan]
    outbound_routes: Mapping[str, edge_pb2.OutboundRoute]


def index_of(snapshot: edge_pb2.ConfigSnapshot) -> SnapshotIndex:
    def by_id(items: Iterable[Any]) -> dict[str, Any]:
        return {item.id: item for item in items}

    return SnapshotIndex(
        edge=snapshot.edge,
        phones=by_id(snapshot.phones),
        trunks=by_id(snapshot.trunks),
        dids=by_id(snapshot.dids),
        number_plans=by_id(snapshot.number_plans),
        outbound_routes=by_id(snapshot.outbound_routes),
    )


def delta_between(old: SnapshotIndex, new: SnapshotIndex) -> edge_pb2.ConfigDelta:
    """What turns ``old`` into ``new``: upserts (whole objects) of new or changed ids in
    ``new``'s order, deletions of ids ``new`` lacks (sorted), and ``edge`` only when the
    settings differ. Empty when nothing differs."""
    delta = edge_pb2.ConfigDelta()
    if old.edge != new.edge:
        delta.edge.CopyFrom(new.edge)
    for kind, upsert, delete in _KINDS:
        before: Mapping[str, Any] = getattr(old, kind)
        after: Mapping[str, Any] = getattr(new, kind)
        getattr(delta, upsert).extend(
            item
            for item_id, item in after.items()
            if (previous := before.get(item_id)) is None or previous != item
        )
        getattr(delta, delete).extend(sorted(item_id for item_id in before if item_id not in after))
    return delta


def apply_delta(old: SnapshotIndex, delta: edge_pb2.ConfigDelta) -> SnapshotIndex:
    """``old`` with ``delta`` applied, as an edge applies it (what the tests check against)."""
    kinds: dict[str, dict[str, Any]] = {}
    for kind, upsert, delete in _KINDS:
        items = dict(getattr(old, kind))
        for item_id in getattr(delta, delete):
            items.pop(item_id, None)
        for item in getattr(delta, upsert):
            items[item.id] = item
        kinds[kind] = items
    edge = delta.edge if delta.HasField("edge") else old.edge
    return SnapshotIndex(edge=edge, **kinds)


# -- the shared feed ---------------------------------------------------------------------------


class SiteView:
    """One site's share of one organisation version (no edge settings): built once, shared
    by every stream of an edge of that site; remembers the deltas computed from older views."""

    MAX_DELTAS: Final = 8

    def __init__(self, serial: int, version: int, snapshot: edge_pb2.ConfigSnapshot) -> None:
        self.serial = serial
        self.version = version
        self.snapshot = snapshot
        self.index = index_of(snapshot)
        self._deltas: dict[int, edge_pb2.ConfigDelta] = {}

    def delta_since(self, old: SiteView) -> edge_pb2.ConfigDelta:
        """``delta_between`` the two views' rows (computed once per pair)."""
        delta = self._deltas.get(old.serial)
        if delta is None:
            if len(self._deltas) >= self.MAX_DELTAS:
                self._deltas.clear()
            delta = self._deltas[old.serial] = delta_between(old.index, self.index)
        return delta


class Loaded:
    """One read of an organisation's configuration and the site views built from it."""

    def __init__(
        self, config: OrgConfig, serials: Iterator[int], previous: Loaded | None = None
    ) -> None:
        self.config = config
        self.version = config.version
        self.edges = {edge.id: edge for edge in config.edges}
        self._serials = serials
        self.views_built = 0
        # Fed rows change only with the version (Store.write): a re-read at the same version
        # (a revocation, a recheck) keeps the views already built.
        same = previous is not None and previous.version == config.version
        self._views: dict[str, SiteView] = previous._views if previous and same else {}

    def view(self, site_id: str) -> SiteView:
        view = self._views.get(site_id)
        if view is None:
            snapshot = site_snapshot(self.config, site_id)
            view = self._views[site_id] = SiteView(next(self._serials), self.version, snapshot)
            self.views_built += 1
        return view


@dataclass(frozen=True, slots=True)
class Sent:
    """What one stream last sent (or found the edge already had): shared view, own settings."""

    version: int
    view: SiteView
    settings: edge_pb2.EdgeSettings


def next_update(
    sent: Sent | None, from_version: int, loaded: Loaded, edge: Edge
) -> tuple[edge_pb2.ConfigUpdate | None, Sent]:
    """The update a stream sends now (None: nothing) and what it then remembers.

    First on a stream: nothing when the edge already holds this version (it resumes), else a
    full snapshot (a lower or higher version both mean "not what we have now"). Later: nothing
    while the version stands (a wake-up without a write: revocation check, recheck), a delta
    when it grew (an empty one still carries the new version), a snapshot if it went back.
    """
    if sent is not None and loaded.version == sent.version:
        return None, sent
    view = loaded.view(edge.site_id)
    settings = settings_of(loaded.config.organisation, edge)
    now = Sent(loaded.version, view, settings)
    if sent is None and loaded.version == from_version:
        return None, now
    update = edge_pb2.ConfigUpdate(version=loaded.version)
    if sent is None or loaded.version < sent.version:
        update.snapshot.CopyFrom(view.snapshot)
        update.snapshot.edge.CopyFrom(settings)
    else:
        update.delta.CopyFrom(view.delta_since(sent.view))
        if settings != sent.settings:
            update.delta.edge.CopyFrom(settings)
    return update, now


@dataclass(slots=True)
class _Entry:
    token: asyncio.Event
    task: asyncio.Task[Loaded]
    started: float


class ConfigFeed:
    """The configuration reads of every WatchConfig stream of this process, shared.

    Per organisation with watchers it keeps the latest read, keyed by the notifier's current
    wake-up event: every stream woken by one publish (one write, one NOTIFY, one revocation)
    takes the same event and so awaits the same single read, and the snapshot of each site is
    built once from it. 50 watchers of one organisation cost one read per write.
    """

    def __init__(
        self,
        store: Store,
        recheck_interval: float,
        track: Callable[[asyncio.Task[Any]], None],
    ) -> None:
        self.store = store
        self.recheck_interval = recheck_interval
        self._track = track
        self._entries: dict[str, _Entry] = {}
        self._watchers: dict[str, int] = {}
        self._serials = itertools.count(1)
        self.loads = 0  # reads of the store, for tests and diagnostics

    def attach(self, org_id: str) -> None:
        self._watchers[org_id] = self._watchers.get(org_id, 0) + 1

    def detach(self, org_id: str) -> None:
        left = self._watchers.get(org_id, 0) - 1
        if left > 0:
            self._watchers[org_id] = left
        else:
            self._watchers.pop(org_id, None)
            self._entries.pop(org_id, None)

    def loaded(self, org_id: str) -> Loaded | None:
        """The latest completed read of ``org_id``, if any (for tests and diagnostics)."""
        entry = self._entries.get(org_id)
        if entry is None or not entry.task.done() or entry.task.cancelled():
            return None
        return None if entry.task.exception() else entry.task.result()

    async def current(self, org_id: str) -> tuple[asyncio.Event, Loaded]:
        """(the event the next change of ``org_id`` sets, a read no older than that event)."""
        token = self.store.config_changes.waiter(org_id)
        entry = self._entries.get(org_id)
        if entry is None or entry.token is not token:
            loop = asyncio.get_running_loop()
            task = loop.create_task(self._load(org_id, self.loaded(org_id)))
            task.add_done_callback(_retrieve)
            self._track(task)
            entry = _Entry(token, task, loop.time())
            if org_id in self._watchers:
                self._entries[org_id] = entry
        try:
            # Shielded: a stream that goes away must not cancel the others' read.
            return token, await asyncio.shield(entry.task)
        except Exception:
            if self._entries.get(org_id) is entry:
                del self._entries[org_id]
            raise

    def recheck(self, org_id: str, token: asyncio.Event) -> None:
        """A stream waited a whole recheck interval: if the shared read is that old, wake every
        watcher of the organisation to read again once (a missed notification's safety net)."""
        entry = self._entries.get(org_id)
        age = asyncio.get_running_loop().time() - entry.started if entry else math.inf
        if entry is None or (entry.token is token and age >= self.recheck_interval / 2):
            self.store.config_changes.publish(org_id)

    async def _load(self, org_id: str, previous: Loaded | None) -> Loaded:
        self.loads += 1
        return Loaded(await self.store.org_config(org_id), self._serials, previous)


def _retrieve(task: asyncio.Task[Any]) -> None:
    # A read nobody awaits any more must not log "exception never retrieved".
    if not task.cancelled():
        task.exception()


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
    try:
        # PostgreSQL: other replicas' writes reach our watchers (a no-op on SQLite).
        await store.start_change_listener()
    except TimeoutError:
        log.warning("config change listener not connected yet; it keeps retrying")
    server = grpc.aio.server()
    service = EdgeService(store, ca, clock=clock)
    edge_pb2_grpc.add_EdgeServiceServicer_to_server(service, server)  # type: ignore[no-untyped-call]
    pair = [(server_credentials.key_pem, server_credentials.certificate_pem)]
    # The pairing port sends the CA after its certificate: an edge holding only a join token
    # takes the CA from the handshake when it hashes to the token's pin (edge.pairing).
    with_ca = [
        (server_credentials.key_pem, server_credentials.certificate_pem + ca.certificate_pem)
    ]
    mutual = grpc.ssl_server_credentials(
        pair, root_certificates=ca.certificate_pem, require_client_auth=True
    )
    bound = server.add_secure_port(f"{host}:{port}", mutual)
    pairing_bound = server.add_secure_port(
        f"{host}:{pairing_port}", grpc.ssl_server_credentials(with_ca)
    )
    await server.start()
    return EdgeServer(server, service, bound, pairing_bound)
