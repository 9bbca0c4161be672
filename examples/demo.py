"""``make run``: a control plane and a paired edge on this machine, with a demo organisation.

1. ``voxedge-controlplane init`` in a fresh ``var/demo/controlplane`` (store, CA, organisation
   "Demo" with SIP domain voxedge.test, admin ``admin`` with a generated password);
2. ``voxedge-controlplane serve`` (gRPC 127.0.0.1:50051, pairing :50052, HTTPS :8443);
3. through the HTTPS API, as the admin: a site, an edge, two generic SIP phones (1001, 1002),
   a WebRTC phone record (1003), a carrier trunk record, a pairing token for the edge;
4. ``voxedge-edge --controlplane … --pairing-token …``: the edge pairs, receives its
   configuration over gRPC and starts its SIP listeners (phones on 127.0.0.1:8060 UDP/TCP);
5. prints the softphone credentials, the admin token and how to call the API, then runs until
   Ctrl-C (or SIGTERM), and stops both processes by PID.

Only the standard library: HTTPS with urllib, trusting the demo CA the control plane created.
Every address is 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 30.0
PHONES = (("1001", "Alice", "generic_sip"), ("1002", "Bob", "generic_sip"))
WEBRTC = ("1003", "Carol (browser)", "webrtc")
_CP_READY = re.compile(r"ready: grpc=[\d.]+:(\d+) pairing=[\d.]+:(\d+) https=(https://\S+)")
_EDGE_READY = "Ready."


def _echo_rest(stream: IO[bytes]) -> None:
    for line in stream:
        sys.stdout.write(line.decode(errors="replace"))
        sys.stdout.flush()


def wait_for(proc: subprocess.Popen[bytes], pattern: re.Pattern[str] | str) -> re.Match[str] | str:
    """Echo the process's output until a line matches; then keep echoing in a thread."""
    assert proc.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        raw = proc.stdout.readline()
        if not raw:
            raise SystemExit(f"demo: {proc.args[2:4]} exited with {proc.wait()}")
        line = raw.decode(errors="replace")
        sys.stdout.write(line)
        found = pattern.search(line) if isinstance(pattern, re.Pattern) else pattern in line
        if found:
            threading.Thread(target=_echo_rest, args=(proc.stdout,), daemon=True).start()
            return found
    raise SystemExit(f"demo: {proc.args[2:4]} not ready within {START_TIMEOUT:g} s")


class Api:
    def __init__(self, base: str, ca_file: Path) -> None:
        self.base = base
        self.context = ssl.create_default_context(cafile=str(ca_file))
        self.token = ""

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(
            self.base + path,
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Content-Type": "application/json"}
            | ({"Authorization": f"Bearer {self.token}"} if self.token else {}),
        )
        with urllib.request.urlopen(request, context=self.context, timeout=10) as response:
            return json.loads(response.read() or b"null")


def provision(api: Api, admin_password: str) -> tuple[str, list[tuple[str, str, str]]]:
    """The demo organisation's records; the edge's pairing token and the phones' passwords."""
    api.token = api.call("POST", "/auth/token", {"username": "admin", "password": admin_password})[
        "token"
    ]
    site = api.call("POST", "/sites", {"name": "Demo site"})["id"]
    edge = api.call("POST", "/edges", {"name": "demo-edge", "site_id": site})["id"]
    phones = []
    for extension, name, kind in (*PHONES, WEBRTC):
        password = secrets.token_urlsafe(9)
        api.call(
            "POST",
            "/phones",
            {
                "name": name,
                "type": kind,
                "site_id": site,
                "extension": extension,
                "password": password,
            },
        )
        phones.append((extension, name, password))
    # A carrier trunk record (the edge carries it in its configuration; trunk calls come with
    # the trunks issue), on loopback like everything the demo starts.
    api.call(
        "POST",
        "/trunks",
        {"name": "Demo carrier", "site_id": site, "host": "127.0.0.1", "port": 5080},
    )
    token = api.call("POST", f"/edges/{edge}/pairing-token")["token"]
    return token, phones


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=ROOT / "var" / "demo")
    parser.add_argument("--grpc", default="127.0.0.1:50051")
    parser.add_argument("--https", default="127.0.0.1:8443")
    parser.add_argument("--edge-config", type=Path, help="local edge TOML (listen addresses)")
    args = parser.parse_args(argv)
    shutil.rmtree(args.workdir, ignore_errors=True)  # every `make run` starts a fresh demo
    cp_dir, edge_dir = args.workdir / "controlplane", args.workdir / "edge"
    admin_password = secrets.token_urlsafe(12)
    python = [sys.executable, "-m"]
    subprocess.run(
        [
            *python,
            "controlplane",
            "init",
            "--data-dir",
            str(cp_dir),
            "--org",
            "Demo",
            "--admin",
            "admin",
            "--admin-password",
            admin_password,
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    ca_file = cp_dir / "ca" / "ca-cert.pem"
    procs: list[subprocess.Popen[bytes]] = []
    stop = threading.Event()
    for handled in (signal.SIGINT, signal.SIGTERM):
        signal.signal(handled, lambda *_: stop.set())
    try:
        cp = subprocess.Popen(
            [
                *python,
                "controlplane",
                "serve",
                "--data-dir",
                str(cp_dir),
                "--grpc",
                args.grpc,
                "--https",
                args.https,
            ],
            stdout=subprocess.PIPE,
        )
        procs.append(cp)
        ready = wait_for(cp, _CP_READY)
        assert isinstance(ready, re.Match)
        api = Api(ready[3], ca_file)
        token, phones = provision(api, admin_password)
        grpc_host = args.grpc.rpartition(":")[0]
        edge_args = [*python, "edge", "--controlplane", f"{grpc_host}:{ready[1]}"]
        edge_args += ["--pairing-port", ready[2], f"--pairing-token={token}"]
        edge_args += ["--data-dir", str(edge_dir)]  # the join token pins the CA
        if args.edge_config:
            edge_args += ["--config", str(args.edge_config)]
        edge = subprocess.Popen(edge_args, stdout=subprocess.PIPE)
        procs.append(edge)
        wait_for(edge, _EDGE_READY)
        print()
        print("Demo organisation provisioned through the API; the edge paired and is serving it.")
        print("Softphones (SIP domain voxedge.test, registrar/outbound proxy: see the edge's")
        print("phones listener above, by default 127.0.0.1:8060 UDP or TCP):")
        for extension, name, password in phones:
            print(f"  {extension:6} {name:18} password {password}")
        print("baresip accounts line:")
        print(
            f"  <sip:{phones[0][0]}@voxedge.test>;auth_pass={phones[0][2]};"
            'outbound="sip:127.0.0.1:8060"'
        )
        print(f"Admin API: {ready[3]} (OpenAPI: {ready[3].removesuffix('/api/v1')}/docs)")
        print(f"  admin token: {api.token}")
        print(f"  curl --cacert {ca_file} -H 'Authorization: Bearer …' {ready[3]}/phones")
        print("Ctrl-C stops the edge and the control plane.", flush=True)
        while not stop.is_set() and all(p.poll() is None for p in procs):
            stop.wait(0.5)
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
    failed = [p for p in procs if p.returncode not in (0, -signal.SIGTERM)]
    return 1 if failed and not stop.is_set() else 0


if __name__ == "__main__":
    sys.exit(main())
