"""edge.config_cache: the last applied snapshot in cache.sqlite, beside the Outbox."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from edge.config_cache import SCHEMA_VERSION, ConfigCache, ConfigCacheError
from edge.outbox import Outbox
from protos.voxedge.v1 import edge_pb2


def _snapshot(*extensions: str) -> edge_pb2.ConfigSnapshot:
    snapshot = edge_pb2.ConfigSnapshot(edge=edge_pb2.EdgeSettings(name="e", domain="x.example"))
    for i, extension in enumerate(extensions):
        snapshot.phones.add(id=f"p{i}", extension=extension, type=edge_pb2.PHONE_TYPE_GENERIC_SIP)
    snapshot.trunks.add(id="t1", name="carrier", outbound_proxy="192.0.2.1:5060")
    return snapshot


def test_empty_cache_loads_none(tmp_path: Path) -> None:
    with ConfigCache(tmp_path / "cache.sqlite") as cache:
        assert cache.load() is None


def test_round_trip_and_replace(tmp_path: Path) -> None:
    with ConfigCache(tmp_path / "cache.sqlite") as cache:
        cache.save(7, _snapshot("1001"), 100.0)
        cache.save(9, _snapshot("1001", "1002"), 101.0)
        cached = cache.load()
    assert cached is not None
    assert (cached.version, cached.saved) == (9, 101.0)
    assert cached.snapshot == _snapshot("1001", "1002")
    assert cached.snapshot.trunks[0].outbound_proxy == "192.0.2.1:5060"


def test_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    with ConfigCache(path) as cache:
        cache.save(3, _snapshot("1001"), 1.0)
    with ConfigCache(path) as cache:
        cached = cache.load()
    assert cached is not None and cached.version == 3
    assert [p.extension for p in cached.snapshot.phones] == ["1001"]


def test_coexists_with_the_outbox_in_one_file(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    with Outbox(path) as outbox, ConfigCache(path) as cache:
        outbox.put("cdr", "cdr:e:1", {"call_id": "1"}, 1.0)
        cache.save(5, _snapshot("1001"), 2.0)
        assert [item.key for item in outbox.pending(10)] == ["cdr:e:1"]
    # Opened the other way round, both still there.
    with ConfigCache(path) as cache, Outbox(path) as outbox:
        cached = cache.load()
        assert cached is not None and cached.version == 5
        assert outbox.counts() == {"pending": 1, "delivered": 0}
    with sqlite3.connect(path) as db:
        rows = dict(db.execute("SELECT component, version FROM schema_version"))
    assert rows == {"outbox": 1, "config_cache": SCHEMA_VERSION}


def test_damaged_row_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    with ConfigCache(path) as cache:
        cache.save(4, _snapshot("1001"), 1.0)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE config_snapshot SET snapshot = ?", (b"\x0a\x05garbage-bytes",))
    with ConfigCache(path) as cache, pytest.raises(ConfigCacheError, match="version 4 is damaged"):
        cache.load()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE config_snapshot SET snapshot = 'text', sha256 = 'x'")
    with ConfigCache(path) as cache, pytest.raises(ConfigCacheError, match="damaged"):
        cache.load()
    # A good save replaces the damaged row.
    with ConfigCache(path) as cache:
        cache.save(5, _snapshot(), 2.0)
        cached = cache.load()
    assert cached is not None and cached.version == 5


def test_checksum_matching_but_unparsable_row_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    data = b"\xff\xff\xff"
    with ConfigCache(path) as cache:
        cache.save(1, _snapshot(), 1.0)
    with sqlite3.connect(path) as db:
        db.execute(
            "UPDATE config_snapshot SET snapshot = ?, sha256 = ?",
            (data, hashlib.sha256(data).hexdigest()),
        )
    with ConfigCache(path) as cache, pytest.raises(ConfigCacheError, match="does not parse"):
        cache.load()


def test_newer_schema_and_non_database_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    with ConfigCache(path):
        pass
    with sqlite3.connect(path) as db:
        db.execute("UPDATE schema_version SET version = 99 WHERE component = 'config_cache'")
    with pytest.raises(ConfigCacheError, match="newer"):
        ConfigCache(path)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ConfigCacheError, match=r"junk\.sqlite"):
        ConfigCache(junk)


def test_bad_versions_are_refused(tmp_path: Path) -> None:
    with ConfigCache(tmp_path / "cache.sqlite") as cache:
        with pytest.raises(ValueError, match="version"):
            cache.save(-1, _snapshot(), 1.0)
        assert cache.load() is None
