"""End to end with real processes: ``voxedge-controlplane serve`` provisioned over HTTPS, a
``voxedge-edge`` paired with it, SIPp phones registering and calling, and ``make run``'s demo.

Phones are created with ``digest_algorithms: ["MD5"]``: SIPp 3.6 answers MD5 challenges only.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from benchmarks.sipp.users import PhoneUser, write_sipp_csv
from tests.integration.cpproc import ControlPlane, control_plane
from tests.integration.edgeproc import PairedEdgeProcess
from tests.integration.sip_client import register
from tests.integration.sipp import (
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

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "benchmarks" / "sipp"
DOMAIN = "voxedge.test"
APPLIED_WITHIN = 1.0  # seconds from an API write to the edge acting on it
WAIT = 10.0
LOCAL_TOML = """\
[edge]
name = "e2e"
domain = "placeholder.invalid"
advertise = "127.0.0.1"
data_dir = "unused"

[listen.phones]
udp = "127.0.0.1:0"
tcp = "127.0.0.1:0"

[listen.trunks]
udp = "127.0.0.1:0"
"""


@dataclass
class Plant:
    cp: ControlPlane
    api: httpx.Client
    edge: PairedEdgeProcess
    edge_id: str
    site: str
    work: Path

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.edge.port('udp')}"

    def phone(self, user: PhoneUser) -> dict[str, Any]:
        body = {
            "name": f"Phone {user.extension}",
            "type": "generic_sip",
            "site_id": self.site,
            "extension": user.extension,
            "password": user.password,
            "digest_algorithms": ["MD5"],
        }
        response = self.api.post("/phones", json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def applied(self) -> bool:
        """Whether the edge reports the organisation's latest config version (the newest
        audited configuration write's)."""
        audit = self.api.get("/audit-log", params={"limit": 20}).json()["items"]
        latest = max(a["config_version"] or 0 for a in audit)
        return bool(self.api.get(f"/edges/{self.edge_id}").json()["config_version"] >= latest)

    def register(self, user: PhoneUser, port: int | None = None) -> SippResult:
        port = port or free_port()
        return register_phone(self.target, user, port, self.work, timeout=3)


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plant]:
    work = tmp_path_factory.mktemp("e2e")
    with control_plane(work) as cp, contextlib.closing(cp.client()) as api:
        site = api.post("/sites", json={"name": "HQ"}).json()["id"]
        edge_id = api.post("/edges", json={"name": "edge-1", "site_id": site}).json()["id"]
        token = api.post(f"/edges/{edge_id}/pairing-token").json()["token"]
        (work / "local.toml").write_text(LOCAL_TOML)
        edge = PairedEdgeProcess(
            work / "edge",
            [
                *("--controlplane", f"127.0.0.1:{cp.grpc_port}"),
                # The join token alone: its CA pin is the edge's only trust anchor.
                *("--pairing-port", str(cp.pairing_port), f"--pairing-token={token}"),
                *("--data-dir", str(work / "edge-data")),
                *("--config", str(work / "local.toml")),
            ],
        )
        try:
            edge.start()
            assert edge.ready, edge.log()
            yield Plant(cp, api, edge, edge_id, site, work)
        finally:
            edge.stop()


def until(check: Any, within: float) -> tuple[Any, float]:
    """Try ``check()`` until it returns something true, starting tries for at most ``within``
    seconds; the last result and when (seconds from the call of ``until``) its try started.
    A SIPp run takes about a second of its own, so what is bounded is when the successful
    REGISTER was sent, not when SIPp got round to exiting."""
    began = time.monotonic()
    while True:
        started = time.monotonic() - began
        result = check()
        if result or time.monotonic() - began > within:
            return result, started
        time.sleep(0.05)


def test_the_edge_paired_with_the_join_token_alone(plant: Plant) -> None:
    stored_ca = (plant.work / "edge-data" / "controlplane-ca.pem").read_bytes()
    assert stored_ca == plant.cp.ca_pem
    edge = plant.api.get(f"/edges/{plant.edge_id}").json()
    assert edge["paired"] and edge["status"] == "online"


def test_a_phone_created_over_https_registers_within_a_second(plant: Plant) -> None:
    user = PhoneUser("1001", "first-secret")
    plant.phone(user)
    registered, sent_after = until(lambda: plant.register(user).all_ok, APPLIED_WITHIN)
    assert registered, plant.edge.log()[-3000:]
    assert sent_after <= APPLIED_WITHIN


def test_a_password_change_takes_the_old_one_away(plant: Plant) -> None:
    old, new = PhoneUser("1101", "old-secret"), PhoneUser("1101", "new-secret")
    phone = plant.phone(old)
    assert until(lambda: plant.register(old).all_ok, APPLIED_WITHIN)[0]
    response = plant.api.patch(f"/phones/{phone['id']}", json={"password": new.password})
    assert response.status_code == 200, response.text
    assert until(lambda: plant.register(new).all_ok, APPLIED_WITHIN)[0]
    assert not plant.register(old).all_ok


