"""DTMF from RFC 4733 to SIP INFO through the edge, with real peers at both ends.

The caller is baresip (Debian's 1.0.0), which offers PCMU with telephone-event; the callee is
SIPp (benchmarks/sipp/call_uas_info.xml), registered as 1002, which answers PCMU alone. The
edge keeps telephone-event in its answer to baresip, taps baresip's RTP events on the relay
and sends the callee each key press as an INFO ``application/dtmf-relay`` (media/bridge.py,
``B2BUA.dtmf``); the scenario fails the call unless that INFO says ``Signal=5`` and a
duration.

A digit typed at baresip's stdio UI during a call is sent as an RFC 4733 event: baresip 1.0
prints ``audio: send DTMF digit: '5'`` at once and ``audio: send DTMF digit end: '5'`` when
stdio reports the key released (some 250 ms on: the INFO then says ``Duration=280`` or so).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.sipp.users import PhoneUser
from tests.integration.baresip import Baresip, baresip_path
from tests.integration.edgeproc import EdgeProcess
from tests.integration.sipp import (
    free_media_port,
    free_port,
    register_phone,
    sipp_path,
    start_sipp,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(baresip_path() is None, reason="baresip is installed by `make test`"),
    pytest.mark.skipif(sipp_path() is None, reason="SIPp is installed by `make test`"),
]

SCENARIOS = Path(__file__).resolve().parents[2] / "benchmarks" / "sipp"
DOMAIN = "voxedge.test"
CALLER = PhoneUser("1001", "alice-secret")
CALLEE = PhoneUser("1002", "bob-secret")
DIGIT = "5"  # call_uas_info.xml requires Signal=5
# "dtmf-relay Signal=5 Duration=160": what call_uas_info.xml logs once the INFO passed its checks.
_LOGGED = re.compile(r"^dtmf-relay Signal=(\S+) Duration=(\d+)$", re.MULTILINE)
# In baresip's SIP trace (-s): a message is its start line, header lines, a blank line and the
# body's lines; ".+" never crosses the blank line, so each match stays in one message.
_INVITE_SDP = r"^INVITE sip:[^\n]*\n(?:.+\n)+\n(?P<sdp>(?:.+\n)+)"
_INVITE_200_SDP = r"^SIP/2\.0 200 OK\n(?:.+\n)*?CSeq: \d+ INVITE\n(?:.+\n)*\n(?P<sdp>(?:.+\n)+)"
_BYE_200 = r"^SIP/2\.0 200 OK\n(?:.+\n)*?CSeq: \d+ BYE$"


@pytest.fixture
def edge(tmp_path: Path) -> Iterator[EdgeProcess]:
    proc = EdgeProcess(
        tmp_path / "edge",
        [(CALLER.extension, CALLER.password), (CALLEE.extension, CALLEE.password)],
        phone_extra='digest_algorithms = ["MD5"]\n',  # baresip 1.0 and SIPp 3.6 are MD5-only
        edge_extra='media_ports = "43000-43999"\n',
        log_level="DEBUG",  # the evidence should the INFO not come
    )
    with proc:
        yield proc


def telephone_event(sdp: str) -> str | None:
    """The payload type of telephone-event/8000 in ``sdp`` if its m=audio line lists it."""
    rtpmap = re.search(r"^a=rtpmap:(\d+) telephone-event/8000$", sdp, re.MULTILINE)
    media = re.search(r"^m=audio \d+ RTP/AVP((?: \d+)+)$", sdp, re.MULTILINE)
    if rtpmap is None or media is None or rtpmap[1] not in media[1].split():
        return None
    return rtpmap[1]


def wait_for_file(path: Path, pattern: re.Pattern[str], timeout: float) -> re.Match[str] | None:
    deadline = time.monotonic() + timeout
    while True:
        match = pattern.search(path.read_text(errors="replace")) if path.exists() else None
        if match is not None or time.monotonic() > deadline:
            return match
        time.sleep(0.05)


def test_rfc4733_digit_reaches_a_callee_without_telephone_event_as_sip_info(
    edge: EdgeProcess, tmp_path: Path
) -> None:
    port = free_port()
    address = f"127.0.0.1:{edge.port('udp')}"
    assert register_phone(address, CALLEE, port, tmp_path).all_ok
    callee = start_sipp(
        SCENARIOS / "call_uas_info.xml",
        None,
        calls=1,
        rate=1,
        local_port=port,
        timeout=12,
        extra_args=[
            *["-mp", str(free_media_port())],
            *["-trace_logs", "-log_file", "logs.log"],
            *["-trace_msg", "-message_file", "messages.log"],
        ],
        workdir=tmp_path / "callee",
    )
    alice = Baresip(
        tmp_path / "alice",
        user=CALLER.extension,
        password=CALLER.password,
        domain=DOMAIN,
        registrar=f"127.0.0.1:{edge.port('udp')}",
        transport="udp",
        account_extra=";audio_codecs=PCMU",
        sip_trace=True,  # its INVITE, with the SDP offer, in its output
    )
    try:
        callee.wait_listening()
        with alice:
            assert alice.wait_registered(5), alice.output
            alice.command(f"dial sip:{CALLEE.extension}@{DOMAIN}")
            assert alice.wait_for(r"Call established", 5), alice.output + edge.log()
            offer = alice.wait_for(_INVITE_SDP, 0)
            answer = alice.wait_for(_INVITE_200_SDP, 0)
            assert offer is not None and answer is not None, alice.output
            # baresip offers telephone-event; the edge keeps it for baresip, SIPp has none.
            assert telephone_event(offer["sdp"]) is not None, offer["sdp"]
            assert telephone_event(answer["sdp"]) is not None, answer["sdp"]
            alice.keys(DIGIT)  # a digit key during a call: an RFC 4733 event (see above)
            assert alice.wait_for(rf"^audio: send DTMF digit end: '{DIGIT}'$", 3), alice.output
            logged = wait_for_file(callee.workdir / "logs.log", _LOGGED, 3)
            errors = callee.workdir / "errors.log"  # a failed check of the INFO, if any
            assert logged is not None, (errors.exists() and errors.read_text(), edge.log())
            alice.command("hangup")
            # After its own hangup baresip 1.0 prints no "terminated": the BYE's 200 shows it.
            assert alice.wait_for(_BYE_200, 5), alice.output
    finally:
        result = callee.wait(timeout=5)
        unregistered = register_phone(address, CALLEE, port, tmp_path, unregister=True)
    assert unregistered.all_ok  # not in finally: it would hide why the call failed
    assert (result.exit_code, result.successful, result.failed) == (0, 1, 0), (
        result.failure_reasons,
        result.events,
        result.workdir,
    )
    assert logged[1] == DIGIT
    assert 0 < int(logged[2]) < 5000, logged[0]  # one key press, not a stuck key
    (record,) = edge.call_records(1)
    assert (record["end_cause"], record["hung_up_by"], record["sip_code"]) == (
        "normal",
        "caller",
        200,
    )
    assert record["answered"] is not None
    assert edge.proc is not None and edge.proc.poll() is None
    assert "Traceback" not in edge.log()
