"""Media relay benchmark: RelaySession against a bare uvloop UDP forwarder, per call and packet.

Usage (from the project root):

    .venv/bin/python benchmarks/relay_bench.py            # 4 s steps
    .venv/bin/python benchmarks/relay_bench.py --quick    # 1.5 s steps, for a smoke test
    .venv/bin/python benchmarks/relay_bench.py --only relay --steps 200,400,800

Three processes: this one (orchestrates, mostly asleep), the target (``--serve forwarder`` or
``--serve relay``, on uvloop, pinned to CPU 0) and a load generator (``--generator``, pinned to
CPU 1), all on 127.0.0.1 and talking over stdin/stdout JSON lines.

- ``forwarder``: per call leg one DatagramProtocol socket that ``sendto()``s every packet to a
  fixed address: the ceiling of Python + uvloop for one receive and one send per packet.
- ``relay``: one ``media.relay.RelaySession`` per call (four sockets, latching, counters), with
  the generator's sockets as the SDP addresses of both legs.

The generator emulates N G.711 calls: 50 packets/s each way, 172 octets (12 RTP header + 160
payload), paced by a 20-slot timer wheel of 1 ms ticks (call i sends on tick i mod 20, both
directions in one batch, through sendmmsg/recvmmsg). It sends from and receives on one socket
per side: each relay socket still hears one source, and the generator's per-packet cost stays
mostly in the kernel. The payload carries the send time (CLOCK_MONOTONIC, ns) so the generator
measures the added latency on the same clock, and a phase byte so a short warm-up is left out.

Per step: calls, packets/s through the target, the target process's CPU (utime + stime from
/proc/PID/stat over the timed window; 100% = one core), the kernel's share of it (``sys%``),
µs of CPU per packet, loss, p50/p99 latency, and the generator's own CPU. A step marked ``*``
had the generator above 90% CPU or more than 1% of its ticks over 2 ms late: the generator,
not the target, may have been the limit. A step sustains with < 0.1% loss and p99 < 5 ms;
a step that does not is run once more (one scheduler hiccup can cost a short step its p99),
and stepping stops when the retry fails too.

``main(argv)`` returns the step rows (``StepResult``) so another script can import and call it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import functools
import gc
import json
import os
import select
import socket
import struct
import subprocess
import sys
import time
from array import array
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the project root

LOCAL = "127.0.0.1"
STEPS = (50, 100, 200, 400, 600, 800, 1000, 1200, 1400, 1600, 1800, 2000, 2400, 2800)
PACKET_SIZE = 172  # RTP header 12 + 20 ms of G.711 (160)
TICK_NS = 1_000_000  # timer wheel tick
SLOTS = 20  # 20 ticks = one 20 ms packet interval
LATE_NS = 2_000_000  # a tick sent this late counts as the generator falling behind
WARMUP_S = 0.3
DRAIN_S = 0.3
LOSS_LIMIT_PCT = 0.1
P99_LIMIT_MS = 5.0
RELAY_PORTS = (20000, 32767)  # DESIGN.md media range, extended below the ephemeral range
IO_TIMEOUT = 60.0  # any one control-channel answer
# RFC 3550 §5.1 fixed header (V=2, PT=0 PCMU, seq, timestamp, SSRC), then send time and phase
_HEAD = struct.Struct("!BBHIIqB")
_SENT_AT = struct.Struct("!q")


# -- the target: forwarder or relay ---------------------------------------------------------


class Forwarder(asyncio.DatagramProtocol):
    """The bare minimum: every packet goes out of the same socket to one fixed address."""

    __slots__ = ("to", "transport")

    def __init__(self, to: tuple[str, int]) -> None:
        self.to = to

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: Any = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.transport.sendto(data, self.to)


async def _serve(mode: str) -> None:
    from media.ports import PortPool
    from media.relay import RelaySession

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    pool = PortPool(*RELAY_PORTS)
    sessions: list[RelaySession] = []
    transports: list[asyncio.BaseTransport] = []

    def reply(obj: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    try:
        while line := await reader.readline():
            cmd = json.loads(line)
            if cmd["op"] == "open":
                side_a = [tuple(x) for x in cmd["a"]]
                side_b = [tuple(x) for x in cmd["b"]]
                ports: list[tuple[int, int]] = []
                for i in range(cmd["calls"]):
                    to_a, to_b = side_a[i % len(side_a)], side_b[i % len(side_b)]
                    if mode == "relay":
                        s = await RelaySession.open(
                            loop, pool, LOCAL, expected_a=to_a, expected_b=to_b
                        )
                        sessions.append(s)
                        ports.append((s.ports_a[0], s.ports_b[0]))
                    else:  # leg A's socket forwards to B's phone and back
                        ta, _ = await loop.create_datagram_endpoint(
                            functools.partial(Forwarder, to_b), local_addr=(LOCAL, 0)
                        )
                        tb, _ = await loop.create_datagram_endpoint(
                            functools.partial(Forwarder, to_a), local_addr=(LOCAL, 0)
                        )
                        transports += (ta, tb)
                        ports.append((ta.get_extra_info("sockname")[1],
                                      tb.get_extra_info("sockname")[1]))  # fmt: skip
                gc.collect()
                gc.freeze()  # as the daemon does: long-lived objects out of the GC's way
                reply({"ports": ports})
            elif cmd["op"] == "close":
                totals = {"dropped_unlatched": 0, "dropped_no_target": 0, "relayed": 0}
                for s in sessions:
                    st = s.stats()
                    for d in (st.a_to_b, st.b_to_a):
                        totals["dropped_unlatched"] += d.dropped_unlatched
                        totals["dropped_no_target"] += d.dropped_no_target
                        totals["relayed"] += d.packets
                    s.close()
                for t in transports:
                    t.close()
                sessions.clear()
                transports.clear()
                gc.unfreeze()
                await asyncio.sleep(0.05)  # let the loop finish closing sockets
                reply(totals)
            else:
                break
    finally:
        for s in sessions:
            s.close()
        for t in transports:
            t.close()


def serve(mode: str) -> None:
    import uvloop

    uvloop.run(_serve(mode))


# -- the load generator ---------------------------------------------------------------------
#
# Python's socket module has no sendmmsg/recvmmsg; one sendto per packet costs the generator
# about as much CPU as the relay spends per packet, so the generator would saturate first.
# It calls them through ctypes instead: per 1 ms tick one sendmmsg per side carries every packet
# of the slot (all iovecs share one buffer: the same header, send time and phase), and one
# recvmmsg takes up to RX_BATCH packets. Python work per packet is then one struct read.


class _Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class _Msghdr(ctypes.Structure):
    _fields_ = [
        ("msg_name", ctypes.c_void_p),
        ("msg_namelen", ctypes.c_uint32),
        ("msg_iov", ctypes.POINTER(_Iovec)),
        ("msg_iovlen", ctypes.c_size_t),
        ("msg_control", ctypes.c_void_p),
        ("msg_controllen", ctypes.c_size_t),
        ("msg_flags", ctypes.c_int),
    ]


class _Mmsghdr(ctypes.Structure):
    _fields_ = [("msg_hdr", _Msghdr), ("msg_len", ctypes.c_uint)]


_MSG_DONTWAIT = 0x40
RX_BATCH = 256
_MMSG_SIZE = ctypes.sizeof(_Mmsghdr)
RX_SLOT = 256  # octets kept of each received packet (more than PACKET_SIZE)


def _sockaddr_in(port: int) -> bytes:
    return (
        struct.pack("=H", socket.AF_INET)
        + struct.pack("!H", port)
        + socket.inet_aton(LOCAL)
        + bytes(8)
    )


class _Batch:
    """A prebuilt sendmmsg vector: one shared packet buffer to many destination ports."""

    def __init__(self, packet: Any, ports: list[int]) -> None:
        self.count = len(ports)
        self.names = ctypes.create_string_buffer(b"".join(_sockaddr_in(p) for p in ports))
        self.iov = _Iovec(ctypes.addressof(packet), PACKET_SIZE)
        self.msgs = (_Mmsghdr * max(1, self.count))()
        for i, m in enumerate(self.msgs[: self.count]):
            m.msg_hdr.msg_name = ctypes.addressof(self.names) + 16 * i
            m.msg_hdr.msg_namelen = 16
            m.msg_hdr.msg_iov = ctypes.pointer(self.iov)
            m.msg_hdr.msg_iovlen = 1


def _generate_step(
    ports: list[list[int]], seconds: float, side_a: socket.socket, side_b: socket.socket
) -> dict[str, Any]:
    libc = ctypes.CDLL(None, use_errno=True)
    sendmmsg, recvmmsg = libc.sendmmsg, libc.recvmmsg
    packet = (ctypes.c_char * PACKET_SIZE)()
    pmv = memoryview(packet).cast("B")
    # call i is in slot i mod SLOTS; side A's packets go to its relay A port, B's to B.
    wheel = [
        (
            _Batch(packet, [pa for pa, _ in ports[slot::SLOTS]]),
            _Batch(packet, [pb for _, pb in ports[slot::SLOTS]]),
        )
        for slot in range(SLOTS)
    ]
    fa, fb = side_a.fileno(), side_b.fileno()
    rx = ctypes.create_string_buffer(RX_BATCH * RX_SLOT)
    rx_iov = (_Iovec * RX_BATCH)()
    rx_msgs = (_Mmsghdr * RX_BATCH)()
    for i in range(RX_BATCH):
        rx_iov[i].iov_base = ctypes.addressof(rx) + RX_SLOT * i
        rx_iov[i].iov_len = RX_SLOT
        rx_msgs[i].msg_hdr.msg_iov = ctypes.pointer(rx_iov[i])
        rx_msgs[i].msg_hdr.msg_iovlen = 1
    rmv = memoryview(rx).cast("B")
    pack, sent_at, clock = _HEAD.pack_into, _SENT_AT.unpack_from, time.monotonic_ns
    latencies = array("q")
    lat_append = latencies.append
    warm_ticks = int(WARMUP_S * 1000)
    end_tick = warm_ticks + int(seconds * 1000)
    sent = received = send_errors = late_ticks = 0
    cpu0 = cpu1 = wall0 = wall1 = 0.0
    start = clock()
    tick = 0
    next_at = start
    drain_until: int | None = None
    readers = [fa, fb]
    while True:
        now = clock()
        if tick < end_tick and now >= next_at:
            phase = 1 if tick >= warm_ticks else 0
            if tick == warm_ticks:
                _emit({"event": "t0"})
                cpu0, wall0 = time.process_time(), time.monotonic()
            if phase and now - next_at > LATE_NS:
                late_ticks += 1
            seq = (tick // SLOTS) & 0xFFFF
            for fd, batch in zip((fa, fb), wheel[tick % SLOTS], strict=True):
                if not batch.count:
                    continue
                pack(pmv, 0, 0x80, 0, seq, seq * 160, 0, clock(), phase)
                done = 0
                for _ in range(8):  # bounded retries of a partial send
                    n = sendmmsg(
                        fd, ctypes.byref(batch.msgs, _MMSG_SIZE * done), batch.count - done, 0
                    )
                    if n <= 0:
                        break
                    done += n
                    if done == batch.count:
                        break
                send_errors += batch.count - done
                sent += done * phase
            tick += 1
            next_at = start + tick * TICK_NS
            if tick == end_tick:
                cpu1, wall1 = time.process_time(), time.monotonic()
                _emit({"event": "t1"})
                drain_until = now + int(DRAIN_S * 1e9)
            timeout = 0.0
        elif drain_until is not None:
            if now >= drain_until or received >= sent:
                break
            timeout = 0.01
        else:
            timeout = max(0.0, (next_at - now) / 1e9)
        # select() takes microseconds; epoll/poll would round the wait up to a millisecond.
        for fd in select.select(readers, [], [], timeout)[0]:
            for _ in range(64):  # bounded: sends must not starve
                n = recvmmsg(fd, rx_msgs, RX_BATCH, _MSG_DONTWAIT, None)
                if n <= 0:
                    break
                now = clock()
                for off in range(0, n * RX_SLOT, RX_SLOT):
                    if rmv[off + 20]:  # phase 1: timed
                        received += 1
                        lat_append(now - sent_at(rmv, off + 12)[0])
                if n < RX_BATCH:
                    break
    window = wall1 - wall0
    ordered = sorted(latencies)
    return {
        "sent": sent,
        "received": received,
        "send_errors": send_errors,
        "window": window,
        "p50_ms": _percentile(ordered, 0.50),
        "p99_ms": _percentile(ordered, 0.99),
        "late_ticks_pct": 100.0 * late_ticks / max(1, end_tick - warm_ticks),
        "cpu_pct": 100.0 * (cpu1 - cpu0) / window if window > 0 else 0.0,
    }


def _emit(obj: dict[str, Any]) -> None:
    os.write(1, (json.dumps(obj) + "\n").encode())


def _percentile(sorted_values: Sequence[int], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))] / 1e6


def generator() -> None:
    """One socket per side: it sends as every phone of that side and receives for them all
    (the relay latches each leg to it; the forwarder sends to it)."""
    sides: list[socket.socket] = []
    try:
        for _ in range(2):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sides.append(s)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
            s.bind((LOCAL, 0))
            s.setblocking(False)
        _emit({"a": [sides[0].getsockname()], "b": [sides[1].getsockname()]})
        for line in sys.stdin:
            cmd = json.loads(line)
            if cmd["op"] != "run":
                break
            _emit({"result": _generate_step(cmd["ports"], cmd["seconds"], *sides)})
    finally:
        for s in sides:
            s.close()


# -- orchestration --------------------------------------------------------------------------


@dataclass(slots=True)
class StepResult:
    target: str
    calls: int
    pps: float  # packets/s through the target (received by the generator)
    cpu_pct: float  # target process, 100 = one core
    sys_share_pct: float  # of that, the part spent in the kernel
    us_per_packet: float  # target CPU per relayed packet
    loss_pct: float
    p50_ms: float
    p99_ms: float
    gen_cpu_pct: float
    gen_bound: bool
    sustained: bool
    note: str = ""

    def __str__(self) -> str:
        return (
            f"{self.target:<9} {self.calls:>6} {self.pps:>9.0f} {self.cpu_pct:>6.1f} "
            f"{self.sys_share_pct:>5.0f} "
            f"{self.us_per_packet:>7.2f} {self.loss_pct:>7.3f} {self.p50_ms:>7.3f} "
            f"{self.p99_ms:>7.3f} {self.gen_cpu_pct:>6.1f}{'*' if self.gen_bound else ' '} "
            f"{'yes' if self.sustained else 'NO ':<4}{self.note}"
        )


HEADER = (
    f"{'target':<9} {'calls':>6} {'pkt/s':>9} {'cpu%':>6} {'sys%':>5} {'µs/pkt':>7} {'loss%':>7} "
    f"{'p50 ms':>7} {'p99 ms':>7} {'gen%':>6}  ok"
)


class Child:
    """A child process speaking JSON lines; every read is bounded by IO_TIMEOUT."""

    def __init__(self, args: list[str], cpu: int | None) -> None:
        self.name = " ".join(args)
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,
        )
        self._buf = b""
        if cpu is not None:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(self.proc.pid, {cpu})

    def send(self, obj: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(obj) + "\n").encode())

    def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + IO_TIMEOUT
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                raise TimeoutError(f"no answer from {self.name}")
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                raise EOFError(f"{self.name} exited with {self.proc.wait(5)}")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        result: dict[str, Any] = json.loads(line)
        return result

    def cpu_seconds(self) -> tuple[float, float]:
        """(user, system) CPU seconds of the process (/proc/PID/stat utime, stime)."""
        with open(f"/proc/{self.proc.pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        tick = os.sysconf("SC_CLK_TCK")
        return int(fields[11]) / tick, int(fields[12]) / tick

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def run_target(target: str, steps: Sequence[int], seconds: float) -> list[StepResult]:
    pin = (os.cpu_count() or 1) >= 2
    server = Child(["--serve", target], 0 if pin else None)
    gen = Child(["--generator"], 1 if pin else None)
    rows: list[StepResult] = []
    try:
        addrs = gen.read()
        for calls in (c for c in steps for _ in range(2)):  # a failed step runs once more
            if rows and rows[-1].calls == calls and rows[-1].sustained:
                continue
            server.send({"op": "open", "calls": calls, "a": addrs["a"], "b": addrs["b"]})
            ports = server.read()["ports"]
            gen.send({"op": "run", "ports": ports, "seconds": seconds})
            assert gen.read() == {"event": "t0"}
            cpu0 = server.cpu_seconds()
            assert gen.read() == {"event": "t1"}
            cpu1 = server.cpu_seconds()
            res = gen.read()["result"]
            server.send({"op": "close"})
            counters = server.read()
            window, sent, received = res["window"], res["sent"], res["received"]
            cpu = sum(cpu1) - sum(cpu0)
            system = cpu1[1] - cpu0[1]
            loss = 100.0 * (sent - received) / sent if sent else 100.0
            gen_bound = res["cpu_pct"] > 90.0 or res["late_ticks_pct"] > 1.0
            note = []
            if res["send_errors"]:
                note.append(f"{res['send_errors']} send errors")
            if counters["dropped_unlatched"] or counters["dropped_no_target"]:
                note.append(f"relay drops {counters}")
            if gen_bound:
                note.append(f"generator-bound ({res['late_ticks_pct']:.1f}% ticks late)")
            row = StepResult(
                target=target,
                calls=calls,
                pps=received / window,
                cpu_pct=100.0 * cpu / window,
                sys_share_pct=100.0 * system / cpu if cpu else 0.0,
                us_per_packet=1e6 * cpu / received if received else float("nan"),
                loss_pct=loss,
                p50_ms=res["p50_ms"],
                p99_ms=res["p99_ms"],
                gen_cpu_pct=res["cpu_pct"],
                gen_bound=gen_bound,
                sustained=loss < LOSS_LIMIT_PCT and res["p99_ms"] < P99_LIMIT_MS,
                note="; ".join(note),
            )
            retry = bool(rows) and rows[-1].calls == calls
            if retry:
                row.note = "; ".join(filter(None, ("retry", row.note)))
            rows.append(row)
            print(row, flush=True)
            if retry and not row.sustained:
                break
    finally:
        gen.stop()
        server.stop()
    return rows


def summary(rows: Sequence[StepResult]) -> list[str]:
    best: dict[str, StepResult] = {}
    for row in rows:
        if row.sustained and (row.target not in best or row.calls > best[row.target].calls):
            best[row.target] = row
    lines = []
    for target in ("forwarder", "relay"):
        b = best.get(target)
        if b is None:
            lines.append(f"{target}: no step sustained")
            continue
        top = [r for r in rows if r.target == target][-1]
        capped = " (the last step offered still passed: raise --steps)" if top.sustained else ""
        lines.append(
            f"{target}: sustained {b.calls} calls = {b.pps:,.0f} pkt/s at {b.cpu_pct:.0f}% CPU, "
            f"{b.us_per_packet:.2f} µs CPU/packet, p99 {b.p99_ms:.2f} ms"
            + (" [generator-bound]" if b.gen_bound else "")
            + capped
        )
    if "forwarder" in best and "relay" in best:
        f, r = best["forwarder"], best["relay"]
        lines.append(
            f"relay / forwarder: {100.0 * r.calls / f.calls:.0f}% of the calls (goal >= 80%), "
            f"{100.0 * f.us_per_packet / r.us_per_packet:.0f}% of the per-packet efficiency "
            f"({r.us_per_packet:.2f} vs {f.us_per_packet:.2f} µs)"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> list[StepResult]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="1.5 s steps")
    parser.add_argument("--seconds", type=float, help="timed seconds per step (default 4)")
    parser.add_argument("--steps", help="comma-separated call counts")
    parser.add_argument("--only", choices=("forwarder", "relay"))
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args(argv)
    seconds = args.seconds or (1.5 if args.quick else 4.0)
    steps = tuple(int(x) for x in args.steps.split(",")) if args.steps else STEPS
    targets = (args.only,) if args.only else ("forwarder", "relay")
    print(f"{len(steps)} steps up to {steps[-1]} calls, {seconds} s each; G.711 50 pkt/s/way")
    print(HEADER, flush=True)
    rows: list[StepResult] = []
    for target in targets:
        rows += run_target(target, steps, seconds)
    for line in summary(rows):
        print(line)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=1))
    return rows


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--serve":
        serve(sys.argv[2])
    elif len(sys.argv) > 1 and sys.argv[1] == "--generator":
        generator()
    else:
        main()
