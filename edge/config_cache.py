"""The last configuration snapshot the edge applied, kept in ``DATA_DIR/cache.sqlite``.

Remote survivability (DESIGN.md, Survivability flow): an edge restarted while the control plane
is out of reach starts SIP from this snapshot and resumes ``WatchConfig`` from its version.

One row in its own table (``config_snapshot``) of the file the Outbox uses, with its own row
(``config_cache``) in the shared ``schema_version`` table. The serialised ``ConfigSnapshot``
proto is stored with its SHA-256, so a damaged row is recognised (protobuf parses much garbage
without complaint) and refused with a ``ConfigCacheError`` rather than run. ``save`` is one
``BEGIN IMMEDIATE … COMMIT`` under WAL and ``synchronous=FULL``: durable on return, and a crash
leaves either the old row or the new one, never a mix.

Threading: like the Outbox, synchronous and blocking (fsync); the asyncio glue calls it from a
worker thread. Calls are serialised by a lock.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from google.protobuf.message import DecodeError

from protos.voxedge.v1 import edge_pb2

_COMPONENT = "config_cache"
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


class ConfigCache:
    def __init__(self, path: Path, *, busy_timeout: float = 5.0) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise ConfigCacheError(f"{path}: journal_mode is {mode!r}, WAL is required")
            self._db.execute("PRAGMA synchronous=FULL")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise ConfigCacheError(f"{path}: {exc}") from exc
        except BaseException:
            self._db.close()
            raise

    def _migrate(self) -> None:
        if self._schema_version() == SCHEMA_VERSION:
            return
        with self._transaction() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS schema_version "
                "(component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
            )
            for step in _MIGRATIONS[self._schema_version() :]:
                for statement in step:
                    db.execute(statement)
            db.execute(
                "INSERT OR REPLACE INTO schema_version (component, version) VALUES (?, ?)",
                (_COMPONENT, SCHEMA_VERSION),
            )

    def _schema_version(self) -> int:
        db = self._db
        row = None
        if db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        ).fetchone():
            row = db.execute(
                "SELECT version FROM schema_version WHERE component = ?", (_COMPONENT,)
            ).fetchone()
        version = int(row[0]) if row else 0
        if version > SCHEMA_VERSION:
            raise ConfigCacheError(
                f"{self.path}: config cache schema version {version} is newer than "
                f"this edge's {SCHEMA_VERSION}"
            )
        return version

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

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

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> ConfigCache:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
