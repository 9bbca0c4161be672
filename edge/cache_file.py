"""A component's tables in the edge's ``cache.sqlite``: the file handling the outbox and the
config cache share.

The file is opened in WAL mode with ``synchronous=FULL`` (a committed write survives a crash or
a power cut), without implicit transactions: every write is an explicit ``BEGIN IMMEDIATE …
COMMIT`` (the write lock up front, so no upgrade deadlock). Each component keeps its schema
version in its own row of the shared ``schema_version`` table; ``migrations[i]`` takes it from
version ``i`` to ``i + 1``, so later issues append steps rather than edit old ones. A file of a
newer schema, or one that is not SQLite, is refused with the component's error class.

Threading: the methods are synchronous and may block on fsync; the asyncio glue calls them from
a worker thread. The connection may be used from any one thread at a time (a lock serialises
calls); other connections to the file may read while it writes (WAL).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self


class CacheFile:
    """Subclasses name their ``component``, its ``migrations`` and the ``error`` they raise."""

    component: ClassVar[str]
    migrations: ClassVar[tuple[tuple[str, ...], ...]]
    error: ClassVar[type[Exception]]

    def __init__(self, path: Path, *, busy_timeout: float = 5.0) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise self.error(f"{path}: journal_mode is {mode!r}, WAL is required")
            self._db.execute("PRAGMA synchronous=FULL")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise self.error(f"{path}: {exc}") from exc
        except BaseException:
            self._db.close()
            raise

    @classmethod
    def schema_version(cls) -> int:
        return len(cls.migrations)

    def _migrate(self) -> None:
        # Read first: an up-to-date file opens without the write lock, so a reader can open
        # it while another connection is writing. Only a migration takes the lock, and then
        # reads the version again in case another process migrated meanwhile.
        if self._stored_version() == self.schema_version():
            return
        with self._transaction() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS schema_version "
                "(component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
            )
            for step in self.migrations[self._stored_version() :]:
                for statement in step:
                    db.execute(statement)
            db.execute(
                "INSERT OR REPLACE INTO schema_version (component, version) VALUES (?, ?)",
                (self.component, self.schema_version()),
            )

    def _stored_version(self) -> int:
        db = self._db
        row = None
        if db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        ).fetchone():
            row = db.execute(
                "SELECT version FROM schema_version WHERE component = ?", (self.component,)
            ).fetchone()
        version = int(row[0]) if row else 0
        if version > self.schema_version():
            raise self.error(
                f"{self.path}: {self.component} schema version {version} is newer than "
                f"this edge's {self.schema_version()}"
            )
        return version

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT; ROLLBACK on any exception."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            if db.in_transaction:  # some errors (disk full) have rolled back already
                db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
