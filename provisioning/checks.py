"""Rules that span fields, checked on the resource as it would be after the request.

Each check gets ``changes`` (the request's fields) and ``current`` (the resource's public
view before a PATCH, None on create) and returns every fault it finds. Field-level rules are
in ``provisioning.fields``; uniqueness and references are the backend's (they need the store).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any

from provisioning import validation
from provisioning.errors import Fault, body_fault
from provisioning.schemas import PhoneType

Check = Callable[[Mapping[str, Any], Mapping[str, Any] | None], list[Fault]]


def no_rules(changes: Mapping[str, Any], current: Mapping[str, Any] | None) -> list[Fault]:
    return []


def _changed(field: str, changes: Mapping[str, Any], current: Mapping[str, Any] | None) -> bool:
    return current is None or (field in changes and changes[field] != current.get(field))


def phone_rules(changes: Mapping[str, Any], current: Mapping[str, Any] | None) -> list[Fault]:
    """remote_number phones forward to an E.164 number and have no password; every other
    type authenticates by digest, and since HA1 = H(extension:realm:password), a new
    extension needs a new password."""
    after = {**(current or {}), **changes}
    kind = after["type"]
    password = changes.get("password")
    faults: list[Fault] = []
    if kind == PhoneType.REMOTE_NUMBER:
        if password is not None:
            faults.append(body_fault("password", "remote_number phones have no password"))
        if changes.get("digest_algorithms") is not None:
            faults.append(
                body_fault("digest_algorithms", "remote_number phones have no digest secrets")
            )
        if after.get("remote_number") is None:
            faults.append(
                body_fault("remote_number", "required for remote_number phones", "missing")
            )
    else:
        if after.get("remote_number") is not None:
            faults.append(
                body_fault("remote_number", "only remote_number phones have a remote number")
            )
        if password is None:
            if current is None or current["type"] == PhoneType.REMOTE_NUMBER:
                faults.append(body_fault("password", f"required for {kind} phones", "missing"))
            elif _changed("extension", changes, current):
                faults.append(
                    body_fault(
                        "password",
                        "a new extension needs a new password (the digest HA1 covers the username)",
                        "missing",
                    )
                )
            elif changes.get("digest_algorithms") is not None:
                faults.append(
                    body_fault(
                        "password",
                        "new digest_algorithms need the password (each HA1 is computed from it)",
                        "missing",
                    )
                )
    if after.get("mac_address") is not None and kind != PhoneType.MANAGED:
        faults.append(body_fault("mac_address", "only managed phones have a MAC address"))
    return faults


def trunk_rules(changes: Mapping[str, Any], current: Mapping[str, Any] | None) -> list[Fault]:
    """Digest toward the carrier needs username, realm and password together; the HA1 covers
    username and realm, so changing either needs the password again."""
    after = {**(current or {}), **changes}
    user, realm = after.get("auth_username"), after.get("auth_realm")
    password = changes.get("auth_password")
    faults: list[Fault] = []
    if user is None and realm is not None:
        faults.append(body_fault("auth_username", "required with auth_realm", "missing"))
    if realm is None and user is not None:
        faults.append(body_fault("auth_realm", "required with auth_username", "missing"))
    if user is None or realm is None:
        if password is not None:
            faults.append(
                body_fault("auth_password", "needs auth_username and auth_realm to be set")
            )
    elif password is None and (
        _changed("auth_username", changes, current) or _changed("auth_realm", changes, current)
    ):
        faults.append(
            body_fault(
                "auth_password",
                "required when auth_username or auth_realm is set or changed (the HA1 covers both)",
                "missing",
            )
        )
    return faults


def number_plan_rules(changes: Mapping[str, Any], current: Mapping[str, Any] | None) -> list[Fault]:
    after = {**(current or {}), **changes}
    try:
        validation.replacement_for(after["pattern"], after.get("replacement") or "")
    except ValueError as exc:
        return [body_fault("replacement", str(exc))]
    return []


_EXPIRES_ORDER = ("min_expires", "default_expires", "max_expires")


def edge_rules(changes: Mapping[str, Any], current: Mapping[str, Any] | None) -> list[Fault]:
    """min_expires <= default_expires <= max_expires, among the keys given (a key left out
    keeps the edge's default, which the edge checks against the others itself)."""
    settings = changes.get("settings")
    if not isinstance(settings, Mapping):
        return []
    given = [(k, settings[k]) for k in _EXPIRES_ORDER if settings.get(k) is not None]
    faults = []
    for (low_key, low), (high_key, high) in itertools.pairwise(given):
        if low > high:
            faults.append(
                body_fault(("settings", high_key), f"{high_key} {high} is below {low_key} {low}")
            )
    return faults
