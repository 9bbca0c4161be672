"""The running edge against the RFC 4475/5118 torture corpus, in a loopback-only namespace.

``torture_runner.py`` runs inside ``unshare -n`` (the messages carry foreign Via hosts and a
server answers to the Via; in the namespace nothing can leave the machine). The expected
answers follow ``../shared/sip-torture/index.md``; where it allows several, the comment says
which one the edge chose. The edge's domain there is ``example.com`` so REGISTERs reach the
registrar; an INVITE to it is challenged (``407``) before anything else is said, requests with
a To tag that match no dialog get ``481``, other methods it does not serve ``405``, foreign
domains ``404``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

RUNNER = Path(__file__).with_name("torture_runner.py")
CORPUS = Path(__file__).resolve().parents[3] / "shared" / "sip-torture"

# name: (statuses over UDP, statuses over TCP); [] = no answer (dropped or unanswerable).
EXPECTED: dict[str, tuple[list[int], list[int]]] = {
    "wsinv": ([481], [481]),  # To tag: in no dialog of ours (§12.2.2); 3 Vias kept
    "intmeth": ([501], [501]),  # unknown method
    "esc01": ([404], [404]),
    "escnull": ([401], [401]),  # reaches the registrar: challenged, never 400
    "esc02": ([501], [501]),  # RE%47IST%45R is not REGISTER
    "lwsdisp": ([200], [200]),
    "longreq": ([407], [407]),  # INVITE: the caller authenticates first
    "dblreq": ([401], [401, 407]),  # UDP: trailing INVITE is noise; TCP: a second request
    "semiuri": ([404], [404]),
    "transports": ([200], [200]),
    "mpart01": ([404], [404]),
    "unreason": ([], []),  # responses: discarded
    "noreason": ([], []),
    "badinv01": ([], []),  # Via unreadable: cannot be answered, dropped
    "clerr": ([400], []),  # TCP: waits for the body, then the idle timeout closes
    "ncl": ([400], []),  # TCP: framing lost, connection closed
    "scalar02": ([400], [400]),
    "scalarlg": ([], []),
    "quotbal": ([400], [400]),
    "ltgtruri": ([400], [400]),
    "lwsruri": ([400], [400]),
    "lwsstart": ([400], [400]),  # liberal: we refuse
    "trws": ([400], [400]),  # liberal: we refuse
    "escruri": ([407], [407]),  # liberal: accepted, the ?Route= never becomes a header
    "baddate": ([407], [407]),  # Date ignored
    "regbadct": ([401], [401]),  # challenged before the Contact is read; never bound
    "badaspec": ([400], [400]),
    "baddn": ([400], []),  # TCP: the header never ends; closed at the idle timeout
    "badvers": ([505], [505]),
    "mismatch01": ([400], [400]),
    "mismatch02": ([400], [400]),  # 400 (allowed) rather than 501
    "bigcode": ([], []),
    "badbranch": ([400], [400]),  # a bare cookie cannot key a transaction
    "insuf": ([], []),  # no To/From/Call-ID to copy: dropped
    "unkscm": ([416], [416]),
    "novelsc": ([416], [416]),
    "unksm2": ([400], [400]),  # AOR not sip/sips
    "bext01": ([420], [420]),
    "invut": ([407], [407]),  # 415 + Accept once authenticated (tests/unit/test_b2bua.py)
    "regaut01": ([401], [401]),
    "multi01": ([400], [400]),
    "mcl01": ([400], []),  # TCP: framing unknowable, closed
    "bcast": ([], []),  # never answered, never sent to 255.255.255.255
    "zeromf": ([200], [200]),  # the edge answers OPTIONS itself
    "cparam01": ([401], [401]),
    "cparam02": ([401], [401]),
    "regescrt": ([401], [401]),
    "sdp01": ([407], [407]),  # 406 once authenticated (tests/unit/test_b2bua.py)
    "inv2543": ([407], [407]),  # our domain: who exists is told after authentication
    "test": ([], []),  # no Via: dropped
    "ipv6-good": ([404], [404]),
    "ipv6-bad": ([400], [400]),
    "port-ambiguous": ([404], [404]),
    "port-unambiguous": ([404], [404]),
    "via-received-param-with-delim": ([481], [481]),  # a BYE in no dialog of ours
    "via-received-param-no-delim": ([404], [404]),
    "ipv6-in-sdp": ([404], [404]),
    "mult-ip-in-header": ([481], [481]),  # a BYE in no dialog of ours
    "mult-ip-in-sdp": ([404], [404]),
    "ipv4-mapped-ipv6": ([407], [407]),
    "ipv6-correct-abnf-2-colons": ([404], [404]),
    "ipv6-bug-abnf-3-colons": ([400], [400]),  # RFC 5118 §4.10: the correct ABNF
}
VALID = {
    row["name"]
    for row in json.loads((CORPUS / "index.json").read_text())
    if row["rfc_class"] == "valid"
}

# iproute2 lives in sbin, which a non-login PATH may lack.
IP = shutil.which("ip", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin") or "ip"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux unshare"),
]


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    done = subprocess.run(
        [
            "unshare",
            "-n",
            "sh",
            "-c",
            f'"{IP}" link set lo up && exec "{sys.executable}" "{RUNNER}"',
        ],
        capture_output=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_every_corpus_message_is_covered(report: dict[str, Any]) -> None:
    assert set(report["results"]) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_edge_answers_torture_message_as_expected(report: dict[str, Any], name: str) -> None:
    udp, tcp = EXPECTED[name]
    result = report["results"][name]
    assert result["udp"] == udp
    assert result["tcp"]["statuses"] == tcp
    if name in VALID:
        assert 400 not in result["udp"] + result["tcp"]["statuses"]


@pytest.mark.parametrize(("name", "vias"), [("wsinv", 3), ("longreq", 34), ("transports", 5)])
def test_responses_echo_every_via(report: dict[str, Any], name: str, vias: int) -> None:
    assert report["results"][name]["udp_vias"] == [vias]


def test_tcp_connections_never_hang(report: dict[str, Any]) -> None:
    # Every connection ends: answered then idle-closed, or closed for lost framing.
    assert all(r["tcp"]["closed"] for r in report["results"].values())
    tcp_stats = report["edges"]["tcp"]["stats"]
    assert tcp_stats["framing_errors"] == 2  # ncl, mcl01
    assert tcp_stats["connections_open"] == 0


def test_no_binding_is_created_and_nothing_is_sent_to_broadcast(report: dict[str, Any]) -> None:
    for edge in report["edges"].values():
        assert edge["bindings"] == {}
        assert edge["stats"]["blocked_destinations"] == 0
        assert edge["stats"]["sink_errors"] == 0
        assert "INTERNAL_ERROR" not in edge["counters"]
    assert report["edges"]["udp:bcast"]["stats"]["udp_tx"] == 0
