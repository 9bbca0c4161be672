"""Durable local outbox: call records, events and recordings waiting for the control plane.

DESIGN.md principle 5 ("Nothing lost") and the Survivability flow: everything the edge owes the
control plane is first written here, in SQLite (WAL, ``synchronous=FULL``), and only then sent.
``put`` is durable when it returns: the row survives a crash of the process (and, with
``synchronous=FULL``, a power cut) the instant after. Every row carries an idempotency key;
delivery is at least once (``pending`` → send → ``mark_delivered``), and the control plane stores
each key once, so a retried send never duplicates. A retried ``put`` of a key still in the table
is a no-op. After ``purge_delivered`` removes a key, putting it again queues it again, which is
harmless for the same reason.

Threading: the methods are synchronous and may block on disk I/O (fsync), so the asyncio glue
calls them from a worker thread (``loop.run_in_executor`` / ``asyncio.to_thread``). The
connection is opened with ``check_same_thread=False`` so that thread need not be the one that
opened it; calls are serialised by a lock, so the object is safe from one thread at a time and
never corrupts state if two overlap. Other connections to the same file (e.g. a metrics reader)
may read while this one writes: WAL allows that.

The file handling (WAL, ``synchronous=FULL``, explicit transactions, the schema version per
component shared with the config snapshot cache) is edge.cache_file's; ``_MIGRATIONS[i]``
takes the outbox from version ``i`` to ``i + 1``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from edge.cache_file import CacheFile

MAX_PENDING = 1_000_000
MAX_PAYLOAD_BYTES = 1 << 20  # 1 MiB of UTF-8 JSON per item
MAX_KEY_CHARS = 512
MAX_KIND_CHARS = 64

# Pending/delivered counts are kept by triggers in the same transactions as the rows, so the
# bound check in put() is O(1) at a million rows and exact for every connection to the file.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE outbox (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            key TEXT UNIQUE NOT NULL,
            kind TEXT NOT NULL,
            payload TEXT NOT NULL,
            created REAL NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_attempt REAL,
            delivered REAL
        )""",
        "CREATE INDEX outbox_pending ON outbox(seq) WHERE delivered IS NULL",
        "CREATE INDEX outbox_delivered ON outbox(delivered) WHERE delivered IS NOT NULL",
        """CREATE TABLE outbox_counts (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            pending INTEGER NOT NULL,
            delivered INTEGER NOT NULL
        )""",
        "INSERT INTO outbox_counts (id, pending, delivered) VALUES (1, 0, 0)",
        """CREATE TRIGGER outbox_count_insert AFTER INSERT ON outbox BEGIN
            UPDATE outbox_counts SET
                pending = pending + (NEW.delivered IS NULL),
                delivered = delivered + (NEW.delivered IS NOT NULL);
        END""",
        """CREATE TRIGGER outbox_count_deliver AFTER UPDATE OF delivered ON outbox
            WHEN (OLD.delivered IS NULL) != (NEW.delivered IS NULL) BEGIN
            UPDATE outbox_counts SET
                pending = pending + (NEW.delivered IS NULL) - (OLD.delivered IS NULL),
                delivered = delivered + (NEW.delivered IS NOT NULL) - (OLD.delivered IS NOT NULL);
        END""",
        """CREATE TRIGGER outbox_count_delete AFTER DELETE ON outbox BEGIN
            UPDATE outbox_counts SET
                pending = pending - (OLD.delivered IS NULL),
                delivered = delivered - (OLD.delivered IS NOT NULL);
        END""",
    ),
)
SCHEMA_VERSION = len(_MIGRATIONS)


class OutboxError(Exception):
    """The outbox file cannot be used as asked (wrong journal mode, newer schema)."""


class OutboxFull(OutboxError):
    """``max_pending`` undelivered items are queued; the caller decides what to do."""


@dataclass(frozen=True, slots=True)
class OutboxItem:
    seq: int
    key: str
    kind: str
    payload: dict[str, object]
    created: float
    attempts: int
    last_attempt: float | None = None


def encode_payload(payload: Mapping[str, object]) -> str:
    """JSON text for ``payload``; every Python string round-trips exactly.

    ``ensure_ascii=False`` keeps text compact (control characters such as NUL are still
    escaped as ``\\u0000``). A lone surrogate, which the SIP parser's ``surrogateescape``
    decoding yields for invalid UTF-8 in a header, cannot be stored as UTF-8 text, so such a
    payload is written with ``ensure_ascii=True`` instead, which escapes it losslessly.
    """
    try:
        text = json.dumps(dict(payload), ensure_ascii=False, allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"payload is not JSON-serialisable: {exc}") from exc
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(dict(payload), ensure_ascii=True, allow_nan=False, sort_keys=True)
    return text


def _check_name(field: str, value: str, limit: int) -> None:
    if not 1 <= len(value) <= limit:
        raise ValueError(f"{field} must be 1..{limit} characters, got {len(value)}")
    try:
        value.encode("utf-8")  # a lone surrogate cannot be bound as SQLite TEXT
    except UnicodeEncodeError:
        raise ValueError(f"{field} is not valid Unicode text: {value!r}") from None


