"""The control plane's store: SQLAlchemy 2 async over SQLite (embedded) or PostgreSQL.

Configuration writes go through ``Store.write(org_id)``: one transaction that also bumps the
organisation's ``config_version`` by one, so an edge that has seen version N has seen every
write up to N. The bump is the transaction's first statement,
``UPDATE organisations SET config_version = config_version + 1 ... RETURNING``: on PostgreSQL
the UPDATE holds the organisation's row lock until commit (what ``SELECT ... FOR UPDATE`` would
take), so concurrent writers of one organisation serialize and versions never repeat; on SQLite
it takes the database write lock, and an in-process lock keeps this process's writers from
waiting on each other inside SQLite's busy handler.

Reads take ``org_id`` first, always: a query for organisation A cannot return B's rows.

Every committed write wakes the organisation's config watchers (controlplane.notify): on
PostgreSQL the write also runs ``pg_notify('voxedge_config', org_id)`` in its transaction, which
every process's ``start_change_listener()`` connection hears at commit; ``revoke_edge`` and
``pair_edge`` notify the same way (no version bump) so a refused edge's watch ends at once.
``org_config`` reads everything the edges are fed at one version.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import hashlib
import math
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import Connection, CursorResult, event, make_url, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from controlplane import pairing
from controlplane.models import (
    AuditLog,
    Base,
    Cdr,
    Did,
    Edge,
    EdgeStatus,
    NumberPlan,
    Organisation,
    OutboundRoute,
    PairingToken,
    Phone,
    Site,
    Trunk,
    new_id,
)
from controlplane.notify import CHANNEL, ChangeListener, ConfigNotifier

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
MAX_PAGE = 1000  # every list has a limit (DESIGN principle 3)
SQLITE_BUSY_TIMEOUT_MS = 10_000
CONFIG_READ_ATTEMPTS = 3  # OrgConfig: re-reads when a write lands during the read

ModelT = TypeVar("ModelT", bound=Base)


class StoreError(Exception):
    """Base of the store's own errors."""


class NotFoundError(StoreError):
    """The row does not exist in this organisation (also when it exists in another one)."""


class ConflictError(StoreError):
    """A write broke a uniqueness or reference rule, e.g. an extension already used in the
    organisation. ``detail`` carries the database's message for logs, not for end users."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


class EdgeRevokedError(StoreError):
    """The edge was revoked: it may neither pair again nor talk to the control plane."""


class CdrRejected(StoreError):
    """A call record the store will never accept (the edge must not retry it); the message
    names the field at fault."""


@dataclass(frozen=True, slots=True)
class PairedEdge:
    org_id: str
    edge_id: str
    certificate_pem: bytes


@dataclass(frozen=True, slots=True)
class EdgeConfig:
    """What one edge is fed (``Store.edge_config``), all at one config ``version``.

    Site scoping: an edge gets the phones and trunks of its own site plus those with no site
    (``site_id`` NULL: "any site"), never another site's. A site's edge registers that site's
    phones and terminates that site's carriers; not sending the others keeps every other site's
    digest secrets off it (a stolen edge leaks one site's credentials, not the organisation's).
    DIDs, number plans and outbound routes are the organisation's and go to every edge; only
    enabled trunks and routes are fed. ``extensions`` maps every phone id of the organisation
    (whatever its site) to its extension, for DID targets.
    """

    version: int
    organisation: Organisation
    edge: Edge
    phones: list[Phone]
    trunks: list[Trunk] = dataclasses.field(default_factory=list)
    dids: list[Did] = dataclasses.field(default_factory=list)
    number_plans: list[NumberPlan] = dataclasses.field(default_factory=list)
    outbound_routes: list[OutboundRoute] = dataclasses.field(default_factory=list)
    extensions: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OrgConfig:
    """Everything the organisation's edges are fed, read at one config ``version``
    (``Store.org_config``): every edge row (revoked ones too: the feed refuses them), every
    phone, enabled trunks and outbound routes, DIDs and number plans."""

    version: int
    organisation: Organisation
    edges: list[Edge]
    phones: list[Phone]
    trunks: list[Trunk]
    dids: list[Did]
    number_plans: list[NumberPlan]
    outbound_routes: list[OutboundRoute]

    def edge(self, edge_id: str) -> Edge | None:
        return next((edge for edge in self.edges if edge.id == edge_id), None)

    def extensions(self) -> dict[str, str]:
        return {phone.id: phone.extension for phone in self.phones}

    def for_edge(self, edge: Edge) -> EdgeConfig:
        """The edge's share (EdgeConfig explains the site scoping)."""
        return EdgeConfig(
            version=self.version,
            organisation=self.organisation,
            edge=edge,
            phones=[p for p in self.phones if in_site(p.site_id, edge.site_id)],
            trunks=[t for t in self.trunks if in_site(t.site_id, edge.site_id)],
            dids=list(self.dids),
            number_plans=list(self.number_plans),
            outbound_routes=list(self.outbound_routes),
            extensions=self.extensions(),
        )


