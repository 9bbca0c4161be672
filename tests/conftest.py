"""Fixtures shared by unit and integration tests: the control-plane store on each backend.

PostgreSQL is a throwaway cluster the session starts for itself (tests/pgcluster.py), once for
the whole run; each test that asks for a PostgreSQL database gets a fresh one, dropped after.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from controlplane.store import Store, sqlite_url
from tests.pgcluster import drop_database, new_database, throwaway_postgres


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[tuple[str, int]]:
    """(host, port) of a throwaway cluster with a trust-auth superuser ``voxedge``."""
    with throwaway_postgres() as server:
        yield server


@pytest.fixture
async def pg_database(postgres_server: tuple[str, int]) -> AsyncIterator[str]:
    """The ``postgresql+asyncpg://`` URL of a fresh, empty database."""
    host, port = postgres_server
    url = await new_database(host, port, "t")
    try:
        yield url
    finally:
        await drop_database(host, port, url)


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)],
)
async def bare_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """A Store over an empty database (no schema yet) of each backend."""
    if request.param == "sqlite":
        store = Store(sqlite_url(tmp_path / "controlplane.sqlite"))
        try:
            yield store
        finally:
            await store.close()
        return
    # Only the sync session fixture can be asked for here (an async one would need a loop).
    host, port = request.getfixturevalue("postgres_server")
    url = await new_database(host, port, "t")
    store = Store(url)
    try:
        yield store
    finally:
        await store.close()
        await drop_database(host, port, url)


@pytest.fixture
async def store(bare_store: Store) -> Store:
    await bare_store.migrate()
    return bare_store
