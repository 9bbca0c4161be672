"""The control plane's feed → the edge's ``EdgeConfig`` snapshot (pure, sans-I/O).

Two steps, both pure functions of their arguments:

- ``apply_update(current, update)``: a ``ConfigUpdate`` (full snapshot, or a delta of upserts by
  id and deletions per collection) on top of the ``ConfigSnapshot`` proto the edge holds → the
  new ``ConfigSnapshot`` proto. The edge keeps (and persists) this proto, trunks, DIDs, number
  plans and outbound routes included, even though only settings and phones are used so far.
- ``build_edge_config(snapshot, local)``: that proto merged with the local settings (listeners,
  advertise address, data dir, SIP timers — from ``--config`` or ``config.local_defaults``)
  → a validated, immutable ``EdgeConfig``.

Every refusal is a ``FeedError`` naming the field (``phones[3].extension: …``,
``edge.media_ports: …``); the caller refuses the whole update and keeps running the snapshot
it had. A zero/empty setting in the feed means "not set here": the local value stays.
Phones with digest secrets (generic SIP, WebRTC, managed) become ``config.Phone`` with one HA1
per algorithm in the order given; remote numbers, and phones without any secret, never
register and are left out of ``EdgeConfig``. Nothing here logs: HA1s never leave the objects.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Sequence
from typing import Any, Final

from edge.config import (
    _EXTENSION_RE,
    _HOSTNAME_RE,
    MAX_EXPIRES,
    MAX_PHONES,
    MAX_SECONDS,
    ConfigError,
    EdgeConfig,
    EdgeSettings,
    Listener,
    Phone,
    PhoneType,
    _is_ip,
    parse_rate,
)
from media.ports import parse_port_range
from protos.voxedge.v1 import edge_pb2
from sip import digest

MAX_OBJECTS: Final = MAX_PHONES  # per collection
MAX_NAME_CHARS: Final = 64
MAX_ID_CHARS: Final = 128
_HA1_HEX_LENGTH: Final = {
    name: hash_fn().digest_size * 2 for name, hash_fn in digest.HASHES.items()
}
_HEX_RE: Final = re.compile(r"[0-9a-fA-F]+")
_PHONE_TYPES: Final = {
    edge_pb2.PHONE_TYPE_GENERIC_SIP: PhoneType.GENERIC_SIP,
    edge_pb2.PHONE_TYPE_MANAGED: PhoneType.MANAGED,
    edge_pb2.PHONE_TYPE_WEBRTC: PhoneType.WEBRTC,
    edge_pb2.PHONE_TYPE_REMOTE_NUMBER: PhoneType.REMOTE_NUMBER,
}
# (snapshot field, delta upsert field, delta delete field) of the collections kept by id.
COLLECTIONS: Final = tuple(
    (name, f"upsert_{name}", f"delete_{name}")
    for name in ("phones", "trunks", "dids", "number_plans", "outbound_routes")
)


class FeedError(ValueError):
    """An update the edge refuses as a whole; the message names the field at fault."""


# ---------------------------------------------------------------------------- updates


def apply_update(
    current: edge_pb2.ConfigSnapshot | None, update: edge_pb2.ConfigUpdate
) -> edge_pb2.ConfigSnapshot:
    """The snapshot after ``update``; ``current`` is never modified."""
    change = update.WhichOneof("change")
    if change == "snapshot":
        snapshot = edge_pb2.ConfigSnapshot()
        snapshot.CopyFrom(update.snapshot)
        _check_ids(snapshot)
        return snapshot
    if change == "delta":
        if current is None:
            raise FeedError("delta: no snapshot to apply it to")
        return apply_delta(current, update.delta)
    raise FeedError("change: neither a snapshot nor a delta")


def apply_delta(
    current: edge_pb2.ConfigSnapshot, delta: edge_pb2.ConfigDelta
) -> edge_pb2.ConfigSnapshot:
    """Upserts replace whole objects by id (in place, new ones appended), deletions of unknown
    ids are no-ops, ``edge`` replaces the settings when set."""
    snapshot = edge_pb2.ConfigSnapshot()
    snapshot.CopyFrom(current)
    if delta.HasField("edge"):
        snapshot.edge.CopyFrom(delta.edge)
    for name, upsert_name, delete_name in COLLECTIONS:
        upserts: Sequence[Any] = getattr(delta, upsert_name)
        deletes: Sequence[str] = getattr(delta, delete_name)
        if not upserts and not deletes:
            continue
        _check_unique_ids(upserts, upsert_name)
        target = getattr(snapshot, name)
        objects = list(target)
        index = {obj.id: i for i, obj in enumerate(objects)}
        for obj in upserts:
            if obj.id in index:
                objects[index[obj.id]] = obj
            else:
                index[obj.id] = len(objects)
                objects.append(obj)
        gone = set(deletes)
        kept = [obj for obj in objects if obj.id not in gone]
        if len(kept) > MAX_OBJECTS:
            raise FeedError(f"{name}: more than {MAX_OBJECTS}")
        del target[:]
        target.extend(kept)
    return snapshot


def _check_ids(snapshot: edge_pb2.ConfigSnapshot) -> None:
    for name, _, _ in COLLECTIONS:
        objects = getattr(snapshot, name)
        if len(objects) > MAX_OBJECTS:
            raise FeedError(f"{name}: more than {MAX_OBJECTS}")
        _check_unique_ids(objects, name)


def _check_unique_ids(objects: Sequence[Any], where: str) -> None:
    seen: dict[str, int] = {}
    for i, obj in enumerate(objects):
        ident: str = obj.id
        if not ident or len(ident) > MAX_ID_CHARS:
            raise FeedError(f"{where}[{i}].id: must be 1 to {MAX_ID_CHARS} characters")
        if ident in seen:
            raise FeedError(
                f'{where}[{i}].id: duplicate id "{ident}" (also {where}[{seen[ident]}])'
            )
        seen[ident] = i


# ---------------------------------------------------------------------------- → EdgeConfig


def build_edge_config(snapshot: edge_pb2.ConfigSnapshot, local: EdgeConfig) -> EdgeConfig:
    """The ``EdgeConfig`` the edge runs: ``local``'s listeners and edge-only settings, the
    feed's organisation settings, rates and phones. Refused whole with a ``FeedError``."""
    settings = _settings(snapshot.edge, local.edge)
    phones_listener = _phones_listener(snapshot.edge, local.phones_listener)
    phones = _phones(snapshot.phones)
    return EdgeConfig(settings, phones_listener, local.trunks_listener, phones)


