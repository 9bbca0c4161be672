"""Bad input to the admin API: 422 naming every bad field, in FastAPI's shape, never a 500;
uniqueness and references checked within the organisation."""

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


async def test_every_bad_field_is_named_in_one_answer(api: Api) -> None:
    response = await api.call(
        "POST",
        "/trunks",
        json={
            "name": " ",
            "host": "sip.carrier.example",
            "port": 70000,
            "transport": "sctp",
            "allowed_sources": ["10.0.0.1/8", "192.0.2.0/24"],
            "codecs": ["PCMU", "GSM", "PCMU"],
            "colour": "blue",
        },
    )
    found = faults(response)
    assert set(found) == {
        "body.name",
        "body.host",
        "body.port",
        "body.transport",
        "body.allowed_sources.0",
        "body.codecs",
        "body.colour",
    }
    assert "blank" in found["body.name"]
    assert "host names are not resolved" in found["body.host"]
    assert "65535" in found["body.port"]
    assert "host bits set" in found["body.allowed_sources.0"]
    assert "GSM" in found["body.codecs"]
    detail = response.json()["detail"]
    assert all(set(f) == {"loc", "msg", "type"} for f in detail)  # no echoed input
    assert next(f for f in detail if f["loc"][-1] == "colour")["type"] == "extra_forbidden"


async def test_backend_checks_are_named_together(api: Api) -> None:
    site = await api.site()
    await api.created("/phones", phone_body(site, "100"))
    response = await api.call(
        "POST", "/phones", json=phone_body("no-such-site", "100", mac_address="00:11:22:33:44:55")
    )
    found = faults(response)
    assert set(found) == {"body.extension", "body.site_id", "body.mac_address"}
    assert "already used" in found["body.extension"]
    assert "no site 'no-such-site'" in found["body.site_id"]
    assert "managed" in found["body.mac_address"]


