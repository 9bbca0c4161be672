"""The control-plane store: organisation scoping, config versions, uniqueness, migrations.

Every test runs against SQLite (the embedded default) and against a real PostgreSQL server
that the session starts for itself (the fixtures in tests/conftest.py). Each PostgreSQL test
gets a database of its own.
"""

from __future__ import annotations

import asyncio

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, select, text

from controlplane.models import (
    AdminUser,
    AuditLog,
    Base,
    Did,
    Edge,
    Organisation,
    Phone,
    PhoneKind,
    Role,
    Site,
)
from controlplane.passwords import digest_ha1, hash_password, verify_password
from controlplane.store import (
    MAX_PAGE,
    ConflictError,
    NotFoundError,
    Store,
    alembic_config,
    config_version_of,
)


async def _org(store: Store, name: str) -> Organisation:
    return await store.create_organisation(name, f"{name}.voxedge.test")


def _phone(org: Organisation, extension: str, site: Site | None = None) -> Phone:
    username = f"u{extension}"
    return Phone(
        org_id=org.id,
        site_id=site.id if site else None,
        kind=PhoneKind.GENERIC_SIP,
        extension=extension,
        sip_username=username,
        ha1_md5=digest_ha1(username, org.sip_domain, "pw"),
        ha1_sha256=digest_ha1(username, org.sip_domain, "pw", "SHA-256"),
    )


async def test_new_organisation_starts_at_config_version_zero(store: Store) -> None:
    org = await _org(store, "acme")
    assert await store.config_version(org.id) == 0


async def test_write_bumps_config_version_once_per_transaction(store: Store) -> None:
    org = await _org(store, "acme")
    async with store.write(org.id) as session:
        assert config_version_of(session) == 1
        site = Site(org_id=org.id, name="HQ")
        session.add(site)
        await session.flush()
        session.add_all([_phone(org, "1001", site), _phone(org, "1002", site)])
    assert await store.config_version(org.id) == 1
    async with store.write(org.id) as session:
        session.add(_phone(org, "1003"))
    assert await store.config_version(org.id) == 2
    assert [p.extension for p in await store.list_phones(org.id)] == ["1001", "1002", "1003"]


async def test_failed_write_rolls_back_rows_and_config_version(store: Store) -> None:
    org = await _org(store, "acme")
    with pytest.raises(RuntimeError, match="boom"):
        async with store.write(org.id) as session:
            session.add(_phone(org, "1001"))
            await session.flush()
            raise RuntimeError("boom")
    assert await store.config_version(org.id) == 0
    assert await store.list_phones(org.id) == []


async def test_write_bumps_only_its_own_organisation(store: Store) -> None:
    a, b = await _org(store, "a"), await _org(store, "b")
    async with store.write(a.id) as session:
        session.add(_phone(a, "1001"))
    assert (await store.config_version(a.id), await store.config_version(b.id)) == (1, 0)


async def test_concurrent_writes_get_distinct_consecutive_versions(store: Store) -> None:
    org = await _org(store, "acme")

    async def add(extension: str) -> int:
        async with store.write(org.id) as session:
            session.add(_phone(org, extension))
            await asyncio.sleep(0)  # let the other writers try to interleave
            return config_version_of(session)

    versions = await asyncio.gather(*(add(str(2000 + i)) for i in range(8)))
    assert sorted(versions) == list(range(1, 9))
    assert await store.config_version(org.id) == 8


async def test_write_to_unknown_organisation_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError):
        async with store.write("00000000-0000-0000-0000-000000000000"):
            pass
    with pytest.raises(NotFoundError):
        await store.config_version("00000000-0000-0000-0000-000000000000")


async def test_duplicate_extension_in_one_organisation_is_a_conflict(store: Store) -> None:
    org = await _org(store, "acme")
    async with store.write(org.id) as session:
        session.add(_phone(org, "1001"))
    with pytest.raises(ConflictError) as caught:
        async with store.write(org.id) as session:
            session.add(_phone(org, "1001"))
    assert "unique" in str(caught.value)
    assert await store.config_version(org.id) == 1  # the failed write did not count
    assert len(await store.list_phones(org.id)) == 1


