"""The call record built from a call and its relay counters (edge.callmedia.call_record)."""

from __future__ import annotations

from typing import cast

from edge.call_model import Branch, Call, Leg
from edge.callmedia import call_record
from edge.cdr import CallRecord
from media.relay import DirectionStats, ReceptionReport, RelayStats
from sip.flow import Flow
from sip.message import Request
from sip.parser import parse_message
from sip.transaction import ClientTransaction, ServerTransaction

FLOW_A = Flow("udp", ("127.0.0.1", 7001), ("127.0.0.1", 5060))
FLOW_B = Flow("udp", ("127.0.0.1", 7002), ("127.0.0.1", 5060))


def _call() -> Call:
    invite = parse_message(
        b"INVITE sip:1002@voxedge.test SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:7001;branch=z9hG4bKx\r\n"
        b"From: <sip:1001@voxedge.test>;tag=a\r\nTo: <sip:1002@voxedge.test>\r\n"
        b"Call-ID: a-side\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    )
    assert isinstance(invite, Request)
    a = Leg("a", FLOW_A, "sip:1001@voxedge.test")
    b = Leg("b", FLOW_B, "sip:1002@voxedge.test")
    call = Call(invite, ServerTransaction.__new__(ServerTransaction), a, b, 1000.0)
    branch = Branch(Request("INVITE", "sip:bob@127.0.0.1:7002"), FLOW_B)
    branch.request.headers.add("Call-ID", "b-side")
    call.forks.branches[cast(ClientTransaction, object())] = branch
    call.forks.winner = branch
    return call


def test_answered_call_record_has_both_legs_and_their_counters() -> None:
    call = _call()
    call.answered, call.ended, call.sip_code, call.codec = 1002.0, 1010.0, 200, "PCMU"
    call.hung_up_by = "callee"
    call.a.media_address = ("10.1.1.1", 4000)
    stats = RelayStats(
        a_to_b=DirectionStats(400, 68_800, 0, 0),
        b_to_a=DirectionStats(390, 67_080, 3, 0),
        source_a=("10.1.1.1", 4000),
        source_b=("10.2.2.2", 5000),
        last_rx_a=1.0,
        last_rx_b=1.0,
        report_a=ReceptionReport(cumulative_lost=3, fraction_lost=0.01, jitter_ms=2.5),
    )
    record = call_record(call, "edge-1", stats)
    assert CallRecord.from_payload(record.to_payload()) == record  # a valid, complete record
    caller, callee = record.legs
    assert (caller.role, caller.sip_call_id, caller.remote) == ("caller", "a-side", "10.1.1.1:4000")
    assert (caller.packets_received, caller.packets_sent) == (400, 390)
    assert (caller.packets_lost, caller.jitter_ms) == (3, 2.5)  # from the caller's RTCP
    assert (callee.role, callee.sip_call_id, callee.remote) == (
        "callee",
        "b-side",
        "127.0.0.1:7002",
    )
    assert (callee.packets_received, callee.bytes_sent) == (390, 68_800)
    assert record.idempotency_key == f"cdr:edge-1:{call.id}"
    assert (record.answered, record.end_cause, record.hung_up_by) == (1002.0, "normal", "callee")


def test_unanswered_call_without_media_still_makes_a_record() -> None:
    call = _call()
    call.forks.branches.clear()
    call.forks.winner = None
    call.ended, call.sip_code, call.end_cause = 1001.0, 487, "cancelled"
    record = call_record(call, "edge-1", None)
    assert record.answered is None and record.sip_code == 487
    assert all(leg.packets_sent == 0 for leg in record.legs)
    assert record.legs[1].sip_call_id == ""
