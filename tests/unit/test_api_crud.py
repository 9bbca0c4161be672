"""The admin API's resources: create, list, get, update, delete; pagination and filters;
audit rows and config versions; edge pairing tokens and revocation; call records."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from controlplane.models import AuditLog, Did, Edge, PairingToken, Phone, Trunk
from controlplane.passwords import digest_ha1
from tests.unit.test_api_support import Api, faults, open_api, phone_body, trunk_body


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with open_api(tmp_path) as opened:
        yield opened


async def _edge_case(api: Api, site: str) -> tuple[dict[str, Any], dict[str, Any]]:
    create = {"name": "edge-1", "site_id": site, "settings": {"media_ports": "30000-30999"}}
    return create, {"settings": {"max_call_rate": "40/5s", "min_expires": 120}}


async def _phone_case(api: Api, site: str) -> tuple[dict[str, Any], dict[str, Any]]:
    return phone_body(site), {"name": "Reception"}


async def _trunk_case(api: Api, site: str) -> tuple[dict[str, Any], dict[str, Any]]:
    return trunk_body(site_id=site), {"port": 5080, "enabled": False}


async def _did_case(api: Api, site: str) -> tuple[dict[str, Any], dict[str, Any]]:
    trunk = await api.created("/trunks", trunk_body())
    phone = await api.created("/phones", phone_body(site))
    create = {"number": "+4930123456", "trunk_id": trunk["id"], "phone_id": phone["id"]}
    return create, {"description": "main line", "phone_id": None}


async def _plan_case(api: Api, site: str) -> tuple[dict[str, Any], dict[str, Any]]:
    create = {
        "name": "national",
        "pattern": r"^0([1-9]\d{5,12})$",
        "replacement": r"+49\1",
        "classification": "national",
        "priority": 10,
    }
    return create, {"replacement": r"+49\g<1>"}


async def _route_case(api: Api, site: str) -> tuple[dict[str, Any], dict[str, Any]]:
    first = await api.created("/trunks", trunk_body("first"))
    second = await api.created("/trunks", trunk_body("second", host="2001:db8::1"))
    create = {
        "name": "out",
        "classifications": ["national", "mobile"],
        "trunk_ids": [first["id"], second["id"]],
        "priority": 5,
        "enabled": True,
    }
    return create, {"trunk_ids": [second["id"], first["id"]]}


async def _site_case(api: Api, site: str) -> tuple[dict[str, Any], dict[str, Any]]:
    return {"name": "Branch", "timezone": "Europe/Berlin"}, {"description": "2nd floor"}


Case = Callable[[Api, str], Awaitable[tuple[dict[str, Any], dict[str, Any]]]]
CASES: dict[str, Case] = {
    "sites": _site_case,
    "edges": _edge_case,
    "phones": _phone_case,
    "trunks": _trunk_case,
    "dids": _did_case,
    "number-plans": _plan_case,
    "outbound-routes": _route_case,
}


@pytest.mark.parametrize("path", CASES)
async def test_each_resource_has_create_list_get_update_delete(api: Api, path: str) -> None:
    site = await api.site("Home")
    create, patch = await CASES[path](api, site)
    version = await api.store.config_version(api.org_id)
    item = await api.created(f"/{path}", create)
    assert item["id"]
    for key, value in create.items():
        if key not in {"password", "auth_password"}:
            assert item[key] == value, key
    assert await api.store.config_version(api.org_id) == version + 1

    listed = (await api.call("GET", f"/{path}")).json()
    assert item["id"] in [i["id"] for i in listed["items"]]
    assert (await api.call("GET", f"/{path}/{item['id']}")).json() == item

    updated = await api.call("PATCH", f"/{path}/{item['id']}", json=patch)
    assert updated.status_code == 200, updated.text
    for key, value in patch.items():
        assert updated.json()[key] == value
    assert (await api.call("GET", f"/{path}/{item['id']}")).json() == updated.json()

    deleted = await api.call("DELETE", f"/{path}/{item['id']}")
    assert deleted.status_code == 204
    assert (await api.call("GET", f"/{path}/{item['id']}")).status_code == 404
    assert await api.store.config_version(api.org_id) == version + 3

    async with api.store.read() as session:
        rows = list(await session.scalars(select(AuditLog).where(AuditLog.entity_id == item["id"])))
    assert sorted((r.action, r.config_version) for r in rows) == [
        ("create", version + 1),
        ("delete", version + 3),
        ("update", version + 2),
    ]
    update_row = next(r for r in rows if r.action == "update")
    assert update_row.detail == {"fields": sorted(patch)}
    assert {r.user_id for r in rows} == {await _user_id(api, "admin")}


async def _user_id(api: Api, name: str) -> str:
    from controlplane.models import AdminUser

    async with api.store.read() as session:
        user_id = await session.scalar(select(AdminUser.id).where(AdminUser.email == name))
    assert user_id is not None
    return user_id


async def test_lists_page_with_limit_and_offset_in_a_stable_order(api: Api) -> None:
    site = await api.site()
    for extension in ["105", "101", "104", "102", "103"]:
        await api.created("/phones", phone_body(site, extension))
    first = (await api.call("GET", "/phones?limit=2")).json()
    assert [p["extension"] for p in first["items"]] == ["101", "102"]
    assert (first["limit"], first["offset"], first["next_offset"]) == (2, 0, 2)
    second = (await api.call("GET", "/phones?limit=2&offset=2")).json()
    assert [p["extension"] for p in second["items"]] == ["103", "104"]
    last = (await api.call("GET", "/phones?limit=2&offset=4")).json()
    assert [p["extension"] for p in last["items"]] == ["105"]
    assert last["next_offset"] is None
    default = (await api.call("GET", "/phones")).json()
    assert default["limit"] == 100 and len(default["items"]) == 5
    for bad in ["limit=0", "limit=1001", "offset=-1", "limit=x"]:
        response = await api.call("GET", f"/phones?{bad}")
        assert response.status_code == 422, bad
        assert response.json()["detail"][0]["loc"][0] == "query"


async def test_lists_filter_by_site(api: Api) -> None:
    hq, branch = await api.site("HQ"), await api.site("Branch")
    await api.created("/phones", phone_body(hq, "100"))
    await api.created("/phones", phone_body(branch, "200"))
    await api.created("/trunks", trunk_body("hq-trunk", site_id=hq))
    await api.created("/edges", {"name": "branch-edge", "site_id": branch})
    phones = (await api.call("GET", f"/phones?site_id={branch}")).json()["items"]
    assert [p["extension"] for p in phones] == ["200"]
    trunks = (await api.call("GET", f"/trunks?site_id={branch}")).json()["items"]
    assert trunks == []
    edges = (await api.call("GET", f"/edges?site_id={branch}")).json()["items"]
    assert [e["name"] for e in edges] == ["branch-edge"]


async def test_phone_passwords_become_ha1_and_never_come_back(api: Api) -> None:
    site = await api.site()
    created = await api.call("POST", "/phones", json=phone_body(site, "100"))
    phone = created.json()
    for text in [created.text, (await api.call("GET", "/phones")).text]:
        assert "s3cret-sip-pass" not in text and "ha1" not in text
    assert phone["sip_username"] == "100"
    realm = "acme.voxedge.test"
    row = await api.store.get(api.org_id, Phone, phone["id"])
    assert row.ha1_md5 == digest_ha1("100", realm, "s3cret-sip-pass", "MD5")
    assert row.ha1_sha256 == digest_ha1("100", realm, "s3cret-sip-pass", "SHA-256")

    patched = await api.call("PATCH", f"/phones/{phone['id']}", json={"password": "n3w-pass-word"})
    assert patched.status_code == 200 and "n3w-pass-word" not in patched.text
    row = await api.store.get(api.org_id, Phone, phone["id"])
    assert row.ha1_md5 == digest_ha1("100", realm, "n3w-pass-word", "MD5")
    assert row.ha1_sha256 == digest_ha1("100", realm, "n3w-pass-word", "SHA-256")
    audit = (await api.call("GET", "/audit-log")).text
    assert "n3w-pass-word" not in audit and "s3cret-sip-pass" not in audit


async def test_a_phone_may_keep_only_the_md5_ha1(api: Api) -> None:
    site = await api.site()
    phone = await api.created("/phones", phone_body(site, "100", digest_algorithms=["MD5"]))
    assert phone["digest_algorithms"] == ["MD5"]
    row = await api.store.get(api.org_id, Phone, phone["id"])
    assert row.ha1_sha256 is None and row.ha1_md5 is not None
    # A new password keeps the phone's algorithms; new algorithms come with a password.
    await api.call("PATCH", f"/phones/{phone['id']}", json={"password": "n3w-pass-word"})
    row = await api.store.get(api.org_id, Phone, phone["id"])
    assert row.ha1_sha256 is None
    assert row.ha1_md5 == digest_ha1("100", "acme.voxedge.test", "n3w-pass-word", "MD5")
    both = {"digest_algorithms": ["MD5", "SHA-256"], "password": "n3w-pass-word"}
    patched = await api.call("PATCH", f"/phones/{phone['id']}", json=both)
    assert patched.json()["digest_algorithms"] == ["SHA-256", "MD5"]  # challenge order
    no_password = {"digest_algorithms": ["MD5"]}
    found = faults(await api.call("PATCH", f"/phones/{phone['id']}", json=no_password))
    assert "new digest_algorithms need the password" in found["body.password"]


async def test_remote_number_and_managed_phones(api: Api) -> None:
    site = await api.site()
    remote = await api.created(
        "/phones",
        {
            "name": "Mobile",
            "type": "remote_number",
            "site_id": site,
            "extension": "300",
            "remote_number": "+447700900123",
        },
    )
    assert remote["remote_number"] == "+447700900123" and remote["sip_username"] is None
    row = await api.store.get(api.org_id, Phone, remote["id"])
    assert row.ha1_md5 is None and row.ha1_sha256 is None
    managed = await api.created(
        "/phones", phone_body(site, "301", type="managed", mac_address="00-1A-2B-3C-4D-5E")
    )
    assert managed["mac_address"] == "00:1a:2b:3c:4d:5e"


async def test_trunk_digest_password_becomes_ha1(api: Api) -> None:
    body = trunk_body(auth_username="acct", auth_realm="sip.carrier.test", auth_password="pw-12345")
    created = await api.call("POST", "/trunks", json=body)
    assert created.status_code == 201 and "pw-12345" not in created.text
    trunk = created.json()
    assert trunk["auth_password_set"] is True
    row = await api.store.get(api.org_id, Trunk, trunk["id"])
    assert row.auth_ha1_md5 == digest_ha1("acct", "sip.carrier.test", "pw-12345", "MD5")
    assert row.auth_ha1_sha256 == digest_ha1("acct", "sip.carrier.test", "pw-12345", "SHA-256")
    cleared = await api.call(
        "PATCH", f"/trunks/{trunk['id']}", json={"auth_username": None, "auth_realm": None}
    )
    assert cleared.json()["auth_password_set"] is False


async def test_deleting_a_site_with_edges_is_refused(api: Api) -> None:
    site = await api.site()
    edge = await api.created("/edges", {"name": "e1", "site_id": site})
    phone = await api.created("/phones", phone_body(site))
    refused = await api.call("DELETE", f"/sites/{site}")
    assert refused.status_code == 409 and "edge" in refused.json()["detail"]
    assert (await api.call("DELETE", f"/edges/{edge['id']}")).status_code == 204
    assert (await api.call("DELETE", f"/sites/{site}")).status_code == 204
    # Phones outlive their site (FK SET NULL).
    assert (await api.call("GET", f"/phones/{phone['id']}")).json()["site_id"] is None


async def test_deleting_a_phone_nulls_the_dids_pointing_at_it(api: Api) -> None:
    phone = await api.created("/phones", phone_body(await api.site()))
    did = await api.created("/dids", {"number": "+4930555", "phone_id": phone["id"]})
    assert (await api.call("DELETE", f"/phones/{phone['id']}")).status_code == 204
    assert (await api.call("GET", f"/dids/{did['id']}")).json()["phone_id"] is None
    row = await api.store.get(api.org_id, Did, did["id"])
    assert row.phone_id is None


async def test_deleting_a_trunk_an_outbound_route_uses_is_refused(api: Api) -> None:
    trunk = await api.created("/trunks", trunk_body())
    await api.created(
        "/outbound-routes", {"name": "r", "classifications": ["x"], "trunk_ids": [trunk["id"]]}
    )
    refused = await api.call("DELETE", f"/trunks/{trunk['id']}")
    assert refused.status_code == 409 and "'r'" in refused.json()["detail"]


async def test_pairing_tokens_and_revocation_do_not_bump_the_config_version(api: Api) -> None:
    edge = await api.created("/edges", {"name": "e1", "site_id": await api.site()})
    assert (edge["paired"], edge["revoked"], edge["status"]) == (False, False, "pending")
    version = await api.store.config_version(api.org_id)

    issued = await api.call("POST", f"/edges/{edge['id']}/pairing-token")
    assert issued.status_code == 201
    token = issued.json()["token"]
    assert datetime.datetime.fromisoformat(issued.json()["expires_at"]) > api.clock.now
    async with api.store.read() as session:
        stored = list(await session.scalars(select(PairingToken.token_sha256)))
    assert len(stored) == 1 and token not in stored

    watch = api.store.config_changes.waiter(api.org_id)
    revoked = await api.call("POST", f"/edges/{edge['id']}/revoke")
    assert revoked.status_code == 200
    assert watch.is_set()  # the edge's open watch is woken to find itself refused
    assert revoked.json()["revoked"] is True and revoked.json()["status"] == "offline"
    row = await api.store.get(api.org_id, Edge, edge["id"])
    assert row.revoked_at is not None
    again = await api.call("POST", f"/edges/{edge['id']}/pairing-token")
    assert again.status_code == 409
    assert await api.store.config_version(api.org_id) == version

    async with api.store.read() as session:
        actions = list(
            await session.scalars(select(AuditLog.action).where(AuditLog.entity_id == edge["id"]))
        )
    assert sorted(actions) == ["create", "issue_pairing_token", "revoke"]
    assert token not in (await api.call("GET", "/audit-log")).text
    for path in ["pairing-token", "revoke"]:
        response = await api.call("POST", f"/edges/{edge['id']}/{path}", "telephony")
        assert response.status_code == 403


async def test_call_records_list_by_edge_and_time_range(api: Api) -> None:
    site = await api.site()
    first = await api.created("/edges", {"name": "e1", "site_id": site})
    second = await api.created("/edges", {"name": "e2", "site_id": site})
    base = datetime.datetime(2026, 11, 1, tzinfo=datetime.UTC).timestamp()
    for n, edge in enumerate([first, first, second]):
        payload = {"call_id": f"c{n}", "from_uri": "sip:a@x", "to_uri": "sip:b@x"}
        await api.store.store_cdr(
            api.org_id, edge["id"], f"k{n}", payload | {"started": base + n * 3600}
        )
    everything = (await api.call("GET", "/cdrs", "viewer")).json()["items"]
    assert [c["call_id"] for c in everything] == ["c2", "c1", "c0"]  # newest first
    mine = (await api.call("GET", f"/cdrs?edge_id={first['id']}")).json()["items"]
    assert [c["call_id"] for c in mine] == ["c1", "c0"]
    window = "since=2026-11-01T00:30:00%2B00:00&until=2026-11-01T02:00:00Z"
    assert [c["call_id"] for c in (await api.call("GET", f"/cdrs?{window}")).json()["items"]] == [
        "c1"
    ]
    one = (await api.call("GET", f"/cdrs/{everything[0]['id']}")).json()
    assert one["call_id"] == "c2" and one["edge_id"] == second["id"]
    assert (await api.call("GET", "/cdrs?since=2026-11-01T00:00:00")).status_code == 422
    assert (await api.call("POST", "/cdrs", json={})).status_code == 405


async def test_audit_log_lists_changes_newest_first(api: Api) -> None:
    await api.site("One")
    await api.site("Two")
    items = (await api.call("GET", "/audit-log?limit=2")).json()["items"]
    assert [(i["action"], i["entity_type"]) for i in items] == [
        ("create", "sites"),
        ("create", "sites"),
    ]
    assert items[0]["config_version"] > items[1]["config_version"]
    assert items[0]["detail"]["fields"] == ["description", "name", "timezone"]


async def test_an_empty_patch_changes_nothing(api: Api) -> None:
    site = await api.site()
    version = await api.store.config_version(api.org_id)
    response = await api.call("PATCH", f"/sites/{site}", json={})
    assert response.status_code == 200 and response.json()["id"] == site
    assert await api.store.config_version(api.org_id) == version


@pytest.mark.integration
async def test_the_resources_work_on_postgresql(tmp_path: Path, pg_database: str) -> None:
    async with open_api(tmp_path, pg_database) as api:
        for path, case in CASES.items():
            create, patch = await case(api, await api.site(f"site for {path}"))
            item = await api.created(f"/{path}", create)
            updated = await api.call("PATCH", f"/{path}/{item['id']}", json=patch)
            assert updated.status_code == 200, (path, updated.text)
            assert (await api.call("GET", f"/{path}?limit=1000")).status_code == 200
            assert (await api.call("GET", f"/{path}/{item['id']}", "globex")).status_code == 404
            assert (await api.call("DELETE", f"/{path}/{item['id']}")).status_code == 204
        edge = await api.created("/edges", {"name": "pg-edge", "site_id": await api.site("E")})
        assert (await api.call("POST", f"/edges/{edge['id']}/pairing-token")).status_code == 201
        assert (await api.call("POST", f"/edges/{edge['id']}/revoke")).status_code == 200
        await api.store.store_cdr(api.org_id, edge["id"], "k", {"call_id": "c", "started": 1.7e9})
        window = "since=2023-01-01T00:00:00Z&until=2030-01-01T00:00:00Z"
        cdrs = (await api.call("GET", f"/cdrs?edge_id={edge['id']}&{window}")).json()
        assert [c["call_id"] for c in cdrs["items"]] == ["c"]
        assert (await api.login("admin", organisation="acme.voxedge.test")).status_code == 200
        taken = await api.call("POST", "/sites", json={"name": "E"})
        assert "already used" in faults(taken)["body.name"]