async def test_same_extension_and_did_in_two_organisations_is_allowed(store: Store) -> None:
    a, b = await _org(store, "a"), await _org(store, "b")
    for org in (a, b):
        async with store.write(org.id) as session:
            session.add(_phone(org, "1001"))
            session.add(Did(org_id=org.id, number="+15550100"))
    assert len(await store.list_phones(a.id)) == len(await store.list_phones(b.id)) == 1


async def test_duplicate_did_in_one_organisation_is_a_conflict(store: Store) -> None:
    org = await _org(store, "acme")
    with pytest.raises(ConflictError):
        async with store.write(org.id) as session:
            session.add(Did(org_id=org.id, number="+15550100"))
            session.add(Did(org_id=org.id, number="+15550100"))


async def test_duplicate_organisation_name_is_a_conflict(store: Store) -> None:
    await _org(store, "acme")
    with pytest.raises(ConflictError):
        await store.create_organisation("acme", "other.voxedge.test")


async def test_reference_to_missing_row_is_a_conflict(store: Store) -> None:
    org = await _org(store, "acme")
    with pytest.raises(ConflictError, match="referenced"):
        async with store.write(org.id) as session:
            session.add(Edge(org_id=org.id, site_id="no-such-site", name="edge-1"))


async def test_queries_for_one_organisation_never_return_anothers_rows(store: Store) -> None:
    a, b = await _org(store, "a"), await _org(store, "b")
    async with store.write(a.id) as session:
        site_a = Site(org_id=a.id, name="HQ")
        session.add(site_a)
        await session.flush()
        session.add(_phone(a, "1001", site_a))
    async with store.write(b.id) as session:
        session.add(Site(org_id=b.id, name="HQ"))
        session.add(_phone(b, "2001"))

    phones_a = await store.list_phones(a.id)
    assert [(p.org_id, p.extension) for p in phones_a] == [(a.id, "1001")]
    assert [s.org_id for s in await store.list_sites(b.id)] == [b.id]
    # A site id of A used with B's org id finds nothing.
    assert await store.list_phones(b.id, site_id=site_a.id) == []
    assert await store.find_phone_by_extension(b.id, "1001") is None
    assert (await store.find_phone_by_extension(a.id, "1001")) is not None
    with pytest.raises(NotFoundError):
        await store.get(b.id, Phone, phones_a[0].id)
    assert (await store.get(a.id, Phone, phones_a[0].id)).extension == "1001"
    assert (await store.get(a.id, Organisation, a.id)).name == "a"
    with pytest.raises(NotFoundError):
        await store.get(b.id, Organisation, a.id)


async def test_list_phones_filters_by_site_and_pages(store: Store) -> None:
    org = await _org(store, "acme")
    async with store.write(org.id) as session:
        hq, branch = Site(org_id=org.id, name="HQ"), Site(org_id=org.id, name="Branch")
        session.add_all([hq, branch])
        await session.flush()
        session.add_all([_phone(org, f"10{i:02d}", hq) for i in range(5)])
        session.add(_phone(org, "2000", branch))
    assert len(await store.list_phones(org.id, site_id=hq.id)) == 5
    page = await store.list_phones(org.id, limit=2, offset=2)
    assert [p.extension for p in page] == ["1002", "1003"]
    with pytest.raises(ValueError):
        await store.list_phones(org.id, limit=0)
    assert MAX_PAGE >= 100


