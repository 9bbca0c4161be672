"""The durable outbox (edge/outbox.py): SQLite WAL + synchronous=FULL, idempotent, bounded."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.outbox import SCHEMA_VERSION, Outbox, OutboxError, OutboxFull

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "cache.sqlite"


@pytest.fixture
def outbox(db_path: Path) -> Iterator[Outbox]:
    with Outbox(db_path) as box:
        yield box


def test_open_sets_wal_and_synchronous_full(outbox: Outbox) -> None:
    db = outbox._db
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_open_records_schema_version_and_reopen_keeps_it(db_path: Path) -> None:
    Outbox(db_path).close()
    Outbox(db_path).close()  # second open migrates nothing and does not fail
    db = sqlite3.connect(db_path)
    try:
        rows = db.execute("SELECT component, version FROM schema_version").fetchall()
    finally:
        db.close()
    assert rows == [("outbox", SCHEMA_VERSION)]


def test_open_refuses_a_newer_schema(db_path: Path) -> None:
    Outbox(db_path).close()
    db = sqlite3.connect(db_path)
    with db:
        db.execute("UPDATE schema_version SET version = 99 WHERE component = 'outbox'")
    db.close()
    with pytest.raises(OutboxError, match="newer"):
        Outbox(db_path)


def test_put_then_pending_returns_the_item(outbox: Outbox) -> None:
    assert outbox.put("cdr", "cdr:e1:c1", {"a": 1, "b": [1.5, None, "x"]}, now=100.0)
    [item] = outbox.pending(10)
    assert (item.key, item.kind, item.created, item.attempts) == ("cdr:e1:c1", "cdr", 100.0, 0)
    assert item.payload == {"a": 1, "b": [1.5, None, "x"]}
    assert outbox.counts() == {"pending": 1, "delivered": 0}


def test_put_of_the_same_key_is_a_no_op(outbox: Outbox) -> None:
    assert outbox.put("cdr", "k", {"v": 1}, now=1.0) is True
    assert outbox.put("cdr", "k", {"v": 2}, now=2.0) is False
    [item] = outbox.pending(10)
    assert item.payload == {"v": 1}
    assert item.created == 1.0


def test_pending_is_oldest_first_and_limited(outbox: Outbox) -> None:
    for i in range(5):
        outbox.put("event", f"k{i}", {"i": i}, now=float(10 - i))  # order is by seq, not time
    assert [item.key for item in outbox.pending(3)] == ["k0", "k1", "k2"]
    outbox.mark_delivered(["k0", "k2"], now=20.0)
    assert [item.key for item in outbox.pending(10)] == ["k1", "k3", "k4"]


def test_mark_attempted_counts_attempts_on_undelivered_items(outbox: Outbox) -> None:
    outbox.put("cdr", "a", {}, now=1.0)
    outbox.put("cdr", "b", {}, now=1.0)
    assert outbox.mark_attempted(["a", "b"], now=2.0) == 2
    assert outbox.mark_attempted(["a", "unknown"], now=3.0) == 1
    items = {item.key: item for item in outbox.pending(10)}
    assert (items["a"].attempts, items["a"].last_attempt) == (2, 3.0)
    assert (items["b"].attempts, items["b"].last_attempt) == (1, 2.0)


def test_mark_delivered_is_batched_and_idempotent(outbox: Outbox) -> None:
    for key in "abc":
        outbox.put("cdr", key, {}, now=1.0)
    assert outbox.mark_delivered(["a", "b"], now=5.0) == 2
    assert outbox.mark_delivered(["a", "b", "zz"], now=6.0) == 0  # redelivery ack: no change
    assert outbox.mark_delivered([], now=6.0) == 0
    assert outbox.counts() == {"pending": 1, "delivered": 2}
    assert outbox.put("cdr", "a", {}, now=7.0) is False  # still known: not queued again


def test_purge_deletes_only_items_delivered_before_the_cutoff(outbox: Outbox) -> None:
    for key in "abcd":
        outbox.put("cdr", key, {}, now=1.0)
    outbox.mark_delivered(["a"], now=10.0)
    outbox.mark_delivered(["b"], now=20.0)
    assert outbox.purge_delivered(older_than=15.0) == 1
    assert outbox.counts() == {"pending": 2, "delivered": 1}
    assert outbox.purge_delivered(older_than=100.0) == 1
    assert outbox.counts() == {"pending": 2, "delivered": 0}
    assert [item.key for item in outbox.pending(10)] == ["c", "d"]


def test_full_outbox_raises_and_keeps_what_it_has(db_path: Path) -> None:
    with Outbox(db_path, max_pending=2) as box:
        box.put("cdr", "a", {}, now=1.0)
        box.put("cdr", "b", {}, now=1.0)
        with pytest.raises(OutboxFull, match="max_pending 2"):
            box.put("cdr", "c", {}, now=1.0)
        assert box.put("cdr", "a", {}, now=1.0) is False  # a retry of a queued key is no error
        box.mark_delivered(["a"], now=2.0)
        assert box.put("cdr", "c", {}, now=3.0)  # delivered items do not count
        assert [item.key for item in box.pending(10)] == ["b", "c"]


def test_payload_over_the_limit_is_refused_naming_the_limit(db_path: Path) -> None:
    with Outbox(db_path, max_payload_bytes=100) as box:
        assert box.put("event", "small", {"x": "y" * 50}, now=1.0)
        with pytest.raises(ValueError, match="max_payload_bytes"):
            box.put("event", "big", {"x": "é" * 50}, now=1.0)  # 100 chars of UTF-8 > 100 B
        assert box.counts()["pending"] == 1


def test_default_payload_limit_is_one_mebibyte(outbox: Outbox) -> None:
    with pytest.raises(ValueError, match="max_payload_bytes"):
        outbox.put("event", "big", {"x": "a" * (1 << 20)}, now=1.0)


@pytest.mark.parametrize(
    ("payload", "fault"),
    [({"x": float("nan")}, "JSON"), ({"x": object()}, "JSON"), ({1: "int key"}, None)],
)
def test_unserialisable_payload_is_a_value_error(
    outbox: Outbox, payload: dict[object, object], fault: str | None
) -> None:
    if fault is None:  # json turns int keys into strings: accepted, comes back as "1"
        outbox.put("event", "k", payload, now=1.0)  # type: ignore[arg-type]
        assert outbox.pending(1)[0].payload == {"1": "int key"}
    else:
        with pytest.raises(ValueError, match=fault):
            outbox.put("event", "k", payload, now=1.0)  # type: ignore[arg-type]


def test_empty_key_or_kind_is_refused(outbox: Outbox) -> None:
    with pytest.raises(ValueError, match="key"):
        outbox.put("cdr", "", {}, now=1.0)
    with pytest.raises(ValueError, match="kind"):
        outbox.put("", "k", {}, now=1.0)
    with pytest.raises(ValueError, match="key is not valid Unicode"):
        outbox.put("cdr", "cdr:\udcff", {}, now=1.0)  # a lone surrogate cannot be a TEXT key


def test_nul_control_characters_and_unicode_round_trip(db_path: Path) -> None:
    # RFC 4475 §3.1.1.4 (intmeth): NUL, BEL and DEL inside a display name.
    weird = {
        "from": '"\x00\x07\x7f caller" <sip:j.user.name@example.com>',
        "unicode": "Zoë 日本語 \U0001f4de \u200d\ufeff",
        "surrogate": "bad utf-8 \udcff kept by surrogateescape",
        "key\x00with nul": ["\x00", "\r\n"],
    }
    with Outbox(db_path) as box:
        box.put("cdr", "cdr:\x00:é", weird, now=1.0)
    with Outbox(db_path) as box:
        [item] = box.pending(1)
    assert item.key == "cdr:\x00:é"
    assert item.payload == weird


def test_items_survive_close_and_reopen(db_path: Path) -> None:
    with Outbox(db_path) as box:
        box.put("cdr", "a", {"n": 1}, now=1.0)
        box.put("cdr", "b", {"n": 2}, now=2.0)
        box.mark_attempted(["a"], now=3.0)
        box.mark_delivered(["b"], now=4.0)
    with Outbox(db_path) as box:
        [item] = box.pending(10)
        assert (item.key, item.attempts, item.payload) == ("a", 1, {"n": 1})
        assert box.counts() == {"pending": 1, "delivered": 1}


def test_put_is_durable_when_the_process_is_killed_right_after(db_path: Path) -> None:
    child = textwrap.dedent(
        f"""
        import os, signal, sys
        from pathlib import Path
        sys.path.insert(0, {str(ROOT)!r})
        from edge.outbox import Outbox
        box = Outbox(Path({str(db_path)!r}))
        box.put("cdr", "cdr:edge:crash", {{"from": "\\x00 caller"}}, now=42.0)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, timeout=30, check=False
    )
    assert result.returncode == -signal.SIGKILL, result.stderr.decode(errors="replace")
    with Outbox(db_path) as box:
        [item] = box.pending(10)
    assert (item.key, item.created, item.payload) == (
        "cdr:edge:crash",
        42.0,
        {"from": "\x00 caller"},
    )


