"""The admin HTTPS API over the store: ``provisioning.backend.Backend`` implemented with
``controlplane.store.Store``, and ``build_app`` (DESIGN.md, "The house": controlplane ->
provisioning).

Every query is scoped to the caller's organisation; another organisation's id is NotFound.
Configuration writes run in ``Store.write(org_id)`` (one transaction that bumps the config
version and wakes the edges' watchers), with their audit row in the same transaction. Logins,
pairing tokens and revocations are not configuration: they run in a plain transaction (behind
the store's SQLite writer lock, like every write) and leave the config version alone.

Deleting a site that still has edges is refused (409): its FK would cascade and silently
delete the edges, unpairing live equipment; delete or move the edges first. Phones and trunks
of a deleted site keep existing with ``site_id`` null (FK SET NULL). Deleting a trunk an
outbound route lists is refused (409) for the same reason: routes name trunks in a JSON list
no FK guards. Deleting a phone a DID points at nulls the DID's ``phone_id`` (FK SET NULL).
"""

from __future__ import annotations

import contextlib
import datetime
import enum
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import fastapi
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from controlplane import pairing
from controlplane.admins import issue_token, verify_login
from controlplane.audit import add_audit, audit_row
from controlplane.models import (
    AdminUser,
    ApiToken,
    AuditLog,
    Base,
    Cdr,
    Did,
    Edge,
    NumberPlan,
    Organisation,
    OutboundRoute,
    Phone,
    PhoneKind,
    Site,
    Trunk,
    utcnow,
)
from controlplane.passwords import (
    api_token_digest,
    digest_ha1,
)
from controlplane.store import (
    MAX_PAGE,
    ConflictError,
    EdgeRevokedError,
    NotFoundError,
    Store,
    config_version_of,
)
from provisioning import schemas
from provisioning.app import build_api
from provisioning.backend import IssuedToken, Item, Page, Principal
from provisioning.errors import Conflict, Fault, Invalid, NotFound, Unauthorized, body_fault
from provisioning.validation import DIGEST_ALGORITHMS as ALGORITHMS

TOKEN_REFUSED = "invalid, expired or revoked token"
MAX_ROUTES_SCANNED = 10_000
# Never in a public view, whatever the response model (defence in depth).
HIDDEN_COLUMNS = frozenset(
    "org_id ha1_md5 ha1_sha256 auth_ha1_md5 auth_ha1_sha256 certificate_pem certificate_sha256"
    " password_hash token_sha256 base_settings_profile_id detail".split()
)


def build_app(
    store: Store,
    *,
    clock: Callable[[], datetime.datetime] = utcnow,
    ca_pin: str | None = None,
) -> fastapi.FastAPI:
    """The admin API (``/api/v1``, OpenAPI at ``/docs``) over ``store``. ``ca_pin``
    (``CertificateAuthority.pin``): pairing tokens are issued as join tokens that carry it."""
    return build_api(StoreBackend(store, clock, ca_pin))


# -- the backend ---------------------------------------------------------------------------


