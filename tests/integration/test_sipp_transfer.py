"""A blind transfer (RFC 3515 REFER) through a real edge, every phone a SIPp.

    1001 (call_uac_wait_bye.xml)  --INVITE-->  edge  --INVITE-->  1002 (call_uas_refer.xml)
    1002: REFER (Refer-To: 1003)  ->  202, NOTIFY 100 Trying, edge INVITEs 1003 with 1001's SDP
    1003 (call_uas_bye.xml) answers  ->  edge ACKs, NOTIFY 200 OK (terminated) to 1002
    1002: BYE  ->  200, it has left; 1001 and 1003 talk on
    1003: BYE after its -d  ->  edge BYEs 1001

Each SIPp registers its extension from the port it then listens on (register_auth.xml, as in
benchmarks/calls_bench.py), so the edge finds 1002 and 1003 by location lookup. The phones are
MD5-only: SIPp 3.6 computes no SHA-256 digest. Every SIPp runs with -trace_msg: on a failure
its ``*_messages.log`` in the reported work directory is the SIP trace, the edge's DEBUG log
is ``edge/edge.log`` under the test's tmp_path.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.sipp.users import phone_users, write_sipp_csv
from tests.integration.edgeproc import EdgeProcess
from tests.integration.sipp import (
    SippProcess,
    SippResult,
    free_media_port,
    free_port,
    register_phone,
    run_sipp,
    sipp_path,
    start_sipp,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(sipp_path() is None, reason="SIPp is installed by `make test`"),
]

SCENARIOS = Path(__file__).resolve().parents[2] / "benchmarks" / "sipp"
DOMAIN = "voxedge.test"
CALLER, TRANSFEROR, TARGET = phone_users(3, first=1001)
TALK_MS = 500  # the call 1001 -> 1002 before 1002's REFER
TARGET_TALK_MS = 2000  # the call 1001 -> 1003 before 1003 hangs up
TIMEOUT = 20.0


def callee(
    scenario: str, port: int, media_port: int, workdir: Path, args: list[str]
) -> SippProcess:
    return start_sipp(
        SCENARIOS / scenario,
        None,
        calls=1,
        rate=1,
        local_port=port,
        timeout=TIMEOUT,
        extra_args=["-mp", str(media_port), "-trace_msg", *args],
        workdir=workdir,
    )


def distinct_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        if (port := free_port()) not in ports:
            ports.append(port)
    return ports


def trouble(result: SippResult) -> tuple[object, ...]:
    return (result.exit_code, result.failure_reasons, result.events, result.workdir)


def test_callee_transfers_the_caller_to_a_third_phone(tmp_path: Path) -> None:
    edge = EdgeProcess(
        tmp_path / "edge",
        [(u.extension, u.password) for u in (CALLER, TRANSFEROR, TARGET)],
        phone_extra='digest_algorithms = ["MD5"]\n',
        log_level="DEBUG",
    )
    transferor_port, target_port = distinct_ports(2)
    media = {name: free_media_port() for name in ("caller", "transferor", "target")}
    with edge:
        for user, port in ((TRANSFEROR, transferor_port), (TARGET, target_port)):
            registered = register_phone(f"127.0.0.1:{edge.port('udp')}", user, port, tmp_path)
            assert registered.all_ok, trouble(registered)
        target = callee(
            "call_uas_bye.xml",
            target_port,
            media["target"],
            tmp_path / "target",
            ["-d", str(TARGET_TALK_MS)],
        )
        transferor: SippProcess | None = None
        caller: SippResult | None = None
        try:
            transferor = callee(
                "call_uas_refer.xml",
                transferor_port,
                media["transferor"],
                tmp_path / "transferor",
                ["-d", str(TALK_MS), "-key", "target", TARGET.extension, "-key", "domain", DOMAIN],
            )
            target.wait_listening()
            transferor.wait_listening()
            caller = run_sipp(
                SCENARIOS / "call_uac_wait_bye.xml",
                f"127.0.0.1:{edge.port('udp')}",
                calls=1,
                rate=1,
                csv=write_sipp_csv(tmp_path / "caller.csv", [CALLER]),
                keys={"domain": DOMAIN},
                timeout=TIMEOUT,
                extra_args=[
                    "-s",
                    TRANSFEROR.extension,
                    "-auth_uri",
                    f"{TRANSFEROR.extension}@{DOMAIN}",
                    "-mp",
                    str(media["caller"]),
                    "-trace_msg",
                ],
                workdir=tmp_path / "caller",
            )
        finally:
            referred = transferor.wait(timeout=5) if transferor is not None else None
            answered = target.wait(timeout=5)
        records = edge.call_records(1)

    assert caller is not None and referred is not None
    assert caller.all_ok and caller.successful == 1, trouble(caller)
    assert referred.all_ok and referred.successful == 1, trouble(referred)
    assert answered.all_ok and answered.successful == 1, trouble(answered)
    assert caller.final_statuses == {200: 1}  # the INVITE's (a 407 before it does not count)
    assert referred.final_statuses == {200: 1}  # 202 to the REFER, then 200 to its BYE
    assert answered.final_statuses == {200: 1}  # the target's BYE was answered

    assert len(records) == 1, records
    record = records[0]
    assert record["end_cause"] == "normal", record
    assert record["hung_up_by"] == "callee", record
    assert record["sip_code"] == 200, record
    assert record["from_uri"] == f"sip:{CALLER.extension}@{DOMAIN}", record
    assert record["to_uri"] == f"sip:{TARGET.extension}@{DOMAIN}", record
    answered_at, ended = record["answered"], record["ended"]
    assert isinstance(answered_at, float) and isinstance(ended, float), record
    # The call lasted through the transfer until the target hung up, not the transferor's BYE.
    assert ended - answered_at >= 0.9 * (TALK_MS + TARGET_TALK_MS) / 1000, record
    legs = record["legs"]
    assert isinstance(legs, list) and len(legs) == 3, record  # caller, target, transferor
    caller_leg, target_leg, transferor_leg = legs
    assert caller_leg["role"] == "caller", legs
    assert caller_leg["remote"] == f"127.0.0.1:{media['caller']}", legs
    assert target_leg["to_uri"] == f"sip:{TARGET.extension}@{DOMAIN}", legs
    assert target_leg["remote"] == f"127.0.0.1:{media['target']}", legs
    assert transferor_leg["to_uri"] == f"sip:1002@{DOMAIN}", legs
    assert transferor_leg["packets_sent"] == 0, legs  # left the relay: counters go with 1003
    assert len({leg["sip_call_id"] for leg in legs}) == 3, legs  # three dialogs
