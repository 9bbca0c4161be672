"""The ``voxedge-edge`` daemon: start-up, SIGHUP reload, and refusal of bad files."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.edgeproc import ROOT, EdgeProcess
from tests.integration.sip_client import register

pytestmark = pytest.mark.integration


def register_status(port: int, user: str, password: str) -> int:
    return register(port, user, password).status


def wait_for_log(edge: EdgeProcess, text: str, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in edge.log():
            return True
        time.sleep(0.05)
    return False


def test_sighup_reloads_config_and_a_bad_file_keeps_the_old_one(tmp_path: Path) -> None:
    with EdgeProcess(tmp_path, [("1001", "alice-secret")]) as edge:
        port = edge.port("udp")
        assert register_status(port, "1001", "alice-secret") == 200
        assert register_status(port, "1003", "carol-secret") == 403

        original = edge.config_path.read_text()
        extra = '[[phones]]\nname = "carol"\ntype = "generic_sip"\nextension = "1003"\n'
        edge.config_path.write_text(original + extra + 'password = "carol-secret"\n')
        edge.reload()
        assert wait_for_log(edge, "configuration reloaded")
        assert register_status(port, "1003", "carol-secret") == 200

        edge.config_path.write_text(original + "[[phones]\n")
        edge.reload()
        assert wait_for_log(edge, "reload refused, keeping the running config")
        assert "line" in edge.log().split("reload refused")[1].splitlines()[0]
        assert register_status(port, "1003", "carol-secret") == 200  # the old snapshot still serves
    assert edge.proc is not None and edge.proc.returncode == 0


def test_bad_config_at_start_names_the_field_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[edge]\nname = "x"\ndomain = "d"\nadvertise = "127.0.0.1"\n')
    done = subprocess.run(
        [sys.executable, "-m", "edge", "--config", str(path)],
        cwd=ROOT,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert b"edge.data_dir: required" in done.stderr
