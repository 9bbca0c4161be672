"""Property-based requests from the admin API's own OpenAPI document (schemathesis): whatever
an operation is sent, with a valid admin token, it never answers 5xx.

Synchronous on purpose: schemathesis calls the ASGI app on its own event-loop thread, so the
store is prepared on a loop of its own and its pooled connections are closed before the
requests start (each connection belongs to the loop it was made on).
"""

from __future__ import annotations

import asyncio
import functools
import tempfile
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings

from controlplane.admins import create_admin, issue_api_token
from controlplane.api import build_app
from controlplane.models import Edge, Site, Trunk
from controlplane.store import Store, sqlite_url
from tests.unit.test_api_support import FAST, PASSWORD, START, Clock


async def _prepare(store: Store) -> str:
    await store.migrate()
    org = await store.create_organisation("acme", "acme.voxedge.test")
    await create_admin(store, org.id, "root", PASSWORD, iterations=FAST)
    async with store.write(org.id) as session:
        # Something to find, so generated ids and bodies sometimes meet real rows.
        site = Site(org_id=org.id, name="HQ")
        session.add(site)
        await session.flush()
        session.add(Edge(org_id=org.id, site_id=site.id, name="edge-1"))
        session.add(Trunk(org_id=org.id, name="carrier", host="192.0.2.1"))
    token = await issue_api_token(store, org.id, "root", PASSWORD, START)
    await store.engine.dispose()
    return token


_DIR = tempfile.TemporaryDirectory(prefix="voxedge-schemathesis-")
STORE = Store(sqlite_url(Path(_DIR.name) / "cp.sqlite"))
schema = schemathesis.openapi.from_asgi("/openapi.json", build_app(STORE, clock=Clock()))


@functools.cache
def _token() -> str:
    """The store is prepared at the first example, not when the module is collected."""
    return asyncio.run(_prepare(STORE))


@schema.parametrize()
@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_no_operation_answers_5xx(case: schemathesis.Case[Any]) -> None:
    response = case.call(headers={"Authorization": f"Bearer {_token()}"})
    assert response.status_code < 500, (response.status_code, response.text[:500])
