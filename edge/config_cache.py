"""The last configuration snapshot the edge applied, kept in ``DATA_DIR/cache.sqlite``.

Remote survivability (DESIGN.md, Survivability flow): an edge restarted while the control plane
is out of reach starts SIP from this snapshot and resumes ``WatchConfig`` from its version.

One row in its own table (``config_snapshot``) of the file the Outbox uses, with its own row
(``config_cache``) in the shared ``schema_version`` table (edge.cache_file). The serialised
``ConfigSnapshot`` proto is stored with its SHA-256, so a damaged row is recognised (protobuf
parses much garbage without complaint) and refused with a ``ConfigCacheError`` rather than
run. ``save`` is one ``BEGIN IMMEDIATE … COMMIT`` under WAL and ``synchronous=FULL``: durable
on return, and a crash leaves either the old row or the new one, never a mix.

Threading: like the Outbox, synchronous and blocking (fsync); the asyncio glue calls it from a
worker thread. Calls are serialised by a lock.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from edge.cache_file import CacheFile
from protos.voxedge.v1 import edge_pb2

MAX_SNAPSHOT_BYTES = 256 << 20
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE config_snapshot (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            version INTEGER NOT NULL,
            snapshot BLOB NOT NULL,
            sha256 TEXT NOT NULL,
            saved REAL NOT NULL
        )""",
    ),
)
SCHEMA_VERSION = len(_MIGRATIONS)


class ConfigCacheError(Exception):
    """The cache file or its row cannot be used (damaged row, newer schema, not WAL)."""


@dataclass(frozen=True, slots=True)
class CachedSnapshot:
    version: int
    snapshot: edge_pb2.ConfigSnapshot
    saved: float


class ConfigCache(CacheFile):
    component = "config_cache"
    migrations = _MIGRATIONS
    error = ConfigCacheError

    def save(self, version: int, snapshot: edge_pb2.ConfigSnapshot, now: float) -> None:
        """Replace the cached snapshot; durable on return."""
        if not 0 <= version < 2**63:
            raise ValueError(f"version out of range: {version}")
        data = snapshot.SerializeToString()
        if len(data) > MAX_SNAPSHOT_BYTES:
            raise ValueError(f"snapshot of {len(data)} bytes is over {MAX_SNAPSHOT_BYTES}")
        digest = hashlib.sha256(data).hexdigest()
        with self._lock, self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO config_snapshot (id, version, snapshot, sha256, saved) "
                "VALUES (1, ?, ?, ?, ?)",
                (version, data, digest, now),
            )

    def load(self) -> CachedSnapshot | None:
        """The cached snapshot, None when there is none; ``ConfigCacheError`` when damaged."""
        with self._lock:
            try:
                row = self._db.execute(
                    "SELECT version, snapshot, sha256, saved FROM config_snapshot WHERE id = 1"
                ).fetchone()
            except sqlite3.DatabaseError as exc:
                raise ConfigCacheError(f"{self.path}: cannot read the snapshot: {exc}") from exc
        if row is None:
            return None
        version, data, digest, saved = row
        if not isinstance(data, bytes) or not isinstance(version, int) or version < 0:
            raise ConfigCacheError(f"{self.path}: cached snapshot row is damaged (wrong types)")
        if hashlib.sha256(data).hexdigest() != digest:
            raise ConfigCacheError(
                f"{self.path}: cached snapshot version {version} is damaged (checksum mismatch)"
            )
        snapshot = edge_pb2.ConfigSnapshot()
        try:
            snapshot.ParseFromString(data)
        except DecodeError as exc:
            raise ConfigCacheError(
                f"{self.path}: cached snapshot version {version} does not parse: {exc}"
            ) from exc
        return CachedSnapshot(version, snapshot, float(saved))