def in_site(row_site_id: str | None, edge_site_id: str) -> bool:
    """A phone or trunk goes to an edge of its own site, or to every edge when it has none."""
    return row_site_id is None or row_site_id == edge_site_id


def sqlite_url(path: str | Path) -> str:
    return f"sqlite+aiosqlite:///{Path(path)}"


def alembic_config(url: str) -> Config:
    """Alembic configuration built in code: no alembic.ini is needed."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation: a literal % in a password must be doubled.
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _page(limit: int, offset: int) -> tuple[int, int]:
    if limit < 1 or offset < 0:
        raise ValueError("limit must be >= 1 and offset >= 0")
    return min(limit, MAX_PAGE), offset


class Store:
    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.engine = create_async_engine(url, echo=echo)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_on_connect)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._sqlite_write_lock = asyncio.Lock()
        # Woken after every committed Store.write (in-process; see controlplane.notify) and,
        # on PostgreSQL once start_change_listener() ran, by other processes' writes too.
        self.config_changes = ConfigNotifier()
        self.change_listener: ChangeListener | None = None

    async def close(self) -> None:
        await self.stop_change_listener()
        await self.engine.dispose()

    async def start_change_listener(self, timeout: float = 10.0) -> None:
        """PostgreSQL: LISTEN for every process's configuration writes (one connection per
        store, reconnecting with backoff) and publish them to ``config_changes``; returns once
        listening. Idempotent. SQLite: nothing to do (one process; writes publish in-process).
        """
        if self.is_sqlite:
            return
        if self.change_listener is None:
            # asyncpg takes the same URL without SQLAlchemy's "+asyncpg" (query options too).
            dsn = make_url(self.url).set(drivername="postgresql")
            self.change_listener = ChangeListener(
                {"dsn": dsn.render_as_string(hide_password=False)}, self.config_changes
            )
        await self.change_listener.start(timeout)

    async def stop_change_listener(self) -> None:
        listener, self.change_listener = self.change_listener, None
        if listener is not None:
            await listener.stop()

    def _publish(self, org_id: str) -> None:
        """Wake this process's watchers of ``org_id`` after a commit. While the listener is
        connected our own pg_notify comes back through it: waking twice would read twice."""
        if self.change_listener is None or self.change_listener.connection is None:
            self.config_changes.publish(org_id)

    async def _notify_others(self, session: AsyncSession, org_id: str) -> None:
        """PostgreSQL: tell every listening process at commit (nothing if it rolls back)."""
        if not self.is_sqlite:
            await session.execute(
                text("SELECT pg_notify(:channel, :org_id)"), {"channel": CHANNEL, "org_id": org_id}
            )

    @asynccontextmanager
    async def transaction(self, *, wake: str | None = None) -> AsyncIterator[AsyncSession]:
        """A write that is not configuration (no version bump): logins, pairing, status, call
        records. Commits on normal exit, rolls back on an exception; unique or reference
        violations surface as ConflictError. On SQLite it queues behind the store's writer lock
        (like ``write``) instead of waiting inside SQLite's busy handler.

        ``wake=org_id``: the organisation's watchers (in every process) re-check after the
        commit without a new version, e.g. so a revoked edge's open watch ends at once.
        """
        lock: contextlib.AbstractAsyncContextManager[object] = (
            self._sqlite_write_lock if self.is_sqlite else contextlib.nullcontext()
        )
        try:
            async with lock, self.sessions() as session, session.begin():
                yield session
                if wake is not None:
                    await self._notify_others(session, wake)
        except IntegrityError as exc:
            raise _conflict(exc) from exc
        if wake is not None:
            self._publish(wake)

    async def migrate(self, revision: str = "head") -> None:
        """Bring the schema to ``revision`` (alembic upgrade), in place and keeping data."""

        def upgrade(connection: Connection) -> None:
            cfg = alembic_config(self.url)
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, revision)

        async with self.engine.begin() as conn:
            await conn.run_sync(upgrade)

    async def current_revision(self) -> str | None:
        from alembic.migration import MigrationContext

        def current(connection: Connection) -> str | None:
            return MigrationContext.configure(connection).get_current_revision()

        async with self.engine.connect() as conn:
            return await conn.run_sync(current)

    # -- transactions ----------------------------------------------------------------------

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session

    @asynccontextmanager
    async def write(self, org_id: str) -> AsyncIterator[AsyncSession]:
        """One configuration write: commits on normal exit, rolls back on an exception.

        The organisation's new config version is ``session.info["config_version"]`` inside
        the block (and the return value of ``config_version_of(session)``); it only becomes
        visible to others if the block commits. Unique or reference violations surface as
        ConflictError. Do not open a second write inside the block (it would wait on this one).
        """
        if self.is_sqlite:
            async with self._sqlite_write_lock, self._write(org_id) as session:
                yield session
        else:
            async with self._write(org_id) as session:
                yield session
        # Reached only when the block committed: watchers re-read the organisation's version.
        self._publish(org_id)

    @asynccontextmanager
    async def _write(self, org_id: str) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            try:
                async with session.begin():
                    version = await session.scalar(
                        update(Organisation)
                        .where(Organisation.id == org_id)
                        .values(config_version=Organisation.config_version + 1)
                        .returning(Organisation.config_version)
                    )
                    if version is None:
                        raise NotFoundError(f"organisation {org_id} not found")
                    session.info["config_version"] = version
                    session.info["org_id"] = org_id
                    await self._notify_others(session, org_id)
                    yield session
            except IntegrityError as exc:
                raise _conflict(exc) from exc

    # -- organisations ---------------------------------------------------------------------

    async def create_organisation(self, name: str, sip_domain: str) -> Organisation:
        org = Organisation(name=name, sip_domain=sip_domain, config_version=0)
        async with self.transaction() as session:
            session.add(org)
        return org

    async def config_version(self, org_id: str) -> int:
        async with self.read() as session:
            version = await session.scalar(
                select(Organisation.config_version).where(Organisation.id == org_id)
            )
        if version is None:
            raise NotFoundError(f"organisation {org_id} not found")
        return version

    # -- scoped queries --------------------------------------------------------------------

    async def get(self, org_id: str, model: type[ModelT], row_id: str) -> ModelT:
        """One row of ``model`` in ``org_id``; NotFoundError when it belongs to another."""
        async with self.read() as session:
            row = await session.scalar(
                select(model).where(model.id == row_id, _org_column(model) == org_id)
            )
        if row is None:
            raise NotFoundError(f"{model.__tablename__} {row_id} not found")
        return row

    async def list_sites(self, org_id: str, *, limit: int = 100, offset: int = 0) -> list[Site]:
        limit, offset = _page(limit, offset)
        query = select(Site).where(Site.org_id == org_id).order_by(Site.name, Site.id)
        async with self.read() as session:
            return list(await session.scalars(query.limit(limit).offset(offset)))

    async def list_phones(
        self, org_id: str, *, site_id: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[Phone]:
        limit, offset = _page(limit, offset)
        query = select(Phone).where(Phone.org_id == org_id)
        if site_id is not None:
            query = query.where(Phone.site_id == site_id)
        query = query.order_by(Phone.extension, Phone.id).limit(limit).offset(offset)
        async with self.read() as session:
            return list(await session.scalars(query))

    async def find_phone_by_extension(self, org_id: str, extension: str) -> Phone | None:
        query = select(Phone).where(Phone.org_id == org_id, Phone.extension == extension)
        async with self.read() as session:
            return await session.scalar(query)

    # -- edges: pairing, identity, status, configuration feed, call records -----------------
    # None of these bump the config version: they are not configuration writes.

    async def issue_pairing_token(
        self,
        org_id: str,
        edge_id: str,
        now: datetime.datetime,
        ttl: float = pairing.DEFAULT_TTL,
        *,
        audit: AuditLog | None = None,
    ) -> str:
        """A new single-use pairing token for the edge (shown once); only its hash is kept.
        ``audit`` is added in the same transaction."""
        token_text, record = pairing.issue_token(edge_id, org_id, now, ttl)
        async with self.transaction() as session:
            edge = await session.scalar(
                select(Edge).where(Edge.id == edge_id, Edge.org_id == org_id)
            )
            if edge is None:
                raise NotFoundError(f"edges {edge_id} not found")
            if edge.revoked_at is not None:
                raise EdgeRevokedError(f"edge {edge_id} is revoked")
            session.add(
                PairingToken(
                    org_id=org_id,
                    edge_id=edge_id,
                    token_sha256=record.token_hash,
                    expires_at=record.expires_at,
                )
            )
            if audit is not None:
                session.add(audit)
        return token_text

    async def pair_edge(
        self,
        token_text: str,
        now: datetime.datetime,
        certify: Callable[[str, str], bytes],
        software_version: str = "",
    ) -> PairedEdge:
        """Redeem ``token_text`` and store the certificate ``certify(org_id, edge_id)`` issues,
        in one transaction: the token is used exactly when the certificate is recorded.

        Raises pairing.PairingError naming why the token does not pair, EdgeRevokedError,
        or whatever ``certify`` raises (the token is then left unused).
        """
        try:
            digest = pairing.hash_token(token_text)
        except UnicodeEncodeError:
            raise pairing.PairingError(pairing.PairingFailure.MALFORMED) from None
        async with self.transaction() as session:
            row = await session.scalar(
                select(PairingToken).where(PairingToken.token_sha256 == digest)
            )
            records = {} if row is None else {digest: _token_record(row)}
            # The pure checks (format, unknown, used, expired) name the failure ...
            record = pairing.redeem(token_text, records, now)
            # ... and this UPDATE decides: of two concurrent redeemers only one changes the row.
            redeemed = await session.execute(
                update(PairingToken)
                .where(
                    PairingToken.token_sha256 == digest,
                    PairingToken.used_at.is_(None),
                    PairingToken.expires_at > now,
                )
                .values(used_at=now)
                # The session's copy of the row is not needed; SQLite hands times back naive,
                # so evaluating the WHERE in Python against it could not work anyway.
                .execution_options(synchronize_session=False)
            )
            if _rowcount(redeemed) != 1:
                raise pairing.PairingError(pairing.PairingFailure.ALREADY_USED)
            edge = await session.scalar(
                select(Edge).where(Edge.id == record.edge_id, Edge.org_id == record.org_id)
            )
            if edge is None:  # the token row cascades with its edge; kept for clarity
                raise pairing.PairingError(pairing.PairingFailure.UNKNOWN)
            if edge.revoked_at is not None:
                raise EdgeRevokedError(f"edge {edge.id} is revoked")
            certificate_pem = certify(record.org_id, record.edge_id)
            edge.certificate_pem = certificate_pem.decode("ascii")
            edge.certificate_sha256 = certificate_fingerprint(certificate_pem)
            edge.software_version = software_version or edge.software_version
            if edge.status is EdgeStatus.PENDING:
                edge.status = EdgeStatus.OFFLINE  # paired, not heard from yet
            # A watch on the certificate this pairing supersedes must end.
            await self._notify_others(session, record.org_id)
        self._publish(record.org_id)
        return PairedEdge(record.org_id, record.edge_id, certificate_pem)

    async def revoke_edge(
        self,
        org_id: str,
        edge_id: str,
        now: datetime.datetime,
        *,
        audit: AuditLog | None = None,
    ) -> bool:
        """Revoke the edge: True when it was revoked now, False when it already was (nothing
        changes then, and ``audit`` is not written). Not a configuration write (no version
        bump), but the edge's open watch must end at once: the org's watchers are woken."""
        revoked = False
        async with self.transaction(wake=org_id) as session:
            changed = await session.execute(
                update(Edge)
                .where(Edge.id == edge_id, Edge.org_id == org_id, Edge.revoked_at.is_(None))
                .values(revoked_at=now, status=EdgeStatus.OFFLINE)
            )
            revoked = _rowcount(changed) == 1
            if not revoked:
                exists = await session.scalar(
                    select(Edge.id).where(Edge.id == edge_id, Edge.org_id == org_id)
                )
                if exists is None:
                    raise NotFoundError(f"edges {edge_id} not found")
            elif audit is not None:
                session.add(audit)
        return revoked

    async def record_edge_status(
        self,
        org_id: str,
        edge_id: str,
        *,
        now: datetime.datetime,
        status: EdgeStatus,
        config_version: int,
    ) -> int:
        """Store what the edge reported; the organisation's current config version."""
        async with self.transaction() as session:
            changed = await session.execute(
                update(Edge)
                .where(Edge.id == edge_id, Edge.org_id == org_id)
                .values(last_seen_at=now, status=status, config_version=config_version)
            )
            if _rowcount(changed) != 1:
                raise NotFoundError(f"edges {edge_id} not found")
            version = await session.scalar(
                select(Organisation.config_version).where(Organisation.id == org_id)
            )
        if version is None:
            raise NotFoundError(f"organisation {org_id} not found")
        return version

    async def edge_config(self, org_id: str, edge_id: str) -> EdgeConfig:
        """What the edge is fed, at one version (EdgeConfig: site scoping)."""
        config = await self.org_config(org_id)
        edge = config.edge(edge_id)
        if edge is None:
            raise NotFoundError(f"edges {edge_id} not found")
        return config.for_edge(edge)

    async def org_config(self, org_id: str) -> OrgConfig:
        """Every row the organisation's edges are fed, consistent at ``version``.

        The version is read before and after the rows: every write bumps it in its own
        transaction, so equal readings mean no write of the organisation committed in between
        (on PostgreSQL's READ COMMITTED each statement sees its own snapshot, and SQLite's
        driver does not wrap SELECTs in one transaction). When a write did land, read again
        (at most CONFIG_READ_ATTEMPTS times; then the rows are at least as new as the version,
        and the newer write's own wake-up sends them again under its version).
        """
        for _ in range(CONFIG_READ_ATTEMPTS):
            config = await self._read_org_config(org_id)
            if await self.config_version(org_id) == config.version:
                break
        return config

    async def _read_org_config(self, org_id: str) -> OrgConfig:
        async with self.read() as session:
            organisation = await session.scalar(
                select(Organisation).where(Organisation.id == org_id)
            )
            if organisation is None:
                raise NotFoundError(f"organisation {org_id} not found")
            version = organisation.config_version
            edges = await session.scalars(
                select(Edge).where(Edge.org_id == org_id).order_by(Edge.name, Edge.id)
            )
            phones = await session.scalars(
                select(Phone).where(Phone.org_id == org_id).order_by(Phone.extension, Phone.id)
            )
            trunks = await session.scalars(
                select(Trunk)
                .where(Trunk.org_id == org_id, Trunk.enabled.is_(True))
                .order_by(Trunk.name, Trunk.id)
            )
            dids = await session.scalars(
                select(Did).where(Did.org_id == org_id).order_by(Did.number, Did.id)
            )
            plans = await session.scalars(
                select(NumberPlan)
                .where(NumberPlan.org_id == org_id)
                .order_by(NumberPlan.priority, NumberPlan.name, NumberPlan.id)
            )
            routes = await session.scalars(
                select(OutboundRoute)
                .where(OutboundRoute.org_id == org_id, OutboundRoute.enabled.is_(True))
                .order_by(OutboundRoute.priority, OutboundRoute.name, OutboundRoute.id)
            )
            return OrgConfig(
                version=version,
                organisation=organisation,
                edges=list(edges),
                phones=list(phones),
                trunks=list(trunks),
                dids=list(dids),
                number_plans=list(plans),
                outbound_routes=list(routes),
            )

    async def store_cdr(
        self, org_id: str, edge_id: str, idempotency_key: str, payload: Mapping[str, Any]
    ) -> bool:
        """Store one call record once per key: True when stored now, False when it already
        was (a retry). Not a configuration write: the config version does not move.
        CdrRejected names the field when the payload cannot be a call record."""
        values = _cdr_values(payload)
        dialect_insert = sqlite.insert if self.is_sqlite else postgresql.insert
        statement = (
            dialect_insert(Cdr)
            .values(
                id=new_id(),
                org_id=org_id,
                edge_id=edge_id,
                idempotency_key=idempotency_key,
                detail=dict(payload),
                **values,
            )
            .on_conflict_do_nothing(index_elements=[Cdr.org_id, Cdr.idempotency_key])
        )
        async with self.transaction() as session:
            inserted = await session.execute(statement)
        return _rowcount(inserted) == 1