def test_deleting_a_phone_removes_its_binding(plant: Plant) -> None:
    caller, callee = PhoneUser("1201", "caller-secret"), PhoneUser("1202", "callee-secret")
    plant.phone(caller)
    phone = plant.phone(callee)
    assert until(lambda: plant.register(callee).all_ok, APPLIED_WITHIN)[0]
    assert plant.api.delete(f"/phones/{phone['id']}").status_code == 204
    assert until(lambda: not plant.register(callee).all_ok, APPLIED_WITHIN)[0]
    # The same extension created again is a new phone with no binding: a call to it finds
    # nobody registered (480), not the deleted phone's contact.
    plant.phone(callee)
    assert until(plant.applied, WAIT)[0]  # not by registering: that would bind it again
    result = run_sipp(
        SCENARIOS / "call_uac_expect_fail.xml",
        plant.target,
        calls=1,
        rate=1,
        csv=write_sipp_csv(plant.work / "caller-1201.csv", [caller]),
        keys={"domain": DOMAIN},
        timeout=15,
        extra_args=["-s", "1202", "-auth_uri", f"1202@{DOMAIN}"],
        workdir=plant.work / "call-deleted",
    )
    assert result.all_ok, result.errors
    assert result.final_statuses == {480: 1}


def test_a_calls_record_reaches_the_api_exactly_once(plant: Plant) -> None:
    caller, callee = PhoneUser("1301", "caller-secret"), PhoneUser("1302", "callee-secret")
    plant.phone(caller)
    plant.phone(callee)
    port = free_port()
    assert until(lambda: plant.register(callee, port).all_ok, APPLIED_WITHIN)[0]
    uas = start_sipp(
        SCENARIOS / "call_uas_nomedia.xml",
        None,
        calls=1,
        rate=1,
        local_port=port,
        timeout=15,
        extra_args=["-mp", str(free_media_port())],
        workdir=plant.work / "callee-1302",
    )
    try:
        uas.wait_listening()
        uac = run_sipp(
            SCENARIOS / "call_uac_nomedia.xml",
            plant.target,
            calls=1,
            rate=1,
            csv=write_sipp_csv(plant.work / "caller-1301.csv", [caller]),
            keys={"domain": DOMAIN},
            timeout=15,
            extra_args=["-s", "1302", "-auth_uri", f"1302@{DOMAIN}"],
            workdir=plant.work / "caller-1301",
        )
    finally:
        callee_result = uas.wait(timeout=10)
    assert uac.all_ok and callee_result.all_ok, (uac.errors, callee_result.errors)

    def records() -> list[dict[str, Any]]:
        items = plant.api.get("/cdrs", params={"edge_id": plant.edge_id}).json()["items"]
        return [r for r in items if "1301" in r["caller"] and "1302" in r["callee"]]

    found, _ = until(records, WAIT)
    assert len(found) == 1, found
    time.sleep(2.5)  # two more drain rounds of the edge's outbox: still one record
    [record] = records()
    assert record["id"] == found[0]["id"]
    assert record["disposition"] == "normal" and record["answered_at"] is not None


def test_make_run_demo_provisions_pairs_and_stops_cleanly(tmp_path: Path) -> None:
    (tmp_path / "local.toml").write_text(LOCAL_TOML)
    proc = subprocess.Popen(
        [
            *(sys.executable, str(ROOT / "examples" / "demo.py")),
            *("--workdir", str(tmp_path / "demo"), "--edge-config", str(tmp_path / "local.toml")),
            *("--grpc", "127.0.0.1:0", "--https", "127.0.0.1:0"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert proc.stdout is not None
        os.set_blocking(proc.stdout.fileno(), False)
        output = ""
        deadline = time.monotonic() + 60
        while "Ctrl-C stops" not in output and time.monotonic() < deadline:
            output += (proc.stdout.read() or b"").decode(errors="replace")
            assert proc.poll() is None, output
            time.sleep(0.1)
        assert "Ctrl-C stops" in output, output
        port = int(re.search(r"phones\s+udp\s+127\.0\.0\.1:(\d+)", output)[1])  # type: ignore[index]
        password = re.search(r"1001\s+Alice\s+password (\S+)", output)[1]  # type: ignore[index]
        assert register(port, "1001", password).status == 200  # SHA-256 by default
        assert re.search(r"admin token: vxe_\S+", output)
        assert "1003   Carol (browser)" in output
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    # The control plane and the edge it started are gone too (pgrep only reads).
    left = subprocess.run(["pgrep", "-f", str(tmp_path / "demo")], capture_output=True, text=True)
    assert left.stdout == ""