def test_a_second_connection_reads_while_a_write_is_open(db_path: Path, outbox: Outbox) -> None:
    outbox.put("cdr", "committed", {}, now=1.0)
    writer = outbox._db
    writer.execute("BEGIN IMMEDIATE")
    writer.execute(
        "INSERT INTO outbox (key, kind, payload, created) VALUES ('uncommitted', 'cdr', '{}', 2)"
    )
    try:
        with Outbox(db_path) as reader:  # opening needs no write lock once migrated ...
            assert [i.key for i in reader.pending(10)] == [
                "committed"
            ]  # ... and reads the snapshot
            assert reader.counts() == {"pending": 1, "delivered": 0}
    finally:
        writer.execute("COMMIT")
    with Outbox(db_path) as reader:
        assert [i.key for i in reader.pending(10)] == ["committed", "uncommitted"]


def test_outbox_can_be_used_from_another_thread(outbox: Outbox) -> None:
    import threading

    errors: list[BaseException] = []

    def work() -> None:
        try:
            outbox.put("event", "from-thread", {}, now=1.0)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=30)
    assert not errors
    assert [i.key for i in outbox.pending(10)] == ["from-thread"]


def test_put_commits_while_a_reader_holds_a_snapshot(db_path: Path) -> None:
    # Under a rollback journal the COMMIT would wait for the reader's shared lock and fail
    # after busy_timeout; WAL lets the writer commit and the reader keep its snapshot.
    with Outbox(db_path, busy_timeout=0.5) as box:
        box.put("cdr", "first", {}, now=1.0)
        reader = sqlite3.connect(db_path, isolation_level=None)
        try:
            reader.execute("BEGIN")
            assert reader.execute("SELECT count(*) FROM outbox").fetchone()[0] == 1
            assert box.put("cdr", "second", {}, now=2.0)
            assert reader.execute("SELECT count(*) FROM outbox").fetchone()[0] == 1
            reader.execute("COMMIT")
            assert reader.execute("SELECT count(*) FROM outbox").fetchone()[0] == 2
        finally:
            reader.close()


def test_put_many_is_one_transaction(tmp_path: Path) -> None:
    with Outbox(tmp_path / "cache.sqlite", max_pending=3) as box:
        assert box.put_many([("cdr", "a", {}), ("cdr", "b", {}), ("cdr", "a", {})], now=1.0) == [
            True,
            True,
            False,  # the same key twice in a batch is still one item
        ]
        with pytest.raises(OutboxFull):
            box.put_many([("cdr", "c", {}), ("cdr", "d", {})], now=2.0)
        assert [item.key for item in box.pending(10)] == ["a", "b"]  # nothing of the batch
