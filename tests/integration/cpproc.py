"""Run a real control plane (``python -m controlplane init`` then ``serve``) on free loopback
ports, for integration tests and benchmarks; stopped by PID."""

from __future__ import annotations

import contextlib
import re
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

START_TIMEOUT = 30.0
ADMIN = "admin"
ADMIN_PASSWORD = "admin-password-for-tests"
_READY = re.compile(r"grpc=([\d.]+):(\d+) pairing=[\d.]+:(\d+) https=(https://\S+/api/v1)")


@dataclass
class ControlPlane:
    proc: subprocess.Popen[bytes]
    grpc_port: int
    pairing_port: int
    api: str  # https://127.0.0.1:PORT/api/v1
    ca_file: Path
    log: Path

    @property
    def ca_pem(self) -> bytes:
        return self.ca_file.read_bytes()

    def client(self, timeout: float = 10.0) -> httpx.Client:
        """An HTTPS client trusting the control plane's CA, logged in as the admin."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        client = httpx.Client(base_url=self.api, verify=context, timeout=timeout)
        login = {"username": ADMIN, "password": ADMIN_PASSWORD}
        response = client.post("/auth/token", json=login)
        response.raise_for_status()
        client.headers["Authorization"] = f"Bearer {response.json()['token']}"
        return client


@contextlib.contextmanager
def control_plane(
    workdir: Path, database: str | None = None, log_level: str = "INFO"
) -> Iterator[ControlPlane]:
    """Init (org "acme", SIP domain voxedge.test, admin ``ADMIN``) and serve in ``workdir``."""
    data = workdir / "controlplane"
    db = ["--database", database] if database else []
    base = [sys.executable, "-m", "controlplane", "--log-level", log_level]
    subprocess.run(
        [*base, "init", "--data-dir", str(data), "--org", "acme", "--admin", ADMIN,
         "--admin-password", ADMIN_PASSWORD, *db],
        check=True,
        capture_output=True,
    )  # fmt: skip
    log_path = workdir / "controlplane.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*base, "serve", "--data-dir", str(data), "--grpc", "127.0.0.1:0",
             "--https", "127.0.0.1:0", *db],
            stdout=subprocess.PIPE,
            stderr=log,
        )  # fmt: skip
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT
        match = None
        while match is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                raise RuntimeError(f"control plane exited:\n{log_path.read_text()[-3000:]}")
            match = _READY.search(line.decode(errors="replace"))
        if match is None:
            raise RuntimeError(f"control plane not ready within {START_TIMEOUT:g} s")
        ca_file = data / "ca" / "ca-cert.pem"
        yield ControlPlane(proc, int(match[2]), int(match[3]), match[4], ca_file, log_path)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
