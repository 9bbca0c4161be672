"""Config feed benchmark: from an admin API write to the change applied on 1 and on 50 edges.

Usage (from the project root):

    .venv/bin/python benchmarks/feed_bench.py               # SQLite and PostgreSQL
    .venv/bin/python benchmarks/feed_bench.py --quick       # fewer writes, shorter API run
    .venv/bin/python benchmarks/feed_bench.py --only sqlite

Per backend the script starts a real control plane (``python -m controlplane init`` then
``serve`` on free ports of 127.0.0.1, tests/integration/cpproc.py; PostgreSQL is a throwaway
cluster with its durability defaults, tests/pgcluster.py), logs in over HTTPS, provisions a
site, a phone and 50 edges through the API, and pairs 50 gRPC clients that act as edges
(each with its own key, CSR, certificate and mutual-TLS channel, all in this process)
watching ``WatchConfig``.

- **write → applied**: with 1 and then 50 watchers, ``--writes`` times: PATCH the phone's name
  over HTTPS and wait until every watcher has received an update with a newer version; the time
  from just before the request to each watcher's arrival is one sample (so 50 edges times writes
  samples). Writes are sequential, 20 ms apart. p50/p99/max, and timeouts (5 s) as failures.
- **API writes/s**: 8 concurrent clients PATCH phone names for ``--seconds``, one watcher
  connected; writes/s, p50/p99 per request, the control plane's CPU (utime + stime from /proc,
  100% = one core).

The goal (issue 4): p99 < 200 ms for 50 edges.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import ssl
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the project root

from benchmarks.run import tree_cpu_seconds
from edge.pairing import new_key_and_csr, split_join_token
from protos.voxedge.v1 import edge_pb2, edge_pb2_grpc
from tests.integration.cpproc import ADMIN, ADMIN_PASSWORD, ControlPlane, control_plane
from tests.integration.sipp import percentile
from tests.pgcluster import new_database, throwaway_postgres

EDGES = 50
WAIT = 5.0  # bound on every wait for an update
GOAL_P99_MS = 200.0


@dataclass
class Watcher:
    """A gRPC client acting as one edge: paired, then watching the config feed."""

    channel: grpc.aio.Channel
    version: int = 0
    arrivals: dict[int, float] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    async def watch(self) -> None:
        stub = edge_pb2_grpc.EdgeServiceStub(self.channel)
        async for update in stub.WatchConfig(edge_pb2.WatchConfigRequest(from_version=0)):
            self.version = update.version
            self.arrivals[update.version] = time.perf_counter()
            self.changed.set()

    async def beyond(self, version: int) -> float:
        """When the first update newer than ``version`` arrived."""
        async with asyncio.timeout(WAIT):
            while self.version <= version:
                self.changed.clear()
                await self.changed.wait()
        return min(t for v, t in self.arrivals.items() if v > version)


async def pair(cp: ControlPlane, token: str) -> grpc.aio.Channel:
    key_pem, csr_pem = new_key_and_csr()
    roots = grpc.ssl_channel_credentials(root_certificates=cp.ca_pem)
    async with grpc.aio.secure_channel(f"127.0.0.1:{cp.pairing_port}", roots) as channel:
        paired = await edge_pb2_grpc.EdgeServiceStub(channel).Pair(
            edge_pb2.PairRequest(token=token, csr_pem=csr_pem)
        )
    mutual = grpc.ssl_channel_credentials(cp.ca_pem, key_pem, paired.certificate_pem)
    return grpc.aio.secure_channel(f"127.0.0.1:{cp.grpc_port}", mutual)


@contextlib.asynccontextmanager
async def api_client(cp: ControlPlane) -> AsyncIterator[httpx.AsyncClient]:
    context = ssl.create_default_context(cafile=str(cp.ca_file))
    async with httpx.AsyncClient(base_url=cp.api, verify=context, timeout=WAIT) as client:
        response = await client.post(
            "/auth/token", json={"username": ADMIN, "password": ADMIN_PASSWORD}
        )
        response.raise_for_status()
        client.headers["Authorization"] = f"Bearer {response.json()['token']}"
        yield client


async def create(client: httpx.AsyncClient, path: str, body: dict[str, object]) -> str:
    response = await client.post(path, json=body)
    if response.status_code != 201:
        raise RuntimeError(f"POST {path}: {response.status_code} {response.text}")
    return str(response.json()["id"])


async def write_to_applied(
    client: httpx.AsyncClient, phone: str, watchers: list[Watcher], writes: int
) -> tuple[list[float], int]:
    samples: list[float] = []
    failures = 0
    for i in range(writes):
        before = [w.version for w in watchers]
        started = time.perf_counter()
        response = await client.patch(f"/phones/{phone}", json={"name": f"bench {i}"})
        response.raise_for_status()
        results = await asyncio.gather(
            *(w.beyond(v) for w, v in zip(watchers, before, strict=True)),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, float):
                samples.append((result - started) * 1000)
            else:
                failures += 1
        await asyncio.sleep(0.02)
    return samples, failures


async def api_writes(
    client: httpx.AsyncClient, phone: str, seconds: float, pid: int
) -> tuple[float, list[float], float]:
    times: list[float] = []
    end = time.perf_counter() + seconds

    async def writer(n: int) -> None:
        i = 0
        while time.perf_counter() < end:
            started = time.perf_counter()
            response = await client.patch(f"/phones/{phone}", json={"name": f"w{n}-{i}"})
            response.raise_for_status()
            times.append((time.perf_counter() - started) * 1000)
            i += 1

    cpu = tree_cpu_seconds(pid)
    began = time.perf_counter()
    await asyncio.gather(*(writer(n) for n in range(8)))
    elapsed = time.perf_counter() - began
    return len(times) / elapsed, times, 100 * (tree_cpu_seconds(pid) - cpu) / elapsed


def _ms(samples: list[float], q: float) -> str:
    return f"{percentile(samples, q):7.1f}" if samples else "      -"


async def bench_backend(name: str, cp: ControlPlane, writes: int, seconds: float) -> bool:
    async with api_client(cp) as client:
        site = await create(client, "/sites", {"name": "bench"})
        phone = await create(
            client,
            "/phones",
            {
                "name": "bench",
                "type": "generic_sip",
                "site_id": site,
                "extension": "1001",
                "password": "bench-phone-secret",
            },
        )
        watchers = []
        for i in range(EDGES):
            edge = await create(client, "/edges", {"name": f"edge-{i}", "site_id": site})
            token = (await client.post(f"/edges/{edge}/pairing-token")).json()["token"]
            secret, _ = split_join_token(token)  # the CA file is at hand: no pin needed
            watchers.append(Watcher(await pair(cp, secret)))
        met = True
        try:
            for count in (1, EDGES):
                group = watchers[:count]
                for w in group:
                    w.task = w.task or asyncio.create_task(w.watch())
                await asyncio.gather(*(w.beyond(0) for w in group))  # first snapshots
                cpu = tree_cpu_seconds(cp.proc.pid)
                began = time.perf_counter()
                samples, failures = await write_to_applied(client, phone, group, writes)
                cpu_pct = (
                    100 * (tree_cpu_seconds(cp.proc.pid) - cpu) / (time.perf_counter() - began)
                )
                print(
                    f"{name:10} {count:5} {writes:6} {_ms(samples, 0.5)} {_ms(samples, 0.99)}"
                    f" {max(samples, default=0):7.1f} {failures:8} {cpu_pct:7.1f}",
                    flush=True,
                )
                if count == EDGES:
                    met = not failures and percentile(samples, 0.99) < GOAL_P99_MS
            for w in watchers[1:]:
                if w.task:
                    w.task.cancel()
            rate, times, cpu_pct = await api_writes(client, phone, seconds, cp.proc.pid)
            print(
                f"{name:10} API writes: {rate:7.1f}/s with 8 clients, p50 {_ms(times, 0.5)} ms,"
                f" p99 {_ms(times, 0.99)} ms, control plane {cpu_pct:5.1f}% CPU",
                flush=True,
            )
        finally:
            for w in watchers:
                if w.task:
                    w.task.cancel()
                await w.channel.close()
    return met


async def run(backends: list[str], writes: int, seconds: float) -> int:
    print("config feed: API write -> change applied on gRPC clients acting as edges")
    print("backend    edges writes  p50 ms  p99 ms  max ms timeouts  cp CPU%")
    status = 0
    for backend in backends:
        workdir = Path(tempfile.mkdtemp(prefix=f"voxedge-feed-{backend}-"))
        try:
            with contextlib.ExitStack() as stack:
                database = None
                if backend == "postgresql":
                    host, port = stack.enter_context(throwaway_postgres(durable=True))
                    database = await new_database(host, port, "bench")
                cp = stack.enter_context(control_plane(workdir, database, log_level="WARNING"))
                met = await bench_backend(backend, cp, writes, seconds)
                verdict = "met" if met else "NOT met"
                print(f"{backend:10} goal p99 < {GOAL_P99_MS:g} ms at {EDGES} edges: {verdict}")
                status = status if met else 1
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="20 writes, 3 s of API writes")
    parser.add_argument("--writes", type=int, help="writes per step (default 100)")
    parser.add_argument("--seconds", type=float, help="API writes/s duration (default 10)")
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    args = parser.parse_args(argv)
    writes = args.writes or (20 if args.quick else 100)
    seconds = args.seconds or (3.0 if args.quick else 10.0)
    backends = [args.only] if args.only else ["sqlite", "postgresql"]
    return asyncio.run(run(backends, writes, seconds))


if __name__ == "__main__":
    sys.exit(main())
