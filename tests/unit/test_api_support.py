"""Shared set-up for the admin API tests (no tests here): a migrated SQLite store with two
organisations, an admin of each role in "acme", an admin in "globex", and their tokens."""

from __future__ import annotations

import atexit
import datetime
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from controlplane.admins import create_admin, issue_api_token
from controlplane.api import build_app
from controlplane.models import Role
from controlplane.store import Store, sqlite_url

START = datetime.datetime(2026, 11, 23, 12, 0, tzinfo=datetime.UTC)
PASSWORD = "correct horse battery"
FAST = 1_000  # PBKDF2 iterations for test users: the minimum the hash accepts


@dataclass
class Clock:
    now: datetime.datetime = START

    def __call__(self) -> datetime.datetime:
        return self.now


@dataclass
class Api:
    store: Store
    client: httpx.AsyncClient
    clock: Clock
    org_id: str
    other_org_id: str
    headers: dict[str, dict[str, str]] = field(default_factory=dict)  # by user name

    async def call(
        self, method: str, path: str, as_user: str = "admin", **kwargs: Any
    ) -> httpx.Response:
        headers = self.headers[as_user] if as_user else {}
        return await self.client.request(method, "/api/v1" + path, headers=headers, **kwargs)

    async def created(self, path: str, body: dict[str, Any], as_user: str = "admin") -> Any:
        response = await self.call("POST", path, as_user, json=body)
        assert response.status_code == 201, response.text
        return response.json()

    async def site(self, name: str = "HQ", as_user: str = "admin") -> str:
        return str((await self.created("/sites", {"name": name}, as_user))["id"])

    async def login(self, username: str, password: str = PASSWORD, **extra: Any) -> httpx.Response:
        body = {"username": username, "password": password, **extra}
        return await self.client.post("/api/v1/auth/token", json=body)


USERS = {
    "admin": ("acme", Role.ADMIN),
    "telephony": ("acme", Role.TELEPHONY_ADMIN),
    "viewer": ("acme", Role.VIEWER),
    "globex": ("globex", Role.ADMIN),
}


@dataclass(frozen=True)
class _Seed:
    """What a fresh database holds before each test: the two organisations' ids and a
    bearer token per user (USERS)."""

    org_ids: dict[str, str]
    headers: dict[str, dict[str, str]]


async def _seed(store: Store) -> _Seed:
    await store.migrate()
    orgs = {}
    for name in ("acme", "globex"):
        orgs[name] = (await store.create_organisation(name, f"{name}.voxedge.test")).id
    headers = {}
    for name, (org, role) in USERS.items():
        await create_admin(store, orgs[org], name, PASSWORD, role, iterations=FAST)
        token = await issue_api_token(store, orgs[org], name, PASSWORD, START)
        headers[name] = {"Authorization": f"Bearer {token}"}
    return _Seed(orgs, headers)


_TEMPLATE: list[tuple[Path, _Seed]] = []


async def _sqlite_template() -> tuple[Path, _Seed]:
    """A seeded SQLite file made once per process and copied for each test (migrating takes
    longer than most tests)."""
    if not _TEMPLATE:
        directory = tempfile.mkdtemp(prefix="voxedge-api-")
        atexit.register(shutil.rmtree, directory, True)
        path = Path(directory) / "template.sqlite"
        store = Store(sqlite_url(path))
        seed = await _seed(store)
        await store.close()  # the last connection's close checkpoints the WAL into the file
        _TEMPLATE.append((path, seed))
    return _TEMPLATE[0]


@asynccontextmanager
async def open_api(tmp_path: Path, database_url: str | None = None) -> AsyncIterator[Api]:
    """The API over a seeded store: a copy of the SQLite template, or the (empty)
    PostgreSQL database ``database_url`` seeded now."""
    if database_url is None:
        template, seed = await _sqlite_template()
        shutil.copyfile(template, tmp_path / "cp.sqlite")
        store = Store(sqlite_url(tmp_path / "cp.sqlite"))
    else:
        store = Store(database_url)
        seed = await _seed(store)
    clock = Clock()
    transport = httpx.ASGITransport(app=build_app(store, clock=clock))
    async with httpx.AsyncClient(transport=transport, base_url="http://cp.test") as client:
        orgs = seed.org_ids
        api = Api(store, client, clock, orgs["acme"], orgs["globex"], dict(seed.headers))
        try:
            yield api
        finally:
            await store.close()


def phone_body(site_id: str, extension: str = "100", **extra: Any) -> dict[str, Any]:
    body = {
        "name": f"Desk {extension}",
        "type": "generic_sip",
        "site_id": site_id,
        "extension": extension,
        "password": "s3cret-sip-pass",
    }
    return body | extra


def trunk_body(name: str = "carrier", **extra: Any) -> dict[str, Any]:
    body = {
        "name": name,
        "host": "192.0.2.10",
        "port": 5060,
        "transport": "udp",
        "allowed_sources": ["192.0.2.0/24"],
        "codecs": ["PCMU", "PCMA"],
        "enabled": True,
    }
    return body | extra


def faults(response: httpx.Response) -> dict[str, str]:
    """422 body as {"body.field": msg}, asserting the status."""
    assert response.status_code == 422, response.text
    return {".".join(map(str, f["loc"])): f["msg"] for f in response.json()["detail"]}