def certificate_fingerprint(certificate: bytes) -> str:
    """Hex SHA-256 of a certificate's DER (what ``edges.certificate_sha256`` holds)."""
    if certificate.lstrip().startswith(b"-----BEGIN"):
        certificate = x509.load_pem_x509_certificate(certificate).public_bytes(Encoding.DER)
    return hashlib.sha256(certificate).hexdigest()


def _rowcount(result: Any) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


def _aware(moment: datetime.datetime) -> datetime.datetime:
    # SQLite hands DateTime(timezone=True) back naive; every stored time is UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=datetime.UTC)


def _token_record(row: PairingToken) -> pairing.TokenRecord:
    return pairing.TokenRecord(
        token_hash=row.token_sha256,
        edge_id=row.edge_id,
        org_id=row.org_id,
        expires_at=_aware(row.expires_at),
        used_at=None if row.used_at is None else _aware(row.used_at),
    )


_CDR_TEXT = {"call_id": "call_id", "caller": "from_uri", "callee": "to_uri"}
_CDR_MAX_TEXT = 255


def _cdr_values(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Cdr columns from an edge's CDR payload (edge/cdr.py CallRecord.to_payload)."""
    values: dict[str, Any] = {}
    for column, field in _CDR_TEXT.items():
        text = payload.get(field, "" if column != "call_id" else None)
        if (
            not isinstance(text, str)
            or len(text) > _CDR_MAX_TEXT
            or (column == "call_id" and not text)
        ):
            raise CdrRejected(f"{field}: want a string of 1..{_CDR_MAX_TEXT} characters")
        values[column] = text
    values["started_at"] = _cdr_time(payload, "started", required=True)
    values["answered_at"] = _cdr_time(payload, "answered", required=False)
    values["ended_at"] = _cdr_time(payload, "ended", required=False)
    disposition = payload.get("end_cause", "")
    if not isinstance(disposition, str) or len(disposition) > 32:
        raise CdrRejected("end_cause: want a string of at most 32 characters")
    direction = payload.get("direction", "")
    if not isinstance(direction, str) or len(direction) > 16:
        raise CdrRejected("direction: want a string of at most 16 characters")
    values["disposition"] = disposition
    values["direction"] = direction
    return values


def _cdr_time(
    payload: Mapping[str, Any], field: str, *, required: bool
) -> datetime.datetime | None:
    value = payload.get(field)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise CdrRejected(f"{field}: want a unix time")
    try:
        return datetime.datetime.fromtimestamp(value, datetime.UTC)
    except (OverflowError, OSError, ValueError):
        raise CdrRejected(f"{field}: unix time out of range") from None


def config_version_of(session: AsyncSession) -> int:
    """The config version a ``Store.write`` session will commit."""
    return int(session.info["config_version"])


def _org_column(model: type[Base]) -> Any:
    if model is Organisation:
        return Organisation.id
    return model.org_id  # type: ignore[attr-defined]


def _conflict(exc: IntegrityError) -> ConflictError:
    detail = str(exc.orig)
    lowered = detail.lower()
    if "unique" in lowered or "duplicate" in lowered:
        message = "a row with the same unique value already exists"
    elif "foreign key" in lowered:
        message = "a referenced row does not exist"
    else:
        message = "the write violates a database constraint"
    return ConflictError(message, detail)


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # SQLite enforces foreign keys (and so ON DELETE CASCADE) only when asked, per connection.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()