def _settings(feed: edge_pb2.EdgeSettings, local: EdgeSettings) -> EdgeSettings:
    changes: dict[str, Any] = {}
    if feed.name:
        if len(feed.name) > MAX_NAME_CHARS or not feed.name.isprintable():
            raise FeedError(f"edge.name: must be 1 to {MAX_NAME_CHARS} printable characters")
        changes["name"] = feed.name
    if feed.domain:
        if not _HOSTNAME_RE.fullmatch(feed.domain) and not _is_ip(feed.domain, 4):
            raise FeedError(f'edge.domain: "{feed.domain[:64]}" is not a host name or IPv4 address')
        changes["domain"] = feed.domain.lower()
    for key in ("min_expires", "max_expires", "default_expires"):
        value: int = getattr(feed, key)
        if value:
            if value > MAX_EXPIRES:
                raise FeedError(f"edge.{key}: must be at most {MAX_EXPIRES}, got {value}")
            changes[key] = value
    if feed.media_ports:
        try:
            changes["media_ports"] = parse_port_range(feed.media_ports)
        except ValueError as exc:
            raise FeedError(f"edge.media_ports: {exc}") from None
    for key in ("media_timeout", "no_answer_timeout"):
        seconds: float = getattr(feed, key)
        if seconds:
            if not (math.isfinite(seconds) and 0 < seconds <= MAX_SECONDS):
                raise FeedError(
                    f"edge.{key}: must be more than 0 and at most {MAX_SECONDS:g} seconds, "
                    f"got {seconds}"
                )
            changes[key] = float(seconds)
    merged = dataclasses.replace(local, **changes)
    if merged.min_expires > merged.default_expires:
        raise FeedError(
            f"edge.min_expires: {merged.min_expires} is above default_expires "
            f"({merged.default_expires})"
        )
    if merged.default_expires > merged.max_expires:
        raise FeedError(
            f"edge.default_expires: {merged.default_expires} is above max_expires "
            f"({merged.max_expires})"
        )
    return merged


