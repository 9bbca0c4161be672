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

The scenario's NOTIFY handling is also proven without the edge, against a scripted UA on a UDP
socket (the edge always sends both NOTIFYs): the 100 Trying NOTIFY may be missing, and a
transfer that failed (a final NOTIFY with "SIP/2.0 480") fails the call.
"""

from __future__ import annotations

import itertools
import socket
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from benchmarks.sipp.users import PhoneUser, phone_users, write_sipp_csv
from sip.message import Request, Response
from sip.parser import parse_message
from tests.integration.edgeproc import EdgeProcess
from tests.integration.sipp import (
    SippProcess,
    SippResult,
    free_media_port,
    free_port,
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


def register(edge: EdgeProcess, user: PhoneUser, port: int, workdir: Path) -> SippResult:
    """REGISTER ``user`` with digest from 127.0.0.1:``port``, its Contact there."""
    return run_sipp(
        SCENARIOS / "register_auth.xml",
        f"127.0.0.1:{edge.port('udp')}",
        calls=1,
        rate=1,
        csv=write_sipp_csv(workdir / f"{user.extension}.csv", [user]),
        keys={"domain": DOMAIN, "expires": "3600"},
        extra_args=["-auth_uri", DOMAIN],
        local_port=port,
        timeout=10,
        workdir=workdir / f"register-{user.extension}",
    )


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
            registered = register(edge, user, port, tmp_path)
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


# --- the scenario's NOTIFY handling against a scripted UA (no edge) ------------------------------

TRYING = ("SIP/2.0 100 Trying", "active;expires=60")
DONE = ("SIP/2.0 200 OK", "terminated;reason=noresource")
FAILED = ("SIP/2.0 480 Temporarily Unavailable", "terminated;reason=noresource")
_branches = itertools.count(1)


class ScriptedUA:
    """The edge's side of one call with call_uas_refer.xml, message by message, over UDP."""

    def __init__(self, peer_port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.peer = ("127.0.0.1", peer_port)
        self.call_id = f"refer-{self.port}@127.0.0.1"
        self.to = "<sip:1002@voxedge.test>"  # gets the callee's tag from its 200
        self.cseq = 0

    def close(self) -> None:
        self.sock.close()

    def request(self, method: str, extra: Sequence[str] = (), body: str = "") -> None:
        if method != "ACK":
            self.cseq += 1
        lines = [
            f"{method} sip:1002@127.0.0.1:{self.peer[1]} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK-s{next(_branches)};rport",
            "Max-Forwards: 70",
            "From: <sip:1001@voxedge.test>;tag=scripted",
            f"To: {self.to}",
            f"Call-ID: {self.call_id}",
            f"CSeq: {self.cseq} {method}",
            f"Contact: <sip:127.0.0.1:{self.port}>",
            *extra,
            f"Content-Length: {len(body.encode())}",
        ]
        self.sock.sendto(("\r\n".join(lines) + "\r\n\r\n" + body).encode(), self.peer)

    def answer(self, request: Request, status: int, reason: str) -> None:
        headers = request.headers
        lines = [f"SIP/2.0 {status} {reason}"] + [
            f"{name}: {value}"
            for name in ("Via", "From", "To", "Call-ID", "CSeq")
            for value in headers.values(name)
        ]
        self.sock.sendto(
            ("\r\n".join([*lines, "Content-Length: 0"]) + "\r\n\r\n").encode(), self.peer
        )

    def receive(self, wanted: str, timeout: float = 3.0) -> Request | Response | None:
        """The next message whose request method or response CSeq method is ``wanted`` and
        which is a request or final response; None after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                message = parse_message(self.sock.recv(65536))
            except TimeoutError:
                return None
            if isinstance(message, Request) and message.method == wanted:
                return message
            cseq = (message.headers.get("CSeq") or "").split()
            if isinstance(message, Response) and message.status >= 200 and cseq[-1:] == [wanted]:
                return message
        return None


def refer_with_notifies(
    tmp_path: Path, notifies: list[tuple[str, str]]
) -> tuple[SippResult, list[int | None]]:
    """call_uas_refer.xml answers a call, REFERs; the NOTIFYs it gets are ``notifies`` (sipfrag,
    Subscription-State). Returns its result and its answers to the NOTIFYs (None: none)."""
    sipp = start_sipp(
        SCENARIOS / "call_uas_refer.xml",
        None,
        calls=1,
        rate=1,
        timeout=10,
        keys={"target": "1003", "domain": DOMAIN},
        extra_args=["-mp", str(free_media_port()), "-trace_msg"],
        workdir=tmp_path / "transferor",
    )
    ua: ScriptedUA | None = None
    statuses: list[int | None] = []
    try:
        sipp.wait_listening()
        ua = ScriptedUA(sipp.local_port)
        sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        sdp += "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
        ua.request("INVITE", ["Content-Type: application/sdp"], sdp)
        answer = ua.receive("INVITE")
        assert isinstance(answer, Response) and answer.status == 200, answer
        ua.to = answer.headers.get("To") or ""
        ua.request("ACK")
        refer = ua.receive("REFER")
        assert isinstance(refer, Request), refer
        assert refer.headers.get("Refer-To") == f"<sip:1003@{DOMAIN}>", refer.headers
        ua.answer(refer, 202, "Accepted")
        for frag, state in notifies:
            ua.request(
                "NOTIFY",
                [
                    "Event: refer",
                    f"Subscription-State: {state}",
                    "Content-Type: message/sipfrag;version=2.0",
                ],
                frag + "\r\n",
            )
            response = ua.receive("NOTIFY", timeout=1.0)
            statuses.append(response.status if isinstance(response, Response) else None)
        if statuses and statuses[-1] == 200:
            bye = ua.receive("BYE")
            assert isinstance(bye, Request), bye
            ua.answer(bye, 200, "OK")
    finally:
        if ua is not None:
            ua.close()
        result = sipp.wait(timeout=5)
    return result, statuses


@pytest.mark.parametrize("notifies", [[TRYING, DONE], [DONE]], ids=["both", "final-only"])
def test_refer_scenario_takes_the_first_notify_as_optional(
    tmp_path: Path, notifies: list[tuple[str, str]]
) -> None:
    result, statuses = refer_with_notifies(tmp_path, notifies)
    assert statuses == [200] * len(notifies)
    assert result.all_ok and result.successful == 1, trouble(result)
    assert result.final_statuses == {200: 1}  # the BYE's, after the REFER's 202


def test_refer_scenario_fails_the_call_when_the_transfer_fails(tmp_path: Path) -> None:
    result, _ = refer_with_notifies(tmp_path, [TRYING, FAILED])
    assert result.failed == 1 and result.successful == 0, trouble(result)
    assert result.failure_reasons == {"FailedRegexpDoesntMatch": 1}, trouble(result)