async def test_malformed_json_and_wrong_types_are_422(api: Api) -> None:
    response = await api.client.post(
        "/api/v1/sites",
        content=b'{"name": ',
        headers={**api.headers["admin"], "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"
    assert "name" in faults(await api.call("POST", "/sites", json={"name": 5}))["body.name"] or True
    assert faults(await api.call("POST", "/sites", json=[1, 2]))
    assert faults(await api.call("POST", "/sites", json={}))["body.name"] == "Field required"


async def test_secrets_are_not_echoed_in_validation_errors(api: Api) -> None:
    body = phone_body(await api.site(), password="Zq9!x")
    response = await api.call("POST", "/phones", json=body)
    assert "body.password" in faults(response)
    assert "Zq9!x" not in response.text


@pytest.mark.parametrize(
    ("body", "field", "fault"),
    [
        ({"type": "remote_number", "password": None, "remote_number": None}, "remote_number",
         "required for remote_number"),
        ({"type": "remote_number", "remote_number": "+4930123"}, "password", "no password"),
        ({"password": None}, "password", "required for generic_sip"),
        ({"remote_number": "+4930123"}, "remote_number", "only remote_number"),
        ({"mac_address": "00:11:22:33:44:55"}, "mac_address", "only managed"),
        ({"type": "managed", "mac_address": "00:11:22:33:44"}, "mac_address", "not a MAC"),
        ({"extension": "1 0"}, "extension", "not an extension"),
        ({"extension": "100:x"}, "extension", "not an extension"),
        ({"type": "fax"}, "type", "generic_sip"),
        ({"type": "remote_number", "password": None, "remote_number": "0049301"},
         "remote_number", "E.164"),
    ],
)  # fmt: skip
async def test_phone_rules(api: Api, body: dict[str, Any], field: str, fault: str) -> None:
    response = await api.call("POST", "/phones", json=phone_body(await api.site()) | body)
    found = faults(response)
    assert fault in found[f"body.{field}"], found


async def test_a_new_extension_needs_a_new_password(api: Api) -> None:
    phone = await api.created("/phones", phone_body(await api.site()))
    found = faults(await api.call("PATCH", f"/phones/{phone['id']}", json={"extension": "200"}))
    assert "HA1" in found["body.password"]
    assert faults(await api.call("PATCH", f"/phones/{phone['id']}", json={"name": None}))


@pytest.mark.parametrize(
    ("settings", "field", "fault"),
    [
        ({"colour": 1}, "colour", "Extra inputs"),
        ({"min_expires": 0}, "min_expires", "greater than or equal to 1"),
        ({"max_expires": 10**9}, "max_expires", "less than or equal"),
        ({"min_expires": 600, "default_expires": 300}, "default_expires", "below min_expires"),
        ({"default_expires": 600, "max_expires": 300}, "max_expires", "below default_expires"),
        ({"media_ports": "20001-29999"}, "media_ports", "even"),
        ({"media_ports": "80-1000"}, "media_ports", "1024-65535"),
        ({"media_ports": "30000-20000"}, "media_ports", "at least one"),
        ({"media_ports": "lots"}, "media_ports", "FIRST-LAST"),
        ({"media_timeout": 0}, "media_timeout", "greater than 0"),
        ({"no_answer_timeout": 10**6}, "no_answer_timeout", "less than or equal"),
        ({"max_registration_rate": "40 per 5s"}, "max_registration_rate", "COUNT/WINDOW"),
        ({"max_call_rate": "0/5s"}, "max_call_rate", "greater than 0"),
        ({"max_call_rate": "5/2d"}, "max_call_rate", "COUNT/WINDOW"),
    ],
)
async def test_edge_settings_rules(
    api: Api, settings: dict[str, Any], field: str, fault: str
) -> None:
    body = {"name": "e", "site_id": await api.site(), "settings": settings}
    found = faults(await api.call("POST", "/edges", json=body))
    assert fault in found[f"body.settings.{field}"], found


async def test_edge_settings_accept_every_documented_key(api: Api) -> None:
    settings = {
        "min_expires": 60,
        "default_expires": 600,
        "max_expires": 3600,
        "media_ports": "20000-29999",
        "media_timeout": 30,
        "no_answer_timeout": 45.5,
        "max_registration_rate": "40/5s",
        "max_call_rate": "5/500ms",
    }
    edge = await api.created(
        "/edges", {"name": "e", "site_id": await api.site(), "settings": settings}
    )
    assert edge["settings"] == settings


@pytest.mark.parametrize(
    ("body", "field", "fault"),
    [
        ({"host": "carrier.example"}, "host", "not an IP address"),
        ({"port": 0}, "port", "greater than or equal to 1"),
        ({"transport": "sctp"}, "transport", "udp"),
        ({"allowed_sources": ["300.1.1.1"]}, "allowed_sources.0", "not an IP address"),
        ({"codecs": ["PCMU", "PCMU"]}, "codecs", "listed twice"),
        ({"codecs": ["pcmu"]}, "codecs", "unknown codec"),
        ({"codecs": []}, "codecs", "at least 1"),
        ({"auth_username": "acct"}, "auth_realm", "required with auth_username"),
        ({"auth_username": "acct", "auth_realm": "r"}, "auth_password", "required"),
        ({"auth_password": "12345678"}, "auth_password", "needs auth_username"),
        ({"auth_username": "a:b", "auth_realm": "r", "auth_password": "12345678"},
         "auth_username", "pattern"),
    ],
)  # fmt: skip
async def test_trunk_rules(api: Api, body: dict[str, Any], field: str, fault: str) -> None:
    found = faults(await api.call("POST", "/trunks", json=trunk_body() | body))
    assert fault in found[f"body.{field}"], found


async def test_trunk_digest_identity_changes_need_the_password(api: Api) -> None:
    body = trunk_body(auth_username="acct", auth_realm="r", auth_password="pw-12345")
    trunk = await api.created("/trunks", body)
    found = faults(await api.call("PATCH", f"/trunks/{trunk['id']}", json={"auth_realm": "other"}))
    assert "HA1" in found["body.auth_password"]


@pytest.mark.parametrize(
    ("number", "fault"),
    [
        ("4930123", "E.164"),
        ("+0301", "first not 0"),
        ("+1234567890123456", "16"),
        ("+49 30", "E.164"),
    ],
)
async def test_did_numbers_are_e164(api: Api, number: str, fault: str) -> None:
    found = faults(await api.call("POST", "/dids", json={"number": number}))
    assert fault in found["body.number"], found


async def test_did_references_and_number_are_checked(api: Api) -> None:
    await api.created("/dids", {"number": "+4930123"})
    found = faults(
        await api.call(
            "POST", "/dids", json={"number": "+4930123", "trunk_id": "nope", "phone_id": "nope"}
        )
    )
    assert set(found) == {"body.number", "body.trunk_id", "body.phone_id"}
    assert "already used" in found["body.number"]
    assert "no trunk 'nope'" in found["body.trunk_id"]
    assert "no phone 'nope'" in found["body.phone_id"]


@pytest.mark.parametrize(
    ("body", "field", "fault"),
    [
        ({"pattern": "(a+)+"}, "pattern", "nested variable quantifiers"),
        ({"pattern": "(a*)*b"}, "pattern", "nested variable quantifiers"),
        ({"pattern": r"(\d{1,3})+$"}, "pattern", "nested variable quantifiers"),
        ({"pattern": r"(\d)\1"}, "pattern", "backreferences"),
        ({"pattern": r"(?P<x>\d)(?P=x)"}, "pattern", "backreferences"),
        ({"pattern": r"(\d)?(?(1)a|b)"}, "pattern", "backreferences"),
        ({"pattern": "^(12"}, "pattern", "does not compile"),
        ({"pattern": "1" * 201}, "pattern", "200"),
        ({"pattern": r"^(\d+)$", "replacement": r"\2"}, "replacement", "invalid group reference"),
        ({"pattern": r"^(\d+)$", "replacement": r"\g<name>"}, "replacement", "unknown group"),
        ({"pattern": r"^(\d+)$", "replacement": "\\"}, "replacement", "bad escape"),
        ({"classification": "na tional"}, "classification", "not a classification"),
        ({"priority": -1}, "priority", "greater than or equal to 0"),
    ],
)
async def test_number_plan_rules(api: Api, body: dict[str, Any], field: str, fault: str) -> None:
    base = {"name": "p", "pattern": r"^\d+$", "classification": "national"}
    found = faults(await api.call("POST", "/number-plans", json=base | body))
    assert fault in found[f"body.{field}"], found


async def test_a_replacement_is_checked_against_the_stored_pattern(api: Api) -> None:
    plan = await api.created(
        "/number-plans",
        {"name": "p", "pattern": r"^0(\d+)$", "replacement": r"+49\1", "classification": "n"},
    )
    response = await api.call("PATCH", f"/number-plans/{plan['id']}", json={"pattern": r"^\d+$"})
    assert "invalid group reference 1" in faults(response)["body.replacement"]


async def test_outbound_route_rules(api: Api) -> None:
    trunk = await api.created("/trunks", trunk_body())
    found = faults(
        await api.call(
            "POST",
            "/outbound-routes",
            json={"name": "r", "classifications": [], "trunk_ids": [trunk["id"], trunk["id"]]},
        )
    )
    assert "at least 1" in found["body.classifications"]
    assert "listed twice" in found["body.trunk_ids"]
    found = faults(
        await api.call(
            "POST",
            "/outbound-routes",
            json={"name": "r", "classifications": ["n"], "trunk_ids": [trunk["id"], "gone"]},
        )
    )
    assert set(found) == {"body.trunk_ids.1"} and "no trunk 'gone'" in found["body.trunk_ids.1"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/sites", {"name": "Dup"}),
        ("/trunks", trunk_body("Dup")),
        ("/number-plans", {"name": "Dup", "pattern": "^1$", "classification": "n"}),
        ("/outbound-routes", {"name": "Dup", "classifications": ["n"], "trunk_ids": ["t"]}),
    ],
)
async def test_names_are_unique_per_organisation(api: Api, path: str, body: dict[str, Any]) -> None:
    if path == "/outbound-routes":
        body = body | {"trunk_ids": [(await api.created("/trunks", trunk_body()))["id"]]}
    first = await api.created(path, body)
    found = faults(await api.call("POST", path, json=body))
    assert "already used" in found["body.name"]
    # Renaming something else to a taken name is refused too; keeping one's own name is not.
    assert (
        await api.call("PATCH", f"{path}/{first['id']}", json={"name": "Dup"})
    ).status_code == 200
    # Another organisation may use the same name.
    assert (await api.call("POST", "/sites", "globex", json={"name": "Dup"})).status_code == 201


async def test_site_fields(api: Api) -> None:
    found = faults(
        await api.call("POST", "/sites", json={"name": "x\x00", "timezone": "Mars/Olympus"})
    )
    assert "control characters" in found["body.name"]
    assert "IANA time zone" in found["body.timezone"]


async def test_control_characters_never_reach_a_query(api: Api) -> None:
    # PostgreSQL refuses NUL in text: such input must be a 422, never a database error.
    for path in ["/phones/ab%00cd", "/phones?site_id=a%00b", "/cdrs?edge_id=%00"]:
        response = await api.call("GET", path)
        assert response.status_code == 422, path
    login = await api.login("admin\x00", organisation="acme\x00")
    assert set(faults(login)) == {"body.username", "body.organisation"}
    found = faults(
        await api.call(
            "POST",
            "/number-plans",
            json={"name": "p", "pattern": "^1\x00$", "replacement": "\x00", "classification": "n"},
        )
    )
    assert "control character" in found["body.pattern"]
    assert "control character" in found["body.replacement"]
    found = faults(await api.call("POST", "/dids", json={"number": "+49301", "trunk_id": "a\x00"}))
    assert set(found) == {"body.trunk_id"}


async def test_patch_bodies_are_checked_like_create_bodies(api: Api) -> None:
    phone = await api.created("/phones", phone_body(await api.site()))
    response = await api.call(
        "PATCH",
        f"/phones/{phone['id']}",
        json={"extension": "1 0", "password": "short", "id": "x", "name": None},
    )
    found = faults(response)
    assert set(found) == {"body.extension", "body.password", "body.id", "body.name"}
    assert "not an extension" in found["body.extension"]
    assert "at least 8" in found["body.password"]
    assert "Extra inputs" in found["body.id"]
    edge = await api.created("/edges", {"name": "e", "site_id": await api.site("B")})
    found = faults(
        await api.call("PATCH", f"/edges/{edge['id']}", json={"settings": {"media_ports": "1"}})
    )
    assert "FIRST-LAST" in found["body.settings.media_ports"]


@pytest.mark.parametrize(
    ("algorithms", "fault"),
    [
        (["SHA-512"], "unknown digest algorithm"),
        (["MD5", "MD5"], "listed twice"),
        ([], "at least 1"),
    ],
)
async def test_phone_digest_algorithms_are_known_and_listed_once(
    api: Api, algorithms: list[str], fault: str
) -> None:
    body = phone_body(await api.site(), digest_algorithms=algorithms)
    assert fault in faults(await api.call("POST", "/phones", json=body))["body.digest_algorithms"]


async def test_remote_number_phones_have_no_digest_algorithms(api: Api) -> None:
    body = {
        "name": "Mobile",
        "type": "remote_number",
        "site_id": await api.site(),
        "extension": "300",
        "remote_number": "+447700900123",
        "digest_algorithms": ["MD5"],
    }
    found = faults(await api.call("POST", "/phones", json=body))
    assert "no digest secrets" in found["body.digest_algorithms"]
