"""The admin API's authentication and roles: logins, bearer tokens, 401 and 403."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select, update

from controlplane.admins import API_TOKEN_TTL, create_admin, issue_api_token
from controlplane.models import AdminUser, ApiToken, AuditLog, Role
from controlplane.passwords import api_token_digest
from provisioning.errors import Unauthorized
from tests.unit.test_api_support import FAST, PASSWORD, START, Api, open_api, phone_body


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with open_api(tmp_path) as opened:
        yield opened


async def test_login_returns_a_token_whose_digest_alone_is_stored(api: Api) -> None:
    version = await api.store.config_version(api.org_id)
    response = await api.login("admin", organisation="acme.voxedge.test")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token", "expires_at"}
    assert datetime.datetime.fromisoformat(body["expires_at"]) == START + API_TOKEN_TTL
    async with api.store.read() as session:
        row = await session.scalar(
            select(ApiToken).where(ApiToken.token_sha256 == api_token_digest(body["token"]))
        )
        audit = list(await session.scalars(select(AuditLog).where(AuditLog.action == "login")))
    assert row is not None and row.role is Role.ADMIN
    assert body["token"] not in {row.token_sha256, row.name}
    assert audit and all(a.config_version is None for a in audit)
    assert all(body["token"] not in str(a.detail) for a in audit)
    # A login is not configuration: the edges are not fed for it.
    assert await api.store.config_version(api.org_id) == version
    assert (await api.call("GET", "/sites", "")).status_code == 401
    bearer = {"Authorization": f"Bearer {body['token']}"}
    assert (await api.client.get("/api/v1/sites", headers=bearer)).status_code == 200


async def test_wrong_username_and_wrong_password_get_the_same_401(api: Api) -> None:
    wrong_password = await api.login("admin", "not the password")
    unknown_user = await api.login("nobody", PASSWORD)
    assert wrong_password.status_code == unknown_user.status_code == 401
    assert (
        wrong_password.json() == unknown_user.json() == {"detail": "invalid username or password"}
    )
    assert wrong_password.headers["www-authenticate"] == "Bearer"


async def test_disabled_users_cannot_log_in_and_their_tokens_stop_working(api: Api) -> None:
    async with api.store.sessions() as session, session.begin():
        await session.execute(
            update(AdminUser).where(AdminUser.email == "viewer").values(disabled=True)
        )
    assert (await api.login("viewer")).status_code == 401
    assert (await api.call("GET", "/sites", "viewer")).status_code == 401


async def test_a_username_in_two_organisations_needs_the_organisation_named(api: Api) -> None:
    await create_admin(api.store, api.other_org_id, "admin", PASSWORD, iterations=FAST)
    ambiguous = await api.login("admin")
    assert ambiguous.status_code == 401
    assert "organisation" in ambiguous.json()["detail"]
    named = await api.login("admin", organisation="globex.voxedge.test")
    assert named.status_code == 200


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Bearer not-a-token", "Basic YWRtaW46eA==", "Bearer " + "x" * 600],
)
async def test_requests_without_a_valid_bearer_token_get_401(
    api: Api, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await api.client.get("/api/v1/phones", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


async def test_expired_and_revoked_tokens_get_401(api: Api) -> None:
    assert (await api.call("GET", "/sites")).status_code == 200
    api.clock.now = START + API_TOKEN_TTL
    assert (await api.call("GET", "/sites")).status_code == 401
    api.clock.now = START
    async with api.store.sessions() as session, session.begin():
        await session.execute(update(ApiToken).values(revoked_at=START))
    response = await api.call("GET", "/sites")
    assert response.status_code == 401
    assert response.json() == {"detail": "invalid, expired or revoked token"}


async def test_issue_api_token_checks_the_password_in_the_organisation(api: Api) -> None:
    token = await issue_api_token(api.store, api.org_id, "telephony", PASSWORD, START)
    response = await api.client.get("/api/v1/phones", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    with pytest.raises(Unauthorized):
        await issue_api_token(api.store, api.other_org_id, "telephony", PASSWORD, START)


async def test_viewers_read_but_do_not_write(api: Api) -> None:
    site = await api.site()
    assert (await api.call("GET", "/phones", "viewer")).status_code == 200
    assert (await api.call("GET", f"/sites/{site}", "viewer")).status_code == 200
    response = await api.call("POST", "/phones", "viewer", json=phone_body(site))
    assert response.status_code == 403
    assert "telephony_admin" in response.json()["detail"]
    assert (await api.call("DELETE", f"/sites/{site}", "viewer")).status_code == 403


async def test_telephony_admins_write_telephony_but_not_sites_edges_or_audit(api: Api) -> None:
    site = await api.site()
    await api.created("/phones", phone_body(site), "telephony")
    for method, path, body in [
        ("POST", "/sites", {"name": "Branch"}),
        ("POST", "/edges", {"name": "e", "site_id": site}),
        ("GET", "/audit-log", None),
    ]:
        response = await api.call(method, path, "telephony", json=body)
        assert response.status_code == 403, path
        assert "admin role" in response.json()["detail"]


async def test_only_admins_read_the_audit_log(api: Api) -> None:
    assert (await api.call("GET", "/audit-log", "viewer")).status_code == 403
    assert (await api.call("GET", "/audit-log")).status_code == 200


async def test_openapi_document_and_docs_are_served(api: Api) -> None:
    document = (await api.client.get("/openapi.json")).json()
    assert "/api/v1/phones/{item_id}" in document["paths"]
    assert "/api/v1/edges/{item_id}/pairing-token" in document["paths"]
    assert (await api.client.get("/docs")).status_code == 200


async def test_create_admin_refuses_a_taken_username(api: Api) -> None:
    from controlplane.store import ConflictError

    with pytest.raises(ConflictError):
        await create_admin(api.store, api.org_id, "admin", PASSWORD, iterations=FAST)
    with pytest.raises(ValueError):
        await create_admin(api.store, api.org_id, "", PASSWORD, iterations=FAST)
    user_id = await create_admin(
        api.store, api.org_id, "ops", PASSWORD, Role.VIEWER, iterations=FAST
    )
    assert isinstance(user_id, str)
    assert isinstance(Unauthorized("x"), Exception)
