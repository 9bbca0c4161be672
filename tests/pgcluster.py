"""A throwaway PostgreSQL cluster for tests and benchmarks.

``initdb`` + ``pg_ctl`` (run as the ``postgres`` OS user when we are root: initdb refuses root)
on a free port of 127.0.0.1 with its socket in a temporary directory; stopped by PID and
removed afterwards. ``make system-deps`` apt-installs ``postgresql`` when it is missing; no
system service is used.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg

PG_USER = "voxedge"


def pg_bin() -> Path:
    if configured := os.environ.get("VOXEDGE_PG_BIN"):
        return Path(configured)
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True
    )
    if not versions:
        raise RuntimeError("PostgreSQL server binaries not found: run `make system-deps`")
    return versions[0]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def throwaway_postgres(*, durable: bool = False) -> Iterator[tuple[str, int]]:
    """(host, port) of a new cluster with a trust-auth superuser ``voxedge``.

    Tests run it with fsync off (speed); ``durable=True`` keeps PostgreSQL's defaults, for
    benchmarks whose figures should mean what they would in production.
    """
    binaries = pg_bin()
    root = os.geteuid() == 0
    as_pg = ["runuser", "-u", "postgres", "--"] if root else []
    base = Path(tempfile.mkdtemp(prefix="voxedge-pg-"))
    data = base / "data"
    if root:
        shutil.chown(base, "postgres", "postgres")
    port = _free_port()
    pid: int | None = None
    try:
        subprocess.run(
            [
                *as_pg,
                *(str(binaries / "initdb"), "-D", str(data), "-U", PG_USER, "--auth=trust"),
                *("-E", "UTF8", "--no-sync", "--no-instructions"),
            ],
            check=True,
            capture_output=True,
        )
        options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={base}"
        if not durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        subprocess.run(
            [
                *as_pg,
                *(str(binaries / "pg_ctl"), "-D", str(data), "-o", options),
                *("-l", str(base / "server.log"), "-w", "-t", "60", "start"),
            ],
            check=True,
            capture_output=True,
        )
        pid = int((data / "postmaster.pid").read_text().split()[0])
        yield "127.0.0.1", port
    finally:
        if pid is not None:
            subprocess.run(
                [*as_pg, str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                capture_output=True,
            )
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)  # only if the fast shutdown did not finish
        shutil.rmtree(base, ignore_errors=True)


def database_name(url: str) -> str:
    return url.rsplit("/", 1)[1]


async def drop_database(host: str, port: int, url: str) -> None:
    admin = await asyncpg.connect(host=host, port=port, user=PG_USER, database="postgres")
    try:
        await admin.execute(f'DROP DATABASE "{database_name(url)}" WITH (FORCE)')
    finally:
        await admin.close()


async def new_database(host: str, port: int, prefix: str = "voxedge") -> str:
    """Create an empty database on the cluster; its ``postgresql+asyncpg://`` URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(host=host, port=port, user=PG_USER, database="postgres")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return f"postgresql+asyncpg://{PG_USER}@{host}:{port}/{name}"
