"""Run a real ``voxedge-edge`` process on ephemeral loopback ports for integration tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from edge.outbox import Outbox

ROOT = Path(__file__).resolve().parents[2]
_LISTENER_RE = re.compile(r"^\s+(phones|trunks)\s+(udp|tcp|tls)\s+([\d.]+):(\d+)$")


def stop_process(proc: subprocess.Popen[bytes] | None, timeout: float) -> int | None:
    """SIGTERM by PID, SIGKILL after ``timeout``; the exit status (None: never started)."""
    if proc is None:
        return None
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
    if proc.stdout is not None:
        proc.stdout.close()
    return proc.returncode


def phones_toml(phones: Iterable[tuple[str, str]], extra: str = "") -> str:
    return "".join(
        f'[[phones]]\nname = "u{ext}"\ntype = "generic_sip"\nextension = "{ext}"\n'
        f'password = "{password}"\n{extra}\n'
        for ext, password in phones
    )


class EdgeProcess:
    """``voxedge-edge --config`` in a subprocess; ports learned from its start-up banner."""

    def __init__(
        self,
        workdir: Path,
        phones: Iterable[tuple[str, str]],
        *,
        edge_extra: str = "",
        phones_extra: str = "",
        phone_extra: str = "",
        tls: bool = False,
        log_level: str = "INFO",
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        tls_lines = (
            'tls = "127.0.0.1:0"\ntls_cert = "tls/cert.pem"\ntls_key = "tls/key.pem"\n'
            "tls_self_signed = true\n"
            if tls
            else ""
        )
        self.config_path = workdir / "edge.toml"
        self.config_path.write_text(
            '[edge]\nname = "test"\ndomain = "voxedge.test"\nadvertise = "127.0.0.1"\n'
            f'data_dir = "data"\n{edge_extra}\n'
            f'[listen.phones]\nudp = "127.0.0.1:0"\ntcp = "127.0.0.1:0"\n{tls_lines}'
            f"{phones_extra}\n"
            '[listen.trunks]\nudp = "127.0.0.1:0"\n\n' + phones_toml(phones, phone_extra)
        )
        self.workdir = workdir
        self.log_path = workdir / "edge.log"
        self.log_level = log_level
        self.ports: dict[tuple[str, str], int] = {}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def cert(self) -> Path:
        return self.workdir / "tls" / "cert.pem"

    def call_records(self, count: int = 1, timeout: float = 10.0) -> list[dict[str, object]]:
        """The CDR payloads in the edge's outbox, once there are ``count`` (or at ``timeout``)."""
        deadline = time.monotonic() + timeout
        while True:
            with Outbox(self.workdir / "data" / "cache.sqlite") as outbox:
                records = [item.payload for item in outbox.pending(1000) if item.kind == "cdr"]
            if len(records) >= count or time.monotonic() > deadline:
                return records
            time.sleep(0.1)

    def port(self, transport: str, side: str = "phones") -> int:
        return self.ports[(side, transport)]

    def start(self, timeout: float = 15.0) -> EdgeProcess:
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "edge",
                "--config",
                str(self.config_path),
                "--log-level",
                self.log_level,
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=log,
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        os.set_blocking(self.proc.stdout.fileno(), False)
        buffer = b""
        while time.monotonic() < deadline:
            chunk = self.proc.stdout.read()
            if chunk:
                buffer += chunk
                if b"Ready.\n" in buffer:
                    break
            elif self.proc.poll() is not None:
                break
            time.sleep(0.02)
        for line in buffer.decode().splitlines():
            match = _LISTENER_RE.match(line)
            if match:
                self.ports[(match[1], match[2])] = int(match[4])
        if not self.ports:
            self.stop()
            raise RuntimeError(f"edge did not start: {buffer!r} {self.log_path.read_text()}")
        return self

    def reload(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 5.0) -> int | None:
        return stop_process(self.proc, timeout)

    def __enter__(self) -> EdgeProcess:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


class PairedEdgeProcess:
    """``voxedge-edge --controlplane …`` in a subprocess (paired mode). ``start`` waits for
    ``Ready.`` (SIP listening) or for the process to exit; ports come from the banner."""

    def __init__(self, workdir: Path, args: list[str], log_level: str = "INFO") -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.args = args
        self.log_level = log_level
        self.log_path = workdir / "edge.log"
        self.ports: dict[tuple[str, str], int] = {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.output = ""

    def start(self, timeout: float = 15.0) -> PairedEdgeProcess:
        self.ports = {}
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edge", *self.args, "--log-level", self.log_level],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=log,
        )
        log.close()
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        os.set_blocking(self.proc.stdout.fileno(), False)
        buffer = b""
        while time.monotonic() < deadline:
            chunk = self.proc.stdout.read()
            if chunk:
                buffer += chunk
                if b"Ready.\n" in buffer:
                    break
            elif self.proc.poll() is not None:
                break
            time.sleep(0.02)
        self.output = buffer.decode(errors="replace")
        for line in self.output.splitlines():
            match = _LISTENER_RE.match(line)
            if match:
                self.ports[(match[1], match[2])] = int(match[4])
        return self

    @property
    def ready(self) -> bool:
        return "Ready." in self.output

    def port(self, transport: str, side: str = "phones") -> int:
        return self.ports[(side, transport)]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 5.0, after: int = 0) -> bool:
        """Whether ``text`` appears in the log (past character ``after``) within ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log()[after:]:
                return True
            time.sleep(0.05)
        return False

    def wait(self, timeout: float = 10.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """SIGKILL: no clean shutdown (a crash)."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(5.0)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def stop(self, timeout: float = 10.0) -> int | None:
        return stop_process(self.proc, timeout)
