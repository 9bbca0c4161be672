"""Organisation scoping in the admin API: globex can neither read, list, change, delete nor
reference acme's rows; another organisation's id is a 404, never a 403 and never data."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_api_support import Api, faults, open_api, phone_body, trunk_body


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with open_api(tmp_path) as opened:
        yield opened


async def _acme_rows(api: Api) -> dict[str, dict[str, Any]]:
    site = await api.site()
    trunk = await api.created("/trunks", trunk_body())
    phone = await api.created("/phones", phone_body(site))
    return {
        "sites": {"id": site},
        "edges": await api.created("/edges", {"name": "e1", "site_id": site}),
        "phones": phone,
        "trunks": trunk,
        "dids": await api.created("/dids", {"number": "+4930123", "trunk_id": trunk["id"]}),
        "number-plans": await api.created(
            "/number-plans", {"name": "p", "pattern": "^1$", "classification": "n"}
        ),
        "outbound-routes": await api.created(
            "/outbound-routes", {"name": "r", "classifications": ["n"], "trunk_ids": [trunk["id"]]}
        ),
    }


async def test_another_organisation_cannot_see_or_touch_the_rows(api: Api) -> None:
    rows = await _acme_rows(api)
    await api.store.store_cdr(
        api.org_id,
        rows["edges"]["id"],
        "k1",
        {"call_id": "c1", "from_uri": "a", "to_uri": "b", "started": 1.7e9},
    )
    cdr = (await api.call("GET", "/cdrs")).json()["items"][0]
    version = await api.store.config_version(api.org_id)
    for path, row in [*rows.items(), ("cdrs", cdr)]:
        url = f"/{path}/{row['id']}"
        listed = await api.call("GET", f"/{path}", "globex")
        assert listed.status_code == 200 and listed.json()["items"] == [], path
        response = await api.call("GET", url, "globex")
        assert response.status_code == 404, path
        assert row["id"] in response.json()["detail"]
        if path != "cdrs":
            assert (await api.call("PATCH", url, "globex", json={})).status_code == 404
            assert (await api.call("DELETE", url, "globex")).status_code == 404
        assert (await api.call("GET", url)).status_code == 200, path  # still there for acme
    for action in ["pairing-token", "revoke"]:
        url = f"/edges/{rows['edges']['id']}/{action}"
        assert (await api.call("POST", url, "globex")).status_code == 404
    audit = (await api.call("GET", "/audit-log", "globex")).json()["items"]
    assert {i["entity_type"] for i in audit} == {"admin_users", "api_tokens"}  # its own only
    assert await api.store.config_version(api.org_id) == version
    assert (await api.call("GET", f"/phones?site_id={rows['sites']['id']}", "globex")).json()[
        "items"
    ] == []


async def test_another_organisation_cannot_reference_the_rows(api: Api) -> None:
    rows = await _acme_rows(api)
    own_site = (await api.created("/sites", {"name": "G"}, "globex"))["id"]
    trunk_id, phone_id = rows["trunks"]["id"], rows["phones"]["id"]
    cases = [
        ("/dids", {"number": "+4930999", "trunk_id": trunk_id, "phone_id": phone_id},
         {"body.trunk_id", "body.phone_id"}),
        ("/outbound-routes", {"name": "r", "classifications": ["n"], "trunk_ids": [trunk_id]},
         {"body.trunk_ids.0"}),
        ("/phones", phone_body(rows["sites"]["id"]), {"body.site_id"}),
        ("/edges", {"name": "e", "site_id": rows["sites"]["id"]}, {"body.site_id"}),
        ("/trunks", trunk_body(site_id=rows["sites"]["id"]), {"body.site_id"}),
    ]  # fmt: skip
    for path, body, bad in cases:
        found = faults(await api.call("POST", path, "globex", json=body))
        assert set(found) == bad, (path, found)
        assert all("in this organisation" in found[f] for f in bad)
    own = await api.created("/phones", phone_body(own_site), "globex")
    moved = await api.call(
        "PATCH", f"/phones/{own['id']}", "globex", json={"site_id": rows["sites"]["id"]}
    )
    assert set(faults(moved)) == {"body.site_id"}
    # The same extension and names are free in another organisation.
    assert own["extension"] == rows["phones"]["extension"]
