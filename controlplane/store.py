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
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from controlplane.models import Base, Organisation, Phone, Site

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
MAX_PAGE = 1000  # every list has a limit (DESIGN principle 3)
SQLITE_BUSY_TIMEOUT_MS = 10_000

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

    async def close(self) -> None:
        await self.engine.dispose()

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
                    yield session
            except IntegrityError as exc:
                raise _conflict(exc) from exc

    # -- organisations ---------------------------------------------------------------------

    async def create_organisation(self, name: str, sip_domain: str) -> Organisation:
        org = Organisation(name=name, sip_domain=sip_domain, config_version=0)
        try:
            async with self.sessions() as session, session.begin():
                session.add(org)
        except IntegrityError as exc:
            raise _conflict(exc) from exc
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
