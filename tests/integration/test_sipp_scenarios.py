"""The call scenarios of ``benchmarks/sipp/`` work SIPp to SIPp, caller straight to callee.

These prove the scenarios themselves (both ends are SIPp, on 127.0.0.1, no edge between them),
so that a failure through the edge is the edge's. Without the edge nobody challenges the INVITE:
the callers take their optional-407 path only through a target (see calls_bench.py, which runs
them through Kamailio). The pcap test checks the committed RTP capture against its generator.
"""

from __future__ import annotations

import itertools
import struct
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from benchmarks.sipp.pcap import make_pcap
from benchmarks.sipp.users import phone_users, write_sipp_csv
from tests.integration.sipp import (
    SippResult,
    free_media_port,
    run_sipp,
    sipp_path,
    start_sipp,
    udp_queued_bytes,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(sipp_path() is None, reason="SIPp is installed by `make test`"),
]

SCENARIOS = Path(__file__).resolve().parents[2] / "benchmarks" / "sipp"
PCAP = SCENARIOS / "pcap" / "g711u_tone.pcap"
CALLER_ARGS = ["-s", "1002", "-auth_uri", "1002@voxedge.test"]
KEYS = {"domain": "voxedge.test"}
TIMEOUT = 15.0


@pytest.fixture
def caller_csv(tmp_path: Path) -> Path:
    return write_sipp_csv(tmp_path / "caller.csv", phone_users(1, first=1001))


def call(
    tmp_path: Path,
    callee_scenario: str,
    caller_scenario: str,
    caller_csv: Path,
    *,
    calls: int = 1,
    rate: float = 10,
    callee_args: Sequence[str] = (),
    caller_args: Sequence[str] = (),
) -> tuple[SippResult, SippResult]:
    """Run a callee (UAS) and, once it listens, ``calls`` calls of a caller (UAC) to it."""
    callee = start_sipp(
        SCENARIOS / callee_scenario,
        None,
        calls=calls,
        rate=rate,
        timeout=TIMEOUT,
        extra_args=["-mp", str(free_media_port()), *callee_args],
        workdir=tmp_path / "callee",
    )
    try:
        callee.wait_listening()
        caller = run_sipp(
            SCENARIOS / caller_scenario,
            f"127.0.0.1:{callee.local_port}",
            calls=calls,
            rate=rate,
            csv=caller_csv,
            keys=KEYS,
            timeout=TIMEOUT,
            extra_args=[*CALLER_ARGS, "-mp", str(free_media_port()), *caller_args],
            workdir=tmp_path / "caller",
        )
    finally:
        answered = callee.wait(timeout=5)
    return caller, answered


def assert_all_ok(result: SippResult, calls: int = 1) -> None:
    assert (result.exit_code, result.successful, result.failed) == (0, calls, 0), (
        result.failure_reasons,
        result.events,
        result.workdir,
    )


def test_pcap_is_what_its_generator_writes() -> None:
    data = PCAP.read_bytes()
    assert data == make_pcap.pcap(3.0)  # deterministic, and regenerated when changed
    magic, major, minor, _, _, _, link_type = struct.unpack("<IHHiIII", data[:24])
    assert (magic, major, minor, link_type) == (0xA1B2C3D4, 2, 4, 1)  # libpcap, Ethernet
    offset, stamps, payload_types = 24, [], set()
    while offset < len(data):
        seconds, micros, captured, length = struct.unpack("<IIII", data[offset : offset + 16])
        frame = data[offset + 16 : offset + 16 + captured]
        assert captured == length == 14 + 20 + 8 + 12 + 160  # Ethernet/IPv4/UDP/RTP/20 ms
        assert frame[12:14] == b"\x08\x00" and frame[23] == 17  # IPv4, UDP
        payload_types.add(frame[43] & 0x7F)
        stamps.append(seconds + micros / 1e6)
        offset += 16 + captured
    assert len(stamps) == 150 and payload_types == {0}  # 3 s of PCMU
    assert {round(b - a, 6) for a, b in itertools.pairwise(stamps)} == {0.02}


def test_call_with_pcap_audio_is_echoed(tmp_path: Path, caller_csv: Path) -> None:
    """call_uac.xml plays the pcap to call_uas_echo.xml, whose -rtp_echo sends it back."""
    callee = start_sipp(
        SCENARIOS / "call_uas_echo.xml",
        None,
        calls=1,
        rate=1,
        timeout=TIMEOUT,
        extra_args=["-mp", str(free_media_port()), "-rtp_echo"],
        workdir=tmp_path / "callee",
    )
    callee.wait_listening()
    media_port = free_media_port()
    caller = start_sipp(
        SCENARIOS / "call_uac.xml",
        f"127.0.0.1:{callee.local_port}",
        calls=1,
        rate=1,
        csv=caller_csv,
        keys=KEYS,
        timeout=TIMEOUT,
        extra_args=[*CALLER_ARGS, "-mp", str(media_port)],
        workdir=tmp_path / "caller",
    )
    echoed = 0  # SIPp never reads its RTP socket: the echo piles up there until it exits
    while caller.running():
        echoed = max(echoed, udp_queued_bytes(media_port))
        time.sleep(0.05)
    assert_all_ok(caller.wait())
    assert_all_ok(callee.wait(timeout=5))
    assert echoed >= 140 * (12 + 160), echoed  # nearly all 150 packets came back


def test_cancel_while_ringing(tmp_path: Path, caller_csv: Path) -> None:
    caller, callee = call(
        tmp_path, "call_uas_ring.xml", "call_uac_cancel.xml", caller_csv, caller_args=["-d", "100"]
    )
    assert_all_ok(caller)
    assert_all_ok(callee)
    assert caller.final_statuses == {487: 1}


def test_busy_callee_fails_the_call_with_486(tmp_path: Path, caller_csv: Path) -> None:
    caller, callee = call(tmp_path, "call_uas_busy.xml", "call_uac_expect_fail.xml", caller_csv)
    assert_all_ok(caller)
    assert_all_ok(callee)
    assert caller.final_statuses == {486: 1}


def test_hold_and_resume(tmp_path: Path, caller_csv: Path) -> None:
    """Both ends check the other's SDP direction (sendonly offer, recvonly answer...)."""
    caller, callee = call(
        tmp_path, "call_uas_hold.xml", "call_uac_hold.xml", caller_csv, callee_args=["-rtp_echo"]
    )
    assert_all_ok(caller)
    assert_all_ok(callee)


def test_callee_hangs_up(tmp_path: Path, caller_csv: Path) -> None:
    caller, callee = call(
        tmp_path,
        "call_uas_bye.xml",
        "call_uac_wait_bye.xml",
        caller_csv,
        callee_args=["-d", "200"],
    )
    assert_all_ok(caller)
    assert_all_ok(callee)
    assert callee.final_statuses == {200: 1}  # the callee's BYE was answered


def test_load_scenarios_without_media(tmp_path: Path, caller_csv: Path) -> None:
    caller, callee = call(
        tmp_path,
        "call_uas_nomedia.xml",
        "call_uac_nomedia.xml",
        caller_csv,
        calls=50,
        rate=100,
    )
    assert_all_ok(caller, calls=50)
    assert_all_ok(callee, calls=50)
    assert caller.final_statuses == {200: 50}
