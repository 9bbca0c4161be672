"""Two real user agents (Debian's baresip) call each other through the edge."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.baresip import Baresip, baresip_path
from tests.integration.edgeproc import EdgeProcess

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(baresip_path() is None, reason="baresip is installed by `make test`"),
]

TALK = 3.0  # seconds of two-way audio (50 packets/s each way at 20 ms)


@pytest.fixture
def edge(tmp_path: Path) -> Iterator[EdgeProcess]:
    proc = EdgeProcess(
        tmp_path / "edge",
        [("1001", "alice-secret"), ("1002", "bob-secret")],
        phone_extra='digest_algorithms = ["MD5"]\n',  # baresip 1.0: see test_baresip_register
        edge_extra='media_ports = "41000-41999"\n',
    )
    with proc:
        yield proc


def phone(
    edge: EdgeProcess, workdir: Path, user: str, password: str, extra: str = "", codec: str = "PCMU"
) -> Baresip:
    return Baresip(
        workdir,
        user=user,
        password=password,
        domain="voxedge.test",
        registrar=f"127.0.0.1:{edge.port('udp')}",
        transport="udp",
        account_extra=f";audio_codecs={codec}{extra}",
    )


@pytest.mark.parametrize("hangup", ["caller", "callee"])
def test_two_baresips_talk_through_the_edge(edge: EdgeProcess, tmp_path: Path, hangup: str) -> None:
    alice = phone(edge, tmp_path / "alice", "1001", "alice-secret")
    bob = phone(edge, tmp_path / "bob", "1002", "bob-secret", ";answermode=auto")
    with contextlib.ExitStack() as stack:
        stack.enter_context(alice)
        stack.enter_context(bob)
        assert alice.wait_registered(10), alice.output
        assert bob.wait_registered(10), bob.output
        alice.command("dial sip:1002@voxedge.test")
        assert alice.wait_for(r"Call established", 10), alice.output + edge.log()
        assert bob.wait_for(r"Call established", 10), bob.output
        time.sleep(TALK)
        (alice if hangup == "caller" else bob).command("hangup")
        assert alice.wait_for(r"terminated|closed", 10), alice.output
        assert bob.wait_for(r"terminated|closed", 10), bob.output
    (record,) = edge.call_records(1)
    assert record["end_cause"] == "normal" and record["sip_code"] == 200
    assert record["hung_up_by"] == hangup
    assert record["answered"] is not None
    legs = record["legs"]
    assert isinstance(legs, list) and len(legs) == 2
    for leg in legs:
        # Two-way audio: at 50 packets/s each way, most of TALK seconds crossed the edge.
        assert leg["packets_received"] > 40 * (TALK - 1), leg
        assert leg["packets_sent"] > 40 * (TALK - 1), leg
        assert leg["codec"] == "PCMU"
    assert edge.proc is not None and edge.proc.poll() is None
    assert "Traceback" not in edge.log()


def test_pcma_phone_calls_pcmu_phone_through_the_transcoder(
    edge: EdgeProcess, tmp_path: Path
) -> None:
    alice = phone(edge, tmp_path / "alice", "1001", "alice-secret", codec="PCMA")
    bob = phone(edge, tmp_path / "bob", "1002", "bob-secret", ";answermode=auto", codec="PCMU")
    with contextlib.ExitStack() as stack:
        stack.enter_context(alice)
        stack.enter_context(bob)
        assert alice.wait_registered(10) and bob.wait_registered(10)
        alice.command("dial sip:1002@voxedge.test")
        assert alice.wait_for(r"Call established", 10), alice.output + edge.log()
        assert bob.wait_for(r"Call established", 10), bob.output
        time.sleep(TALK)
        alice.command("hangup")
        assert bob.wait_for(r"terminated|closed", 10), bob.output
    (record,) = edge.call_records(1)
    assert "transcoding G.711" in edge.log()
    legs = record["legs"]
    assert isinstance(legs, list)
    assert [leg["codec"] for leg in legs] == ["PCMA", "PCMU"]  # each phone its own law
    for leg in legs:
        assert leg["packets_received"] > 40 * (TALK - 1), leg
        assert leg["packets_sent"] > 40 * (TALK - 1), leg


def test_stopping_the_edge_hangs_up_and_keeps_the_record(edge: EdgeProcess, tmp_path: Path) -> None:
    alice = phone(edge, tmp_path / "alice", "1001", "alice-secret")
    bob = phone(edge, tmp_path / "bob", "1002", "bob-secret", ";answermode=auto")
    with contextlib.ExitStack() as stack:
        stack.enter_context(alice)
        stack.enter_context(bob)
        assert alice.wait_registered(10) and bob.wait_registered(10)
        alice.command("dial sip:1002@voxedge.test")
        assert alice.wait_for(r"Call established", 10), alice.output + edge.log()
        assert bob.wait_for(r"Call established", 10), bob.output
        time.sleep(1)
        assert edge.stop() == 0  # SIGTERM
        # Both phones hear the edge's BYE (baresip: "... terminated" or the call closes).
        assert alice.wait_for(r"terminated|closed", 10), alice.output
        assert bob.wait_for(r"terminated|closed", 10), bob.output
    (record,) = edge.call_records(1, timeout=2)
    assert (record["end_cause"], record["hung_up_by"]) == ("failed", "edge")
