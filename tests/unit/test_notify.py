"""Configuration change notices: the in-process notifier, and PostgreSQL LISTEN/NOTIFY between
two stores (two processes' worth) on the throwaway cluster: delivered at commit, not on
rollback, and after the listening connection is killed the listener reconnects and wakes
every watcher (notifications may have been missed meanwhile)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
import pytest

from controlplane.models import Site
from controlplane.notify import ConfigNotifier
from controlplane.store import Store, sqlite_url
from tests.pgcluster import PG_USER

WAIT = 5.0


def test_publish_wakes_the_orgs_watchers_once_and_replaces_the_event() -> None:
    notifier = ConfigNotifier()
    a, b = notifier.waiter("a"), notifier.waiter("b")
    assert notifier.waiter("a") is a
    notifier.publish("a")
    assert a.is_set() and not b.is_set()
    assert notifier.waiter("a") is not a
    notifier.publish("nobody")  # no watcher: nothing to do


def test_publish_all_wakes_every_organisation() -> None:
    notifier = ConfigNotifier()
    events = [notifier.waiter(org) for org in ("a", "b", "c")]
    notifier.publish_all()
    assert all(event.is_set() for event in events)
    assert not notifier.waiter("a").is_set()


@pytest.fixture
async def two_stores(
    postgres_server: tuple[str, int],
) -> AsyncIterator[tuple[Store, Store, asyncpg.Connection]]:
    """Two stores on one fresh PostgreSQL database (as two replicas would be), both
    listening, and an admin connection to the cluster."""
    host, port = postgres_server
    name = f"t_{uuid.uuid4().hex}"
    admin = await asyncpg.connect(host=host, port=port, user=PG_USER, database="postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+asyncpg://{PG_USER}@{host}:{port}/{name}"
    first, second = Store(url), Store(url)
    try:
        await first.migrate()
        await first.start_change_listener(WAIT)
        await second.start_change_listener(WAIT)
        yield first, second, admin
    finally:
        await first.close()
        await second.close()
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


pg = pytest.mark.integration


@pg
async def test_a_write_on_one_store_wakes_the_other_stores_watchers(
    two_stores: tuple[Store, Store, asyncpg.Connection],
) -> None:
    first, second, _ = two_stores
    org = await first.create_organisation("acme", "acme.voxedge.test")
    woken = second.config_changes.waiter(org.id)
    other_org = second.config_changes.waiter("another-org")
    async with first.write(org.id) as session:
        session.add(Site(org_id=org.id, name="HQ"))
        await asyncio.sleep(0.2)
        assert not woken.is_set()  # not before the commit
    await asyncio.wait_for(woken.wait(), 1.0)
    assert not other_org.is_set()

    # The writer's own watchers hear it too (through its listener).
    mine = first.config_changes.waiter(org.id)
    async with first.write(org.id) as session:
        session.add(Site(org_id=org.id, name="Branch"))
    await asyncio.wait_for(mine.wait(), 1.0)


@pg
async def test_a_rolled_back_write_notifies_nobody(
    two_stores: tuple[Store, Store, asyncpg.Connection],
) -> None:
    first, second, _ = two_stores
    org = await first.create_organisation("acme", "acme.voxedge.test")
    woken = second.config_changes.waiter(org.id)
    with pytest.raises(RuntimeError):
        async with first.write(org.id) as session:
            session.add(Site(org_id=org.id, name="HQ"))
            await session.flush()
            raise RuntimeError("boom")
    await asyncio.sleep(0.3)
    assert not woken.is_set()


@pg
async def test_the_listener_reconnects_and_wakes_every_watcher(
    two_stores: tuple[Store, Store, asyncpg.Connection],
) -> None:
    first, second, admin = two_stores
    listener = second.change_listener
    assert listener is not None and listener.connection is not None
    org = await first.create_organisation("acme", "acme.voxedge.test")
    woken = second.config_changes.waiter(org.id)
    backend = listener.connection.get_server_pid()
    assert await admin.fetchval("SELECT pg_terminate_backend($1)", backend)
    # Whatever was written while it was away is unknown: every watcher is woken.
    await asyncio.wait_for(woken.wait(), WAIT)
    await asyncio.wait_for(_until(lambda: listener.connects == 2), WAIT)
    assert listener.connection is not None
    assert listener.connection.get_server_pid() != backend
    # And it listens again.
    again = second.config_changes.waiter(org.id)
    async with first.write(org.id) as session:
        session.add(Site(org_id=org.id, name="HQ"))
    await asyncio.wait_for(again.wait(), 1.0)


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.01)


async def test_sqlite_has_no_listener_and_publishes_in_process(tmp_path: Path) -> None:
    store = Store(sqlite_url(tmp_path / "cp.sqlite"))
    try:
        await store.migrate()
        await store.start_change_listener()
        assert store.change_listener is None
        org = await store.create_organisation("acme", "acme.voxedge.test")
        woken = store.config_changes.waiter(org.id)
        async with store.write(org.id) as session:
            session.add(Site(org_id=org.id, name="HQ"))
        assert woken.is_set()
    finally:
        await store.close()
