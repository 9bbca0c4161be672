"""provisioning.validation and provisioning.checks, pure: field rules without HTTP."""

from __future__ import annotations

import time

import pytest

from provisioning import checks, validation


@pytest.mark.parametrize(
    "pattern",
    [
        r"^\+1([2-9]\d{9})$",
        r"^0(\d+)$",
        r"^(00|\+)(\d{6,15})$",
        r"^(\d{3})+$",
        r"^(\d+)?$",
        r"^\d{1,3}(\d{2})*$",
        r"^(?:1|2)\d*$",
        r"^(?=\d)\d+$",
    ],
)
def test_safe_patterns_are_accepted(pattern: str) -> None:
    assert validation.safe_pattern(pattern) == pattern


@pytest.mark.parametrize(
    ("pattern", "fault"),
    [
        ("(a+)+", "nested"),
        ("(a*)*", "nested"),
        ("(a?)*", "nested"),
        (r"(\d{1,3})+", "nested"),
        (r"((\d+)x)+", "nested"),
        (r"(?:(?=a)(a+))*", "nested"),
        (r"(a|(b+))+", "nested"),
        (r"(\d)\1", "backreferences"),
        (r"(?P<x>\d)(?P=x)", "backreferences"),
        (r"(a)?(?(1)b|c)", "backreferences"),
        ("[", "does not compile"),
        ("a" * 201, "longer than 200"),
    ],
)
def test_unsafe_patterns_are_refused(pattern: str, fault: str) -> None:
    with pytest.raises(ValueError, match=fault):
        validation.safe_pattern(pattern)


def test_a_refused_pattern_really_is_catastrophic_and_the_check_is_fast() -> None:
    import re

    started = time.perf_counter()
    with pytest.raises(ValueError):
        validation.safe_pattern(r"^(\d+)+$")
    assert time.perf_counter() - started < 0.05
    started = time.perf_counter()
    assert re.match(r"^(\d+)+$", "1" * 20 + "x") is None
    assert time.perf_counter() - started > 0.01  # ~2^20 ways to split twenty digits


@pytest.mark.parametrize(
    ("pattern", "replacement", "ok"),
    [
        (r"^0(\d+)$", r"+49\1", True),
        (r"^(?P<n>\d+)$", r"\g<n>", True),
        (r"^\d+$", "", True),
        (r"^0(\d+)$", r"\2", False),
        (r"^0(\d+)$", r"\g<x>", False),
        (r"^0(\d+)$", "\\", False),
        (r"^0(\d+)$", "x" * 201, False),
    ],
)
def test_replacements_must_fit_the_pattern(pattern: str, replacement: str, ok: bool) -> None:
    if ok:
        assert validation.replacement_for(pattern, replacement) == replacement
    else:
        with pytest.raises(ValueError):
            validation.replacement_for(pattern, replacement)


@pytest.mark.parametrize(
    ("check", "good", "bad"),
    [
        (
            validation.e164,
            ["+1", "+491701234567", "+123456789012345"],
            ["+0", "49", "+", "+1234567890123456"],
        ),
        (
            validation.rate,
            ["40/5s", "5/500ms", "100/1m", "3/h", "1/0.5s"],
            ["0/5s", "40/0s", "40", "40/5d", "x/s"],
        ),
        (
            validation.port_range,
            ["20000-29999", "1024-1025", "64000-65535"],
            ["20001-29999", "1000-2000", "2000-2000", "1-2-3"],
        ),
        (
            validation.ip_literal,
            ["192.0.2.1", "2001:db8::1"],
            ["host.example", "192.0.2.0/24", "[::1]"],
        ),
        (
            validation.ip_network,
            ["192.0.2.0/24", "192.0.2.7", "2001:db8::/32"],
            ["192.0.2.1/24", "x"],
        ),
        (validation.extension, ["100", "alice.smith", "a_1-2"], ["", ".1", "1 0", "a:b", "x" * 33]),
    ],
)
def test_field_rules(check: object, good: list[str], bad: list[str]) -> None:
    assert callable(check)
    for value in good:
        check(value)
    for value in bad:
        with pytest.raises(ValueError):
            check(value)


def test_mac_addresses_are_normalised() -> None:
    assert validation.mac_address("00-1A-2B-3C-4D-5E") == "00:1a:2b:3c:4d:5e"
    assert validation.mac_address("001a2b3c4d5e") == "00:1a:2b:3c:4d:5e"
    for bad in ["00:1a:2b:3c:4d", "00:1a-2b:3c:4d:5e", "zz:1a:2b:3c:4d:5e"]:
        with pytest.raises(ValueError):
            validation.mac_address(bad)


def test_codecs_must_be_known_and_listed_once() -> None:
    assert validation.codecs(["opus", "PCMU", "telephone-event"]) == [
        "opus",
        "PCMU",
        "telephone-event",
    ]
    with pytest.raises(ValueError, match="unknown"):
        validation.codecs(["GSM"])
    with pytest.raises(ValueError, match="twice"):
        validation.codecs(["PCMA", "PCMA"])


def test_phone_rules_on_update_look_at_the_current_phone() -> None:
    current = {"type": "generic_sip", "extension": "100", "remote_number": None}
    assert checks.phone_rules({"name": "x"}, current) == []
    assert checks.phone_rules({"extension": "100"}, current) == []
    [fault] = checks.phone_rules({"extension": "101"}, current)
    assert fault.loc == ("body", "password")
    remote = {"type": "remote_number", "extension": "1", "remote_number": "+4930"}
    [fault] = checks.phone_rules({"type": "webrtc", "remote_number": None}, remote)
    assert fault.loc == ("body", "password") and "webrtc" in fault.msg


def test_edge_rules_compare_only_the_expires_given() -> None:
    assert checks.edge_rules({"settings": {"min_expires": 60, "max_expires": 3600}}, None) == []
    [fault] = checks.edge_rules({"settings": {"min_expires": 600, "max_expires": 60}}, None)
    assert fault.loc == ("body", "settings", "max_expires")
    assert checks.edge_rules({}, None) == []