def _phones_listener(feed: edge_pb2.EdgeSettings, local: Listener | None) -> Listener | None:
    if local is None:
        return None
    changes: dict[str, Any] = {}
    for key in ("max_registration_rate", "max_call_rate"):
        text: str = getattr(feed, key)
        if text:
            changes[key] = _parse(f"edge.{key}", text, parse_rate)
    return dataclasses.replace(local, **changes) if changes else local


def _parse(where: str, text: str, parser: Callable[[str], Any]) -> Any:
    try:
        return parser(text)
    except (ConfigError, ValueError) as exc:
        raise FeedError(f"{where}: {exc}") from None


def _phones(feed: Sequence[edge_pb2.Phone]) -> tuple[Phone, ...]:
    # The HA1s were computed by the control plane over its realm, the feed's edge.domain.
    phones: list[Phone] = []
    extensions: dict[str, int] = {}
    for i, entry in enumerate(feed):
        where = f"phones[{i}]"
        kind = _PHONE_TYPES.get(entry.type)
        if kind is None:
            raise FeedError(f"{where}.type: unknown phone type {entry.type}")
        if kind is PhoneType.REMOTE_NUMBER:
            continue  # a number called out through a trunk: it never registers
        extension = entry.extension
        if not _EXTENSION_RE.fullmatch(extension):
            raise FeedError(
                f'{where}.extension: "{extension[:40]}" must be 1 to 32 letters, digits '
                "or -.!*_+'~"
            )
        if extension in extensions:
            raise FeedError(
                f'{where}.extension: duplicate extension "{extension}" '
                f"(also phones[{extensions[extension]}])"
            )
        extensions[extension] = i
        ha1 = _secrets(entry.digest, where)
        if not ha1:
            continue  # no secret: nothing could authenticate as this phone
        name = entry.name or extension
        if len(name) > MAX_NAME_CHARS or not name.isprintable():
            raise FeedError(f"{where}.name: must be 1 to {MAX_NAME_CHARS} printable characters")
        phones.append(Phone(name, kind, extension, ha1))
    return tuple(phones)


def _secrets(secrets: Sequence[edge_pb2.DigestSecret], where: str) -> dict[str, str]:
    ha1: dict[str, str] = {}
    for k, secret in enumerate(secrets):
        at = f"{where}.digest[{k}]"
        algorithm = secret.algorithm
        length = _HA1_HEX_LENGTH.get(algorithm)
        if length is None:
            known = ", ".join(digest.HASHES)
            raise FeedError(f'{at}.algorithm: unknown "{algorithm[:32]}" (known: {known})')
        if algorithm in ha1:
            raise FeedError(f'{at}.algorithm: "{algorithm}" given twice')
        # Never echo the value: an HA1 is as good as the password for this realm.
        if len(secret.ha1) != length or not _HEX_RE.fullmatch(secret.ha1):
            raise FeedError(f"{at}.ha1: expected {length} hex digits for {algorithm}")
        ha1[algorithm] = secret.ha1.lower()
    return ha1