async def test_admin_user_password_round_trips_as_a_hash(store: Store) -> None:
    org = await _org(store, "acme")
    async with store.write(org.id) as session:
        user = AdminUser(
            org_id=org.id,
            email="ops@acme.test",
            role=Role.TELEPHONY_ADMIN,
            password_hash=hash_password("hunter2!", iterations=1_000),
        )
        session.add(user)
        await session.flush()
        session.add(
            AuditLog(
                org_id=org.id,
                user_id=user.id,
                action="create",
                entity_type="admin_user",
                entity_id=user.id,
                config_version=config_version_of(session),
            )
        )
    stored = await store.get(org.id, AdminUser, user.id)
    assert stored.role is Role.TELEPHONY_ADMIN
    assert verify_password("hunter2!", stored.password_hash)
    async with store.read() as session:
        log = (await session.scalars(select(AuditLog).where(AuditLog.org_id == org.id))).one()
    assert log.config_version == 1


async def test_deleting_an_organisation_deletes_what_it_owns(store: Store) -> None:
    org = await _org(store, "acme")
    async with store.write(org.id) as session:
        session.add(_phone(org, "1001"))
    async with store.read() as session, session.begin():
        await session.delete(await session.get(Organisation, org.id))
    async with store.read() as session:
        assert (await session.scalars(select(Phone))).all() == []


# -- migrations ---------------------------------------------------------------------------

ORG = "11111111-1111-1111-1111-111111111111"
SITE = "22222222-2222-2222-2222-222222222222"
EDGE = "33333333-3333-3333-3333-333333333333"
NOW = "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP"  # created_at, updated_at


def test_revisions_form_one_line_ending_at_head() -> None:
    scripts = ScriptDirectory.from_config(alembic_config("sqlite+aiosqlite://"))
    assert scripts.get_heads() == ["0004"]
    assert [r.revision for r in scripts.walk_revisions()] == ["0004", "0003", "0002", "0001"]


async def test_database_at_0001_upgrades_in_place_and_keeps_its_rows(bare_store: Store) -> None:
    await bare_store.migrate("0001")
    assert await bare_store.current_revision() == "0001"
    async with bare_store.engine.begin() as conn:
        # Raw SQL: the 0001 schema, not today's models.
        await conn.execute(
            text(
                "INSERT INTO organisations (id, name, sip_domain, config_version, created_at,"
                f" updated_at) VALUES (:id, 'acme', 'acme.test', 7, {NOW})"
            ),
            {"id": ORG},
        )
        await conn.execute(
            text(
                "INSERT INTO sites (id, org_id, name, description, timezone, created_at,"
                f" updated_at) VALUES (:id, :org, 'HQ', '', 'UTC', {NOW})"
            ),
            {"id": SITE, "org": ORG},
        )
        await conn.execute(
            text(
                "INSERT INTO edges (id, org_id, site_id, name, status, config_version,"
                " created_at, updated_at)"
                f" VALUES (:id, :org, :site, 'edge-1', 'online', 7, {NOW})"
            ),
            {"id": EDGE, "org": ORG, "site": SITE},
        )

    await bare_store.migrate()

    assert await bare_store.current_revision() == "0004"
    assert await bare_store.config_version(ORG) == 7
    edge = await bare_store.get(ORG, Edge, EDGE)
    assert (edge.name, edge.site_id, edge.software_version) == ("edge-1", SITE, None)
    assert edge.settings == {}  # revision 0004's server default fills existing rows
    async with bare_store.write(ORG) as session:
        (await session.get(Edge, EDGE)).software_version = "0.2.0"  # type: ignore[union-attr]
    assert (await bare_store.get(ORG, Edge, EDGE)).software_version == "0.2.0"
    assert await bare_store.config_version(ORG) == 8


async def test_migrate_twice_is_a_no_op(bare_store: Store) -> None:
    await bare_store.migrate()
    await bare_store.migrate()
    assert await bare_store.current_revision() == "0004"


async def test_migrations_at_head_match_the_models(bare_store: Store) -> None:
    await bare_store.migrate()

    def diff(conn: Connection) -> list[object]:
        return compare_metadata(MigrationContext.configure(conn), Base.metadata)

    async with bare_store.engine.connect() as conn:
        assert await conn.run_sync(diff) == []
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert set(Base.metadata.tables) <= tables
