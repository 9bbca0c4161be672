"""SIPp calls through a running edge: caller 1001 -> edge (B2BUA, relay) -> callee 1002.

The callee SIPp first registers as 1002 from the port it then listens on, so the edge finds it
by location lookup; the caller authenticates its INVITE (407). Each flow is one scenario pair of
``benchmarks/sipp/`` (proven SIPp to SIPp in test_sipp_scenarios.py), and each call leaves a
call record in the edge's outbox that is checked too.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from benchmarks.sipp.users import phone_users, write_sipp_csv
from tests.integration.edgeproc import EdgeProcess
from tests.integration.sipp import (
    SippResult,
    free_media_port,
    free_port,
    register_phone,
    sipp_path,
    start_sipp,
    udp_queued_bytes,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(sipp_path() is None, reason="SIPp is installed by `make test`"),
]

SCENARIOS = Path(__file__).resolve().parents[2] / "benchmarks" / "sipp"
DOMAIN = "voxedge.test"
USERS = phone_users(2, first=1001)
CALLER_ARGS = ["-s", "1002", "-auth_uri", f"1002@{DOMAIN}"]
NO_ANSWER = 2  # seconds: the edge's no_answer_timeout here
MEDIA_TIMEOUT = 3  # seconds: its media_timeout
PCAP_PACKETS = 150  # benchmarks/sipp/pcap/g711u_tone.pcap: 3 s of 20 ms PCMU


class Edge:
    def __init__(self, proc: EdgeProcess) -> None:
        self.proc = proc
        self.records = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.proc.port('udp')}"

    def next_record(self) -> dict[str, Any]:
        """The call record of the call that just ended (the newest in the outbox)."""
        self.records += 1
        records = self.proc.call_records(self.records)
        assert len(records) == self.records, records
        return max(records, key=lambda r: float(r["ended"]))


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    proc = EdgeProcess(
        tmp_path_factory.mktemp("edge"),
        [(u.extension, u.password) for u in USERS],
        phone_extra='digest_algorithms = ["MD5"]\n',  # SIPp 3.6 is MD5-only
        edge_extra=(
            f"no_answer_timeout = {NO_ANSWER}\nmedia_timeout = {MEDIA_TIMEOUT}\n"
            'media_ports = "42000-42999"\n'
        ),
    )
    with proc:
        yield Edge(proc)


def call(
    edge: Edge,
    tmp_path: Path,
    callee_scenario: str,
    caller_scenario: str,
    *,
    callee_args: Sequence[str] = (),
    caller_args: Sequence[str] = (),
) -> tuple[SippResult, SippResult, int]:
    """One call: (caller result, callee result, bytes of RTP queued at the caller's port)."""
    port = free_port()
    assert register_phone(edge.address, USERS[1], port, tmp_path).all_ok
    callee = start_sipp(
        SCENARIOS / callee_scenario,
        None,
        calls=1,
        rate=1,
        local_port=port,
        timeout=20,
        extra_args=["-mp", str(free_media_port()), *callee_args],
        workdir=tmp_path / "callee",
    )
    try:
        callee.wait_listening()
        media_port = free_media_port()
        caller = start_sipp(
            SCENARIOS / caller_scenario,
            edge.address,
            calls=1,
            rate=1,
            csv=write_sipp_csv(tmp_path / "caller.csv", [USERS[0]]),
            keys={"domain": DOMAIN},
            timeout=20,
            extra_args=[*CALLER_ARGS, "-mp", str(media_port), *caller_args],
            workdir=tmp_path / "caller",
        )
        echoed = 0  # SIPp never reads its RTP socket: what the edge relays back piles up there
        while caller.running():
            echoed = max(echoed, udp_queued_bytes(media_port))
            time.sleep(0.05)
        caller_result = caller.wait()
    finally:
        callee_result = callee.wait(timeout=10)
        # One binding at a time: forks to a callee gone from an earlier test would ring on.
        assert register_phone(edge.address, USERS[1], port, tmp_path, unregister=True).all_ok
    return caller_result, callee_result, echoed


def assert_ok(result: SippResult) -> None:
    assert (result.exit_code, result.successful, result.failed) == (0, 1, 0), (
        result.failure_reasons,
        result.events,
        result.workdir,
    )


def test_g711_audio_crosses_the_edge_both_ways(edge: Edge, tmp_path: Path) -> None:
    caller, callee, echoed = call(
        edge, tmp_path, "call_uas_echo.xml", "call_uac.xml", callee_args=["-rtp_echo"]
    )
    assert_ok(caller)
    assert_ok(callee)
    # The pcap went caller -> relay -> callee, the echo callee -> relay -> caller.
    assert echoed >= 0.9 * PCAP_PACKETS * (12 + 160), echoed
    record = edge.next_record()
    assert (record["end_cause"], record["hung_up_by"], record["sip_code"]) == (
        "normal",
        "caller",
        200,
    )
    caller_leg, callee_leg = record["legs"]
    assert caller_leg["codec"] == "PCMU"
    for leg in (caller_leg, callee_leg):
        assert leg["packets_received"] >= 0.9 * PCAP_PACKETS, leg
        assert leg["packets_sent"] >= 0.9 * PCAP_PACKETS, leg
    assert caller_leg["sip_call_id"] != callee_leg["sip_call_id"]  # two dialogs


def test_cancel_before_answer(edge: Edge, tmp_path: Path) -> None:
    caller, callee, _ = call(
        edge, tmp_path, "call_uas_ring.xml", "call_uac_cancel.xml", caller_args=["-d", "300"]
    )
    assert_ok(caller)
    assert_ok(callee)  # it got the edge's CANCEL and answered 487
    assert caller.final_statuses == {487: 1}
    record = edge.next_record()
    assert (record["end_cause"], record["hung_up_by"], record["answered"]) == (
        "cancelled",
        "caller",
        None,
    )


def test_busy_callee(edge: Edge, tmp_path: Path) -> None:
    caller, callee, _ = call(edge, tmp_path, "call_uas_busy.xml", "call_uac_expect_fail.xml")
    assert_ok(caller)
    assert_ok(callee)
    assert caller.final_statuses == {486: 1}
    assert edge.next_record()["end_cause"] == "busy"


def test_no_answer_timeout_gives_480_and_cancels_the_callee(edge: Edge, tmp_path: Path) -> None:
    caller, callee, _ = call(edge, tmp_path, "call_uas_ring.xml", "call_uac_expect_fail.xml")
    assert_ok(caller)
    assert_ok(callee)  # call_uas_ring expects the CANCEL
    assert caller.final_statuses == {480: 1}
    record = edge.next_record()
    assert (record["end_cause"], record["sip_code"]) == ("no-answer", 480)
    assert NO_ANSWER - 0.5 < float(record["ended"]) - float(record["started"]) < NO_ANSWER + 3


def test_hold_and_resume_are_mirrored(edge: Edge, tmp_path: Path) -> None:
    caller, callee, _ = call(
        edge, tmp_path, "call_uas_hold.xml", "call_uac_hold.xml", callee_args=["-rtp_echo"]
    )
    assert_ok(caller)  # each side checks the direction it was offered / answered
    assert_ok(callee)
    assert edge.next_record()["end_cause"] == "normal"


def test_callee_hangs_up(edge: Edge, tmp_path: Path) -> None:
    caller, callee, _ = call(
        edge, tmp_path, "call_uas_bye.xml", "call_uac_wait_bye.xml", callee_args=["-d", "300"]
    )
    assert_ok(caller)
    assert_ok(callee)
    assert callee.final_statuses == {200: 1}
    assert edge.next_record()["hung_up_by"] == "callee"


def test_silent_call_is_ended_by_the_media_timeout(edge: Edge, tmp_path: Path) -> None:
    """Neither side sends RTP: after media_timeout the edge BYEs both (both scenarios wait for
    a BYE and answer it)."""
    caller, callee, _ = call(edge, tmp_path, "call_uas_echo.xml", "call_uac_wait_bye.xml")
    assert_ok(caller)
    assert_ok(callee)
    record = edge.next_record()
    assert (record["end_cause"], record["hung_up_by"]) == ("media-timeout", "edge")
    answered = float(record["answered"])
    assert MEDIA_TIMEOUT < float(record["ended"]) - answered < MEDIA_TIMEOUT + 3