class Outbox(CacheFile):
    """The durable queue in ``path`` (normally ``cache.sqlite`` in the edge's data dir)."""

    component = "outbox"
    migrations = _MIGRATIONS
    error = OutboxError

    def __init__(
        self,
        path: Path,
        *,
        max_pending: int = MAX_PENDING,
        max_payload_bytes: int = MAX_PAYLOAD_BYTES,
        busy_timeout: float = 5.0,
    ) -> None:
        if max_pending < 1:
            raise ValueError(f"max_pending must be positive, got {max_pending}")
        if max_payload_bytes < 2:
            raise ValueError(f"max_payload_bytes too small: {max_payload_bytes}")
        self.max_pending = max_pending
        self.max_payload_bytes = max_payload_bytes
        super().__init__(path, busy_timeout=busy_timeout)

    def put(self, kind: str, key: str, payload: Mapping[str, object], now: float) -> bool:
        """Queue ``payload`` under ``key``; durable on return. False if the key is queued."""
        return self.put_many([(kind, key, payload)], now)[0]

    def put_many(
        self, items: Sequence[tuple[str, str, Mapping[str, object]]], now: float
    ) -> list[bool]:
        """Queue ``(kind, key, payload)`` items in one transaction (one fsync for all: what a
        busy edge needs when many calls end together); durable on return. Per item, False if
        its key is queued already. ``OutboxFull`` (nothing written) when they do not all fit.
        """
        rows = []
        for kind, key, payload in items:
            _check_name("kind", kind, MAX_KIND_CHARS)
            _check_name("key", key, MAX_KEY_CHARS)
            text = encode_payload(payload)
            size = len(text.encode("utf-8"))
            if size > self.max_payload_bytes:
                raise ValueError(
                    f"payload of {kind} {key!r} is {size} bytes, over max_payload_bytes "
                    f"({self.max_payload_bytes})"
                )
            rows.append((key, kind, text, now))
        added: list[bool] = []
        with self._lock, self._transaction() as db:
            pending = db.execute("SELECT pending FROM outbox_counts").fetchone()[0]
            for row in rows:
                if pending >= self.max_pending:
                    if db.execute("SELECT 1 FROM outbox WHERE key = ?", (row[0],)).fetchone():
                        added.append(False)  # already queued: a retried put is still a no-op
                        continue
                    raise OutboxFull(
                        f"outbox full: {pending} pending items (max_pending {self.max_pending})"
                    )
                cursor = db.execute(
                    "INSERT OR IGNORE INTO outbox (key, kind, payload, created) "
                    "VALUES (?, ?, ?, ?)",
                    row,
                )
                added.append(cursor.rowcount == 1)
                pending += cursor.rowcount
        return added

    def pending(self, limit: int) -> list[OutboxItem]:
        """Up to ``limit`` undelivered items, oldest (lowest ``seq``) first."""
        if limit < 1:
            raise ValueError(f"limit must be positive, got {limit}")
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, key, kind, payload, created, attempts, last_attempt FROM outbox "
                "WHERE delivered IS NULL ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()
        items = []
        for seq, key, kind, text, created, attempts, last_attempt in rows:
            payload = json.loads(text)
            if not isinstance(payload, dict):
                raise OutboxError(f"outbox row {seq} ({key!r}): payload is not a JSON object")
            items.append(OutboxItem(seq, key, kind, payload, created, attempts, last_attempt))
        return items

    def mark_attempted(self, keys: Iterable[str], now: float) -> int:
        """Count a send attempt for each undelivered key (one transaction); rows changed."""
        return self._update(
            "UPDATE outbox SET attempts = attempts + 1, last_attempt = ? "
            "WHERE key = ? AND delivered IS NULL",
            keys,
            now,
        )

    def mark_delivered(self, keys: Iterable[str], now: float) -> int:
        """Mark keys delivered (one transaction); rows newly marked. Repeats are no-ops."""
        return self._update(
            "UPDATE outbox SET delivered = ? WHERE key = ? AND delivered IS NULL", keys, now
        )

    def _update(self, sql: str, keys: Iterable[str], now: float) -> int:
        params = [(now, key) for key in keys]
        if not params:
            return 0
        with self._lock, self._transaction() as db:
            return sum(db.execute(sql, p).rowcount for p in params)

    def purge_delivered(self, older_than: float) -> int:
        """Delete items delivered before ``older_than``; how many were deleted."""
        with self._lock, self._transaction() as db:
            cursor = db.execute(
                "DELETE FROM outbox WHERE delivered IS NOT NULL AND delivered < ?", (older_than,)
            )
        return cursor.rowcount

    def counts(self) -> dict[str, int]:
        """``{"pending": n, "delivered": m}`` (delivered and not yet purged)."""
        with self._lock:
            pending, delivered = self._db.execute(
                "SELECT pending, delivered FROM outbox_counts"
            ).fetchone()
        return {"pending": int(pending), "delivered": int(delivered)}