Derive = Callable[[Any, Organisation, Mapping[str, Any]], None]
Guard = Callable[[AsyncSession, Any], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Table:
    """How one API resource maps onto its table."""

    model: type[Base]
    order: Callable[[], tuple[Any, ...]]  # stable order; the id is appended
    renames: Mapping[str, str] = field(default_factory=dict)  # API field -> column
    unique: tuple[str, ...] = ()  # API fields unique per organisation
    refs: Mapping[str, type[Base]] = field(default_factory=dict)  # field -> table it names
    write_only: tuple[str, ...] = ()  # secrets: read by ``derive``, never stored as such
    derive: Derive | None = None  # sets the columns computed from the request
    extra: Callable[[Any], dict[str, Any]] = lambda row: {}  # computed public fields
    guard: Guard | None = None  # refuses a delete
    time_column: str = ""  # what ``since``/``until`` bound

    def column(self, api_field: str) -> Any:
        return getattr(self.model, self.renames.get(api_field, api_field))


class StoreBackend:
    """``provisioning.backend.Backend`` over the store; ``clock`` gives aware UTC times."""

    def __init__(
        self,
        store: Store,
        clock: Callable[[], datetime.datetime] = utcnow,
        ca_pin: str | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.ca_pin = ca_pin

    # -- authentication --------------------------------------------------------------------

    async def login(self, username: str, password: str, organisation: str | None) -> IssuedToken:
        user = await verify_login(self.store, username, password, organisation=organisation)
        return await issue_token(self.store, user, self.clock())

    async def authenticate(self, token: str) -> Principal:
        query = (
            select(ApiToken, AdminUser.disabled)
            .join(AdminUser, AdminUser.id == ApiToken.user_id)
            .where(ApiToken.token_sha256 == api_token_digest(token))
        )
        async with self.store.read() as session:
            found = (await session.execute(query)).first()
        if found is None:
            raise Unauthorized(TOKEN_REFUSED)
        row, disabled = found
        expires = row.expires_at
        if (
            disabled
            or row.revoked_at is not None
            or (expires is not None and _aware(expires) <= self.clock())
        ):
            raise Unauthorized(TOKEN_REFUSED)
        return Principal(row.org_id, row.user_id, schemas.Role(row.role.value))

    # -- resources -------------------------------------------------------------------------

    async def list(self, principal: Principal, resource: str, page: Page) -> list[Item]:
        table = TABLES[resource]
        model: Any = table.model
        query = select(model).where(model.org_id == principal.org_id)
        for key, value in page.filters.items():
            query = query.where(_filter(table, key, value))
        query = (
            query.order_by(*table.order(), model.id)
            .limit(max(1, min(page.limit, MAX_PAGE + 1)))
            .offset(max(0, page.offset))
        )
        async with self.store.read() as session:
            return [_view(table, row) for row in await session.scalars(query)]

    async def get(self, principal: Principal, resource: str, item_id: str) -> Item:
        table = TABLES[resource]
        async with self.store.read() as session:
            return _view(table, await _scoped(session, resource, principal.org_id, item_id))

    async def create(
        self,
        principal: Principal,
        resource: str,
        values: Mapping[str, Any],
        faults: Sequence[Fault] = (),
    ) -> Item:
        table = TABLES[resource]
        with _conflicts():
            async with self.store.write(principal.org_id) as session:
                await _raise_faults(session, table, principal.org_id, values, None, faults)
                row = table.model(org_id=principal.org_id)
                await _apply(session, table, row, values)
                session.add(row)
                await session.flush()
                _audit_change(session, principal, "create", table, row.id, values)
        return _view(table, row)

    async def update(
        self,
        principal: Principal,
        resource: str,
        item_id: str,
        changes: Mapping[str, Any],
        faults: Sequence[Fault] = (),
    ) -> Item:
        table = TABLES[resource]
        with _conflicts():
            async with self.store.write(principal.org_id) as session:
                row = await _scoped(session, resource, principal.org_id, item_id)
                await _raise_faults(session, table, principal.org_id, changes, row.id, faults)
                await _apply(session, table, row, changes)
                await session.flush()
                await session.refresh(row)
                _audit_change(session, principal, "update", table, row.id, changes)
        return _view(table, row)

    async def delete(self, principal: Principal, resource: str, item_id: str) -> None:
        table = TABLES[resource]
        with _conflicts():
            async with self.store.write(principal.org_id) as session:
                row = await _scoped(session, resource, principal.org_id, item_id)
                if table.guard is not None:
                    await table.guard(session, row)
                await session.delete(row)
                _audit_change(session, principal, "delete", table, row.id, {})

    # -- edges: not configuration, so no version bump -----------------------------------------

    async def issue_pairing_token(self, principal: Principal, edge_id: str) -> IssuedToken:
        now = self.clock()
        expires_at = now + datetime.timedelta(seconds=pairing.DEFAULT_TTL)
        async with self.store.read() as session:
            edge = await _scoped(session, "edges", principal.org_id, edge_id)
        audit = audit_row(
            principal.org_id,
            principal.user_id,
            "issue_pairing_token",
            "edges",
            edge.id,
            detail={"expires_at": expires_at.isoformat()},
        )
        try:
            token = await self.store.issue_pairing_token(
                principal.org_id, edge.id, now, pairing.DEFAULT_TTL, audit=audit
            )
        except NotFoundError:
            raise NotFound(f"edges {edge_id} not found") from None
        except EdgeRevokedError:
            raise Conflict(f"edge {edge_id} is revoked: it cannot pair again") from None
        # A join token: "<secret>.<CA pin>". The edge pairs with the secret and trusts the
        # control plane's CA only if its certificate hashes to the pin (kubeadm's idea).
        return IssuedToken(f"{token}.{self.ca_pin}" if self.ca_pin else token, expires_at)

    async def revoke_edge(self, principal: Principal, edge_id: str) -> Item:
        """Store.revoke_edge with its audit row in the same transaction: the organisation's
        watchers wake (no version bump) so the edge's open watch ends at once. Revoking twice
        changes nothing and logs nothing."""
        async with self.store.read() as session:
            edge = await _scoped(session, "edges", principal.org_id, edge_id)
        audit = audit_row(principal.org_id, principal.user_id, "revoke", "edges", edge.id)
        try:
            await self.store.revoke_edge(principal.org_id, edge.id, self.clock(), audit=audit)
        except NotFoundError:
            raise NotFound(f"edges {edge_id} not found") from None
        async with self.store.read() as session:
            edge = await _scoped(session, "edges", principal.org_id, edge_id)
        return _view(TABLES["edges"], edge)


# -- writes --------------------------------------------------------------------------------


@contextlib.contextmanager
def _conflicts() -> Iterator[None]:
    """A uniqueness race the pre-checks could not see (two writers at once) is a 409."""
    try:
        yield
    except ConflictError as exc:
        raise Conflict(str(exc)) from exc


async def _scoped(session: AsyncSession, resource: str, org_id: str, item_id: str) -> Any:
    model: Any = TABLES[resource].model
    row = await session.scalar(select(model).where(model.id == item_id, model.org_id == org_id))
    if row is None:
        raise NotFound(f"{resource} {item_id} not found")
    return row


async def _raise_faults(
    session: AsyncSession,
    table: Table,
    org_id: str,
    values: Mapping[str, Any],
    item_id: str | None,
    faults: Sequence[Fault],
) -> None:
    """Invalid naming ``faults`` and every uniqueness or reference rule ``values`` breaks."""
    found = list(faults)
    model: Any = table.model
    for name in table.unique:
        if name not in values:
            continue
        query = select(model.id).where(model.org_id == org_id, table.column(name) == values[name])
        if item_id is not None:
            query = query.where(model.id != item_id)
        if await session.scalar(query.limit(1)) is not None:
            found.append(
                body_fault(name, f"{values[name]!r} is already used in this organisation", "unique")
            )
    for name, target in table.refs.items():
        value = values.get(name)
        if value is None:
            continue
        ids = value if isinstance(value, list) else [value]
        target_model: Any = target
        existing = set(
            await session.scalars(
                select(target_model.id).where(
                    target_model.org_id == org_id, target_model.id.in_(ids)
                )
            )
        )
        for index, ref in enumerate(ids):
            if ref not in existing:
                loc = (name, index) if isinstance(value, list) else name
                what = target.__tablename__.removesuffix("s").replace("_", " ")
                found.append(
                    body_fault(loc, f"no {what} {ref!r} in this organisation", "reference")
                )
    if found:
        raise Invalid(found)


async def _apply(session: AsyncSession, table: Table, row: Any, values: Mapping[str, Any]) -> None:
    for name, value in values.items():
        if name not in table.write_only:
            setattr(row, table.renames.get(name, name), value)
    if table.derive is not None:
        organisation = await session.get(Organisation, row.org_id)
        assert organisation is not None  # the write's version bump found it
        table.derive(row, organisation, values)


def _audit_change(
    session: AsyncSession,
    principal: Principal,
    action: str,
    table: Table,
    entity_id: str,
    values: Mapping[str, Any],
) -> None:
    # Field names only, never values (a password's name, not the password); a create names
    # the fields it set, an update every field it touched (null included).
    names = [k for k, v in values.items() if v is not None or action != "create"]
    detail = {"fields": sorted(names)}
    entity = table.model.__tablename__
    version = config_version_of(session)
    who = (principal.org_id, principal.user_id)
    add_audit(session, *who, action, entity, entity_id, version=version, detail=detail)


# -- per-resource rules --------------------------------------------------------------------


def _phone_secrets(row: Phone, organisation: Organisation, values: Mapping[str, Any]) -> None:
    """Digest username = extension, realm = the organisation's SIP domain; HA1 per algorithm."""
    if row.kind == PhoneKind.REMOTE_NUMBER:
        row.sip_username = row.ha1_md5 = row.ha1_sha256 = None
        return
    row.sip_username = row.extension
    password = values.get("password")
    if password is not None:
        realm = organisation.sip_domain
        algorithms = values.get("digest_algorithms") or _digest_algorithms(row) or ALGORITHMS
        ha1 = {a: digest_ha1(row.extension, realm, password, a) for a in algorithms}
        row.ha1_sha256, row.ha1_md5 = ha1.get("SHA-256"), ha1.get("MD5")


def _digest_algorithms(row: Phone) -> list[str]:
    """The algorithms a phone has an HA1 for, in challenge order."""
    return [a for a, ha1 in (("SHA-256", row.ha1_sha256), ("MD5", row.ha1_md5)) if ha1]


def _trunk_secrets(row: Trunk, organisation: Organisation, values: Mapping[str, Any]) -> None:
    if row.auth_username is None or row.auth_realm is None:
        row.auth_ha1_md5 = row.auth_ha1_sha256 = None
        return
    password = values.get("auth_password")
    if password is not None:
        row.auth_ha1_md5 = digest_ha1(row.auth_username, row.auth_realm, password, "MD5")
        row.auth_ha1_sha256 = digest_ha1(row.auth_username, row.auth_realm, password, "SHA-256")


def _edge_settings(row: Edge, organisation: Organisation, values: Mapping[str, Any]) -> None:
    # A key left out (or null) keeps the edge's default: store only the keys given.
    row.settings = {k: v for k, v in (row.settings or {}).items() if v is not None}


async def _site_without_edges(session: AsyncSession, site: Site) -> None:
    count = await session.scalar(
        select(func.count()).select_from(Edge).where(Edge.site_id == site.id)
    )
    if count:
        raise Conflict(f"site {site.id} still has {count} edge(s): delete them or move them first")


async def _trunk_unrouted(session: AsyncSession, trunk: Trunk) -> None:
    routes = await session.execute(
        select(OutboundRoute.name, OutboundRoute.trunk_ids)
        .where(OutboundRoute.org_id == trunk.org_id)
        .limit(MAX_ROUTES_SCANNED)
    )
    names = sorted(name for name, trunk_ids in routes if trunk.id in (trunk_ids or []))
    if names:
        raise Conflict(
            f"trunk {trunk.id} is used by outbound route(s) {names}: remove it there first"
        )


TABLES: dict[str, Table] = {
    "sites": Table(Site, lambda: (Site.name,), unique=("name",), guard=_site_without_edges),
    "edges": Table(
        Edge,
        lambda: (Edge.name,),
        unique=("name",),
        refs={"site_id": Site},
        derive=_edge_settings,
        extra=lambda row: {
            "paired": row.certificate_sha256 is not None,
            "revoked": row.revoked_at is not None,
        },
    ),
    "phones": Table(
        Phone,
        lambda: (Phone.extension,),
        renames={"name": "display_name", "type": "kind"},
        unique=("extension",),
        refs={"site_id": Site},
        write_only=("password", "digest_algorithms"),
        derive=_phone_secrets,
        extra=lambda row: {"digest_algorithms": _digest_algorithms(row)},
    ),
    "trunks": Table(
        Trunk,
        lambda: (Trunk.name,),
        unique=("name",),
        refs={"site_id": Site},
        write_only=("auth_password",),
        derive=_trunk_secrets,
        extra=lambda row: {"auth_password_set": row.auth_ha1_sha256 is not None},
        guard=_trunk_unrouted,
    ),
    "dids": Table(
        Did, lambda: (Did.number,), unique=("number",), refs={"trunk_id": Trunk, "phone_id": Phone}
    ),
    "number-plans": Table(
        NumberPlan, lambda: (NumberPlan.priority, NumberPlan.name), unique=("name",)
    ),
    "outbound-routes": Table(
        OutboundRoute,
        lambda: (OutboundRoute.priority, OutboundRoute.name),
        unique=("name",),
        refs={"trunk_ids": Trunk},
    ),
    "cdrs": Table(Cdr, lambda: (Cdr.started_at.desc(),), time_column="started_at"),
    "audit-log": Table(AuditLog, lambda: (AuditLog.created_at.desc(),)),
}


def _filter(table: Table, key: str, value: Any) -> ColumnElement[bool]:
    if key == "since":
        return table.column(table.time_column) >= value  # type: ignore[no-any-return]
    if key == "until":
        return table.column(table.time_column) < value  # type: ignore[no-any-return]
    return table.column(key) == value  # type: ignore[no-any-return]


def _view(table: Table, row: Any) -> Item:
    """The row's public fields under their API names (plain values, aware UTC times)."""
    item: Item = {}
    for column in table.model.__table__.columns:
        if column.key not in HIDDEN_COLUMNS:
            item[column.key] = _plain(getattr(row, column.key))
    for api_field, column_name in table.renames.items():
        item[api_field] = item.pop(column_name)
    if table.model is AuditLog:
        item["detail"] = row.detail
    item.update(table.extra(row))
    return item


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime.datetime):
        return _aware(value)
    return value


def _aware(moment: datetime.datetime) -> datetime.datetime:
    # SQLite hands DateTime(timezone=True) back naive; every stored time is UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=datetime.UTC)
