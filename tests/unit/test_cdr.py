"""Call detail records (edge/cdr.py): wire form, validation, idempotency key, outbox round trip."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.cdr import END_CAUSES, CallRecord, LegRecord, LegRole, write_cdrs
from edge.outbox import Outbox, encode_payload


def leg(role: LegRole = "caller", **changes: Any) -> LegRecord:
    base = LegRecord(
        role="caller",
        sip_call_id="a84b4c76e66710@pc33.example.com",
        from_uri="sip:alice@example.com",
        to_uri="sip:bob@example.com",
        remote="192.0.2.10:40000",
        codec="PCMU",
        packets_sent=500,
        packets_received=498,
        bytes_sent=86_000,
        bytes_received=85_656,
        packets_lost=2,
        jitter_ms=3.5,
    )
    return dataclasses.replace(base, role=role, **changes)


def record(**changes: Any) -> CallRecord:
    base = CallRecord(
        call_id="c-0001",
        org="org-1",
        edge="edge-1",
        legs=(leg("caller"), leg("callee", remote="198.51.100.7:30000", codec=None)),
        from_uri="sip:alice@example.com",
        to_uri="sip:bob@example.com",
        started=1_700_000_000.25,
        answered=1_700_000_003.5,
        ended=1_700_000_063.75,
        end_cause="normal",
        sip_code=200,
        hung_up_by="callee",
    )
    return dataclasses.replace(base, **changes)


def test_payload_is_json_ready_with_schema_and_float_times() -> None:
    payload = record(started=1_700_000_000).to_payload()
    assert payload["schema"] == 1
    assert isinstance(payload["started"], float)
    assert json.loads(json.dumps(payload)) == payload


def test_payload_round_trips() -> None:
    rec = record()
    assert CallRecord.from_payload(rec.to_payload()) == rec
    unanswered = record(answered=None, end_cause="no-answer", sip_code=480, hung_up_by=None)
    assert CallRecord.from_payload(unanswered.to_payload()) == unanswered


def test_idempotency_key_depends_only_on_edge_and_call_id() -> None:
    rec = record()
    assert rec.idempotency_key == "cdr:edge-1:c-0001"
    assert record(ended=rec.ended + 5, end_cause="failed").idempotency_key == rec.idempotency_key
    assert record(call_id="c-0002").idempotency_key != rec.idempotency_key
    assert record(edge="edge-2").idempotency_key != rec.idempotency_key
    assert record(org="", edge="").idempotency_key == "cdr::c-0001"  # standalone edge


def test_write_cdr_round_trips_through_the_outbox_once(tmp_path: Path) -> None:
    rec = record(
        # RFC 4475 §3.1.1.4 (intmeth): NUL, BEL, DEL in the display name reach the From.
        legs=(leg(from_uri='"\x00\x07\x7f" <sip:j_user@example.com>'),),
        from_uri='"\x00\x07\x7f" <sip:j_user@example.com>',
    )
    with Outbox(tmp_path / "cache.sqlite") as box:
        assert write_cdrs(box, [rec], now=10.0) == [True]
        assert write_cdrs(box, [rec], now=11.0) == [False]  # retried after a crash: no duplicate
    with Outbox(tmp_path / "cache.sqlite") as box:
        [item] = box.pending(10)
    assert (item.kind, item.key) == ("cdr", rec.idempotency_key)
    assert CallRecord.from_payload(item.payload) == rec


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("call_id", 7, "'call_id': must be a string"),
        ("call_id", "", "'call_id': must not be empty"),
        ("started", "yesterday", "'started': must be a number"),
        ("started", True, "'started': must be a number"),
        ("answered", "now", "'answered': must be a number"),
        ("ended", float("inf"), "'ended': must be finite"),
        ("end_cause", "hung-up", "'end_cause': must be one of"),
        ("sip_code", 200.0, "'sip_code': must be an integer"),
        ("sip_code", 99, "'sip_code': must be a SIP status code"),
        ("hung_up_by", "nobody", "'hung_up_by': must be one of"),
        ("legs", {}, "'legs': must be a list"),
        ("legs", ["x"], r"'legs\[0\]': must be an object"),
        ("schema", 2, "'schema': unsupported version"),
    ],
)
def test_from_payload_names_the_bad_field(field: str, value: object, message: str) -> None:
    payload = record().to_payload()
    payload[field] = value
    with pytest.raises(ValueError, match=message):
        CallRecord.from_payload(payload)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("role", "bystander", r"'legs\[1\]\.role': must be one of"),
        ("codec", 0, r"'legs\[1\]\.codec': must be a string"),
        ("packets_sent", -1, r"'legs\[1\]\.packets_sent': must be at least 0"),
        ("bytes_received", "many", r"'legs\[1\]\.bytes_received': must be an integer"),
        ("jitter_ms", -0.5, r"'legs\[1\]\.jitter_ms': must be at least 0"),
    ],
)
def test_from_payload_names_the_bad_leg_field(field: str, value: object, message: str) -> None:
    payload = record().to_payload()
    legs = payload["legs"]
    assert isinstance(legs, list)
    legs[1][field] = value
    with pytest.raises(ValueError, match=message):
        CallRecord.from_payload(payload)


@pytest.mark.parametrize("field", ["call_id", "legs", "end_cause", "schema", "hung_up_by"])
def test_from_payload_names_a_missing_field(field: str) -> None:
    payload = record().to_payload()
    del payload[field]
    with pytest.raises(ValueError, match=f"'{field}': missing"):
        CallRecord.from_payload(payload)


def test_from_payload_ignores_unknown_fields() -> None:
    payload = record().to_payload()
    payload["added_by_a_newer_edge"] = {"x": 1}
    assert CallRecord.from_payload(payload) == record()


def test_negative_packets_lost_is_allowed() -> None:
    # RFC 3550 App. A.3: cumulative loss goes negative when duplicates arrive.
    rec = record(legs=(leg(packets_lost=-3),))
    assert CallRecord.from_payload(rec.to_payload()) == rec


def test_construction_refuses_bad_values_naming_the_field() -> None:
    with pytest.raises(ValueError, match="'packets_received'"):
        leg(packets_received=-1)
    with pytest.raises(ValueError, match="'legs'"):
        record(legs=(leg(),) * 65)


def test_clock_steps_do_not_make_a_record_unwritable() -> None:
    # Wall-clock times may step back mid-call (NTP); refusing the record would lose it.
    rec = record(started=100.0, answered=90.0, ended=80.0)
    assert CallRecord.from_payload(rec.to_payload()) == rec


# Any code point, surrogates included (the SIP parser's surrogateescape decoding makes them),
# with NUL/BEL/DEL and a lone surrogate drawn often.
_chars = st.characters(exclude_categories=()) | st.sampled_from("\x00\x07\x7f\udcff")
_text = st.text(alphabet=_chars, max_size=40)
_times = st.floats(min_value=0, max_value=4e9, allow_nan=False, allow_infinity=False)
_counts = st.integers(min_value=0, max_value=2**63 - 1)

_legs = st.builds(
    LegRecord,
    role=st.sampled_from(["caller", "callee"]),
    sip_call_id=_text,
    from_uri=_text,
    to_uri=_text,
    remote=_text,
    codec=st.none() | _text,
    packets_sent=_counts,
    packets_received=_counts,
    bytes_sent=_counts,
    bytes_received=_counts,
    packets_lost=st.integers(min_value=-(2**23), max_value=2**23 - 1),
    jitter_ms=st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False),
)
_records = st.builds(
    CallRecord,
    call_id=st.text(alphabet=_chars, min_size=1, max_size=40),
    org=_text,
    edge=_text,
    legs=st.lists(_legs, max_size=3).map(tuple),
    from_uri=_text,
    to_uri=_text,
    started=_times,
    answered=st.none() | _times,
    ended=_times,
    end_cause=st.sampled_from(sorted(END_CAUSES)),
    sip_code=st.integers(min_value=100, max_value=699),
    hung_up_by=st.none() | st.sampled_from(["caller", "callee", "edge"]),
)


@given(_records)
def test_payload_round_trips_through_json(rec: CallRecord) -> None:
    wire = json.loads(encode_payload(rec.to_payload()))
    assert CallRecord.from_payload(wire) == rec
