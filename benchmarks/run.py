"""Registrar load benchmark: REGISTER with digest against VoxEdge's edge and against Kamailio.

Usage (from the project root):

    .venv/bin/python benchmarks/run.py                      # every target, UDP, 10 s steps
    .venv/bin/python benchmarks/run.py --quick              # 2 s steps, for a smoke test
    .venv/bin/python benchmarks/run.py --only kamailio      # one target (or: --only edge)
    .venv/bin/python benchmarks/run.py --only register      # one benchmark
    .venv/bin/python benchmarks/run.py --only calls         # calls/s (benchmarks/calls_bench.py)
    .venv/bin/python benchmarks/run.py --only feed          # config feed (benchmarks/feed_bench.py)
    .venv/bin/python benchmarks/run.py --transport u1,t1    # UDP, then one TCP connection
    .venv/bin/python benchmarks/run.py --install            # apt-get install kamailio if missing
    .venv/bin/python benchmarks/run.py --check --rates 250  # functional checks, then one step

Each target is started fresh on a free port of 127.0.0.1 with ``--users`` phone users
(extensions 2000.., password ``pw-<ext>``), nothing pre-registered. SIPp then offers
``benchmarks/sipp/register_auth.xml`` (REGISTER -> 401 -> REGISTER with MD5 digest -> 200) at
rising rates, each step ``--step-seconds`` worth of calls with at most one second's worth in
flight (``-l``). Per step it records the achieved rate (successful calls over the span of
SIPp's traffic), failures (calls that did not succeed), the target's CPU (utime + stime of its
process tree from /proc, over the step's wall time; 100% = one core), SIPp's own CPU (a step
marked ``*`` had SIPp above 90%: the load generator, not the target, was the limit) and the
median and 99th percentile of the whole exchange's time per call (SIPp's short message log,
microsecond timestamps). A step sustains its rate with < 0.1% failures, at least 90% of the
offered rate achieved and a p99 below T1 (500 ms: beyond it requests queue and UDP
retransmissions start); stepping stops at the first step that does not.

The sustained rate is the highest achieved rate of a sustaining step; the summary
prints it per target with its cost, "sustained N REGISTER/s at X% CPU -> N/CPU-second", and,
when both ran, the edge's REGISTERs per CPU-second over Kamailio's.

Targets: ``edge`` is ``.venv/bin/voxedge-edge --config edge.toml`` (see ``start_edge``);
``kamailio`` is ``kamailio -f benchmarks/kamailio/registrar.cfg`` (see ``start_kamailio``).
A target that is missing or does not start is reported and skipped. ``--check`` first runs the
functional scenarios per target (all users register over UDP and unregister from the same
contact, register over TCP, a wrong password is refused; the exit code is 1 if one fails).
TCP steps use ``t1`` (one connection); with SIPp's ``tn`` every call has its own Contact and
SIPp itself is the bottleneck from a few hundred calls/s. ``--keep`` keeps the work
directory (SIPp logs, target logs, configs). ``--json FILE`` also writes the steps as JSON.

The ``calls`` benchmark is ``benchmarks/calls_bench.py`` (whole calls, caller SIPp -> target ->
callee SIPp, against the edge and against Kamailio as a proxy, ``kamailio/proxy.cfg``); it
takes this script's ``--quick``/``--step-seconds``, target names, ``--check`` and ``--keep``
(not ``--rates``, ``--transport``, ``--users`` or ``--json``). See its docstring.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the project root

from benchmarks import parser_bench, relay_bench
from benchmarks.sipp.users import PhoneUser, edge_toml, phone_users, write_sipp_csv
from tests.integration.sipp import (
    TRANSPORTS,
    SippResult,
    free_port,
    percentile,
    run_sipp,
    sipp_path,
)

ROOT = Path(__file__).resolve().parents[1]
SIPP_DIR = ROOT / "benchmarks" / "sipp"
KAMAILIO_CFG = ROOT / "benchmarks" / "kamailio" / "registrar.cfg"
EDGE_BIN = ROOT / ".venv" / "bin" / "voxedge-edge"
DOMAIN = "voxedge.test"
LOCALHOST = "127.0.0.1"

RATES = (250, 500, 1000, 1500, 2000, 3000, 4000, 6000, 8000, 12000, 16000)
MAX_FAILURE_PCT = 0.1  # a step with fewer failures than this sustains its rate
MIN_ACHIEVED = 0.9  # below this share of the offered rate the target is saturated
MAX_P99_MS = 500.0  # T1 (RFC 3261 §17.1.1.1): slower exchanges are queueing and draw retransmits
START_TIMEOUT = 15.0  # seconds for a target to accept TCP connections
STOP_TIMEOUT = 10.0  # seconds for a target to exit after SIGTERM
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
TARGETS = ("edge", "kamailio")
BENCHMARKS = ("register", "calls", "parser", "relay", "feed")


# Kamailio: " 1(123) ERROR: <core> …"; Python logging: "… ERROR voxedge.sip: …".
_ERROR_LINE = re.compile(r"\b(ERROR|CRITICAL|ALERT|BUG)\b|^Traceback")


class TargetUnavailable(Exception):
    """The target is not installed or did not start; the message says why."""


@dataclass(slots=True)
class Target:
    """A registrar under test: a process this script started and owns by PID."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def address(self) -> str:
        return f"{LOCALHOST}:{self.port}"


@dataclass(frozen=True, slots=True)
class Step:
    """One rate step against one target."""

    target: str
    transport: str
    offered: float
    calls: int
    sipp: SippResult
    target_cpu_pct: float

    @property
    def achieved(self) -> float:
        duration = self.sipp.span or self.sipp.elapsed
        return self.sipp.successful / duration if duration > 0 else 0.0

    @property
    def failure_pct(self) -> float:
        return 100.0 * (self.calls - self.sipp.successful) / self.calls

    @property
    def sipp_cpu_pct(self) -> float:
        return 100.0 * self.sipp.cpu_seconds / self.sipp.elapsed if self.sipp.elapsed else 0.0

    @property
    def sustained(self) -> bool:
        """Fewer than 0.1% failures, 90% of the offered rate achieved, p99 below T1."""
        return (
            self.failure_pct < MAX_FAILURE_PCT
            and self.achieved >= MIN_ACHIEVED * self.offered
            and percentile(self.sipp.call_times_ms, 0.99) < MAX_P99_MS
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "target": self.target,
            "transport": self.transport,
            "offered": self.offered,
            "calls": self.calls,
            "achieved": round(self.achieved, 1),
            "failure_pct": round(self.failure_pct, 4),
            "target_cpu_pct": round(self.target_cpu_pct, 1),
            "sipp_cpu_pct": round(self.sipp_cpu_pct, 1),
            "p50_ms": _finite(percentile(self.sipp.call_times_ms, 0.50)),
            "p99_ms": _finite(percentile(self.sipp.call_times_ms, 0.99)),
            "failure_reasons": self.sipp.failure_reasons,
            "sipp_exit_code": self.sipp.exit_code,
        }


def _finite(value: float) -> float | None:
    """``value``, or None for NaN/infinity (which JSON cannot carry)."""
    return value if math.isfinite(value) else None


# --- targets -----------------------------------------------------------------------------------


def start_edge(workdir: Path, users: list[PhoneUser], port: int) -> Target:
    """Start the VoxEdge edge on 127.0.0.1:``port`` (UDP + TCP) serving ``users``.

    Writes ``edge.toml`` (format: ``benchmarks/sipp/users.py:edge_toml``) and runs
    ``.venv/bin/voxedge-edge --config edge.toml``; its output goes to ``edge.log``.
    """
    if not EDGE_BIN.exists():
        raise TargetUnavailable(f"{EDGE_BIN} does not exist")
    data_dir = workdir / "edge-data"
    data_dir.mkdir()
    config = workdir / "edge.toml"
    config.write_text(edge_toml(users, port=port, data_dir=data_dir, domain=DOMAIN))
    log = workdir / "edge.log"
    return _spawn("edge", [str(EDGE_BIN), "--config", str(config)], workdir, port, log)


def start_kamailio(
    workdir: Path,
    users: list[PhoneUser],
    port: int,
    *,
    config: Path = KAMAILIO_CFG,
    shared_mb: int = 128,
) -> Target:
    """Start Kamailio as a digest registrar (``benchmarks/kamailio/registrar.cfg``), or with
    another ``config`` that takes the same defines (``proxy.cfg``: the calls benchmark).

    Foreground (``-DD``) so the main PID is ours, logs on stderr (``-E``) into
    ``kamailio.log``, TLSF shared-memory allocator (``-x tlsf``), ``shared_mb`` MB shared /
    16 MB private memory, two workers per transport for the two cores.
    """
    binary = shutil.which("kamailio")
    if binary is None:
        raise TargetUnavailable("kamailio not installed (--install: apt-get install -y kamailio)")
    first = int(users[0].extension)
    rundir = workdir / "kamailio-run"
    rundir.mkdir()
    args = [
        binary, "-f", str(config), "-DD", "-E", "-x", "tlsf", "-m", str(shared_mb), "-M", "16",
        "-Y", str(rundir), "-w", str(rundir),
        "-A", f"SIP_PORT={port}", "-A", f"USER_FIRST={first}", "-A", f"USER_COUNT={len(users)}",
        "-A", "WORKERS=2",
    ]  # fmt: skip
    target = _spawn("kamailio", args, workdir, port, workdir / "kamailio.log")
    time.sleep(0.5)  # the workers initialise after the listeners are up
    errors = log_errors(target)
    if errors:
        stop_target(target)
        raise TargetUnavailable("kamailio logged errors at startup:\n" + "\n".join(errors))
    return target


def _spawn(name: str, args: list[str], workdir: Path, port: int, log: Path) -> Target:
    """Start ``args``, wait until it accepts TCP on ``port``; stop it again if it does not."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args, cwd=workdir, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )
    target = Target(name, proc, port, log)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise TargetUnavailable(f"{name} exited with {proc.returncode}:\n{tail}")
        if _accepts_tcp(port):
            return target
        time.sleep(0.1)
    stop_target(target)
    raise TargetUnavailable(f"{name} did not listen on TCP {port} within {START_TIMEOUT:g} s")


def _accepts_tcp(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((LOCALHOST, port)) == 0


def log_errors(target: Target) -> list[str]:
    """Lines of the target's log at level ERROR or worse, and Python tracebacks."""
    text = target.log.read_text(errors="replace") if target.log.exists() else ""
    return [line for line in text.splitlines() if _ERROR_LINE.search(line)]


def stop_target(target: Target) -> None:
    """SIGTERM the target's main PID, SIGKILL it after ``STOP_TIMEOUT``, then SIGKILL by PID any
    of its descendants that outlived it."""
    descendants = _process_tree(target.proc.pid)[1:]
    if target.proc.poll() is None:
        target.proc.send_signal(signal.SIGTERM)
        try:
            target.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            target.proc.kill()
            target.proc.wait(STOP_TIMEOUT)
    for pid, start in descendants:
        if _start_time(pid) == start:  # the same process, not a reused PID
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


# --- CPU accounting from /proc ------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (field 3 onwards), or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def _start_time(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None  # field 22: starttime


def _process_tree(root: int) -> list[tuple[int, int]]:
    """(pid, start time) of ``root`` and all its descendants, root first."""
    children: dict[int, list[int]] = {}
    starts: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat_fields(int(entry))):
            children.setdefault(int(fields[1]), []).append(int(entry))
            starts[int(entry)] = int(fields[19])
    tree: list[tuple[int, int]] = []
    todo = [root]
    while todo:
        pid = todo.pop()
        if pid in starts:
            tree.append((pid, starts[pid]))
            todo.extend(children.get(pid, []))
    return tree


def tree_cpu_seconds(root: int) -> float:
    """utime + stime of ``root`` and its descendants, plus what they reaped (cutime, cstime)."""
    ticks = 0
    for pid, _ in _process_tree(root):
        if fields := _stat_fields(pid):
            ticks += sum(int(fields[i]) for i in (11, 12, 13, 14))  # fields 14-17
    return ticks / CLOCK_TICKS


# --- the register benchmark ---------------------------------------------------------------------


def register_step(
    target: Target, csv: Path, transport: str, rate: float, seconds: float, local_port: int
) -> Step:
    """Offer ``rate`` REGISTER transactions (with digest) per second for ``seconds``, from SIPp
    on ``local_port``."""
    calls = max(1, round(rate * seconds))
    cpu_before = tree_cpu_seconds(target.proc.pid)
    result = run_sipp(
        SIPP_DIR / "register_auth.xml",
        target.address,
        transport=transport,
        calls=calls,
        rate=rate,
        csv=csv,
        timeout=seconds * 3 + 10,
        keys={"domain": DOMAIN, "expires": "3600"},
        limit=max(50, round(rate)),
        local_port=local_port,
        # -buff_size: with SIPp's default 64 KB socket buffers UDP bursts overflow above ~5000/s.
        extra_args=["-auth_uri", DOMAIN, "-recv_timeout", "5s", "-buff_size", "4194304"],
        workdir=csv.parent / f"sipp-{target.name}-{transport}-{rate:g}",
    )
    cpu = tree_cpu_seconds(target.proc.pid) - cpu_before
    cpu_pct = 100.0 * cpu / result.elapsed if result.elapsed > 0 else 0.0
    return Step(target.name, transport, rate, calls, result, cpu_pct)


def run_register(
    target: Target, csv: Path, transports: list[str], rates: list[float], seconds: float
) -> list[Step]:
    """Step the rate up per transport until the target fails or saturates.

    Every step registers from the same SIPp port, so a user's repeated REGISTERs refresh one
    binding per transport instead of adding one per step (registrars cap contacts per AOR).
    """
    steps: list[Step] = []
    local_port = free_port()
    print("registrations/s: REGISTER → 401 → REGISTER with digest → 200 (2 transactions each)")
    print(HEADER)
    for transport in transports:
        for rate in rates:
            step = register_step(target, csv, transport, rate, seconds, local_port)
            steps.append(step)
            print_step(step)
            if not step.sustained:
                break
    return steps


def functional_checks(target: Target, csv: Path, users: int) -> bool:
    """Before any load, at 500 calls/s: every user registers over UDP and unregisters from the
    same contact, registers over TCP (one connection), and a wrong password is refused."""
    keys = {"domain": DOMAIN, "expires": "3600"}
    extra = ["-auth_uri", DOMAIN, "-recv_timeout", "5s"]
    udp_port = free_port()
    checks = [
        ("register", "u1", users, udp_port),
        ("unregister", "u1", users, udp_port),
        ("register", "t1", users, None),
        ("wrong password", "u1", min(users, 100), None),
    ]
    scenarios = {
        "register": "register_auth.xml",
        "unregister": "unregister_auth.xml",
        "wrong password": "register_wrong_password.xml",
    }
    passed = True
    for name, transport, calls, port in checks:
        result = run_sipp(
            SIPP_DIR / scenarios[name],
            target.address,
            transport=transport,
            calls=calls,
            rate=500,
            csv=csv,
            keys=keys,
            extra_args=extra,
            local_port=port,
            timeout=calls / 500 + 20,
            workdir=csv.parent / f"check-{target.name}-{name.replace(' ', '-')}-{transport}",
        )
        ok = result.all_ok and result.successful == calls
        passed &= ok
        print(
            f"check {target.name:<10} {name:<15} {transport}: "
            f"{'ok' if ok else 'FAILED'} {result.successful}/{calls}"
            + ("" if ok else f"; {sipp_trouble(result)}"),
            flush=True,
        )
    return passed


# --- output -------------------------------------------------------------------------------------

# Rates are registrations/s: REGISTER → 401 → REGISTER with digest → 200 (two transactions).
# p50/p99: the whole registration, first REGISTER sent to 200 received. CPU %: one core = 100.
HEADER = (
    f"{'target':<10} {'transport':<9} {'offered/s':>9} {'achieved/s':>10} {'fail %':>7} "
    f"{'CPU %':>6} {'SIPp %':>7} {'p50 ms':>7} {'p99 ms':>7}"
)


def print_step(step: Step) -> None:
    mark = "*" if step.sipp_cpu_pct > 90 else " "
    print(
        f"{step.target:<10} {step.transport:<9} {step.offered:>9g} {step.achieved:>10.0f} "
        f"{step.failure_pct:>7.2f} {step.target_cpu_pct:>6.0f} {step.sipp_cpu_pct:>6.0f}{mark} "
        f"{percentile(step.sipp.call_times_ms, 0.5):>7.2f} "
        f"{percentile(step.sipp.call_times_ms, 0.99):>7.2f}",
        flush=True,
    )
    if step.sipp.failure_reasons or step.sipp.exit_code not in (0, 1):
        print(f"{'':<10} {sipp_trouble(step.sipp)}", flush=True)


def sipp_trouble(result: SippResult) -> str:
    """SIPp's exit code, failure counters, first logged event and where its files are."""
    first = result.events[0][:200] if result.events else "no event logged"
    return (
        f"SIPp exit {result.exit_code}, {result.failure_reasons or 'no failure counted'}, "
        f"first event: {first!r}, files in {result.workdir}"
    )


def sustained(steps: list[Step]) -> Step | None:
    """The step with the highest achieved rate among the sustained ones."""
    good = [s for s in steps if s.sustained]
    return max(good, key=lambda s: s.achieved) if good else None


def per_cpu_second(step: Step) -> float:
    return step.achieved / (step.target_cpu_pct / 100.0) if step.target_cpu_pct > 0 else math.inf


def print_summary(steps: list[Step]) -> None:
    """Per target: the sustained step. A registration is two REGISTER transactions (the
    unauthenticated one answered 401, then the one with credentials answered 200)."""
    print()
    best: dict[tuple[str, str], Step] = {}
    for key in dict.fromkeys((s.target, s.transport) for s in steps):
        step = sustained([s for s in steps if (s.target, s.transport) == key])
        if step is None:
            print(f"{key[0]} ({key[1]}): no step sustained its rate")
            continue
        best[key] = step
        print(
            f"{key[0]} ({key[1]}): sustained {step.achieved:.0f} registrations/s "
            f"({2 * step.achieved:.0f} REGISTER transactions/s) at "
            f"{step.target_cpu_pct:.0f}% CPU → {per_cpu_second(step):.0f} registrations/CPU-second "
            f"(p50 {percentile(step.sipp.call_times_ms, 0.5):.2f} ms, "
            f"p99 {percentile(step.sipp.call_times_ms, 0.99):.2f} ms)"
            + (" (SIPp-bound)" if step.sipp_cpu_pct > 90 else "")
        )
    for transport in dict.fromkeys(s.transport for s in steps):
        edge, kamailio = best.get(("edge", transport)), best.get(("kamailio", transport))
        if edge and kamailio:
            ratio = per_cpu_second(edge) / per_cpu_second(kamailio)
            print(f"edge/Kamailio per CPU second ({transport}): {ratio:.2f}")


# --- main ---------------------------------------------------------------------------------------

STARTERS: dict[str, Callable[[Path, list[PhoneUser], int], Target]] = {
    "edge": start_edge,
    "kamailio": start_kamailio,
}


def install_kamailio() -> None:
    """``apt-get update`` and ``apt-get install -y kamailio`` (needs root), ten minutes each."""
    print("installing kamailio with apt-get …", flush=True)
    subprocess.run(["apt-get", "update"], check=False, timeout=600)
    subprocess.run(["apt-get", "install", "-y", "kamailio"], check=False, timeout=600)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="REGISTER-with-digest load against the VoxEdge edge and Kamailio.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    parser.add_argument("--quick", action="store_true", help="2 s steps (default 10 s)")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help=f"run only these targets {TARGETS} / benchmarks {BENCHMARKS}; "
        "repeat or comma-separate",
    )
    parser.add_argument("--users", type=int, default=1000, help="phone users (1000)")
    parser.add_argument(
        "--transport", default="u1", help="SIPp -t values, comma-separated: u1, t1, tn (u1)"
    )
    parser.add_argument(
        "--rates",
        help=f"offered REGISTER/s per step, comma-separated ({','.join(map(str, RATES))})",
    )
    parser.add_argument("--step-seconds", type=float, help="seconds of calls per step")
    parser.add_argument(
        "--install", action="store_true", help="apt-get install kamailio if missing"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--json", type=Path, help="also write the steps to this JSON file")
    parser.add_argument(
        "--check",
        action="store_true",
        help="first check register (UDP, TCP), unregister and wrong password per target",
    )
    args = parser.parse_args(argv)
    only = {name for value in args.only for name in value.split(",") if name}
    unknown = only - set(TARGETS) - set(BENCHMARKS)
    if unknown:
        parser.error(f"--only: unknown {sorted(unknown)}; known {TARGETS + BENCHMARKS}")
    args.targets = [t for t in TARGETS if t in only] or list(TARGETS)
    args.benchmarks = [b for b in BENCHMARKS if b in only] or list(BENCHMARKS)
    args.transports = [t for t in args.transport.split(",") if t]
    if bad := [t for t in args.transports if t not in TRANSPORTS]:
        parser.error(f"--transport: unknown {bad}; known {TRANSPORTS}")
    args.rate_list = [float(r) for r in args.rates.split(",")] if args.rates else list(RATES)
    args.seconds = args.step_seconds or (2.0 if args.quick else 10.0)
    return args


def print_parser_table(seconds: float) -> None:
    """The parser micro-benchmark (benchmarks/parser_bench.py): one core, no I/O."""
    print("parser micro-benchmark (one core, no I/O)")
    print(f"{'message':10} {'operation':18} {'messages/s':>12} {'µs/message':>11}")
    for name, op, per_second in parser_bench.results(seconds):
        print(f"{name:10} {op:18} {per_second:12,.0f} {1e6 / per_second:11.1f}")
    print()


def register_benchmark(args: argparse.Namespace) -> int:
    """The registrar benchmark per target (and ``--check``); 1 if nothing ran or a check failed."""
    workdir = Path(tempfile.mkdtemp(prefix="voxedge-bench-"))
    users = phone_users(args.users)
    csv = write_sipp_csv(workdir / "users.csv", users)
    load = os.getloadavg()
    print(
        f"{os.cpu_count()} CPUs, load average {load[0]:.2f}; {len(users)} users; "
        f"{args.seconds:g} s steps; work directory {workdir}"
    )
    steps: list[Step] = []
    failed_checks: list[str] = []
    try:
        for name in args.targets:
            target_dir = workdir / name
            target_dir.mkdir()
            try:
                target = STARTERS[name](target_dir, users, free_port())
            except TargetUnavailable as exc:
                print(f"{name}: skipped, {exc}")
                continue
            try:
                if args.check and not functional_checks(target, csv, len(users)):
                    failed_checks.append(name)
                if "register" in args.benchmarks:
                    steps += run_register(
                        target, csv, args.transports, args.rate_list, args.seconds
                    )
                errors = log_errors(target)  # before stopping: shutdown logs noise of its own
            finally:
                stop_target(target)
            if errors:
                print(f"{name}: {len(errors)} error lines in {target.log}, first: {errors[0]}")
        print_summary(steps)
        if args.json:
            args.json.write_text(json.dumps([s.as_dict() for s in steps], indent=2) + "\n")
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
            print(f"removed {workdir} (--keep keeps it)")
    return 0 if steps and not failed_checks else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if "parser" in args.benchmarks:
        print_parser_table(seconds=0.5 if args.quick else 2.0)
    if "relay" in args.benchmarks:
        print("media relay vs a bare uvloop UDP forwarder (G.711 calls, 50 packets/s each way)")
        relay_bench.main(["--quick"] if args.quick else [])
        print()
    feed_status = 0
    if "feed" in args.benchmarks:
        from benchmarks import feed_bench  # it imports this module: load it only when used

        feed_status = feed_bench.main(["--quick"] if args.quick else [])
        print()
    if not {"register", "calls"} & set(args.benchmarks):
        return feed_status
    if sipp_path() is None:
        print("sipp not installed (Debian package sip-tester)")
        return 2
    if "kamailio" in args.targets and shutil.which("kamailio") is None and args.install:
        install_kamailio()
    status = feed_status
    if "register" in args.benchmarks:
        status = register_benchmark(args)
        print()
    if "calls" in args.benchmarks:
        from benchmarks import calls_bench  # it imports this module: load it only when used

        calls_args = ["--step-seconds", f"{args.seconds:g}", "--only", ",".join(args.targets)]
        calls_args += ["--check"] * args.check + ["--keep"] * args.keep
        status = max(status, calls_bench.main(calls_args))
    return status


if __name__ == "__main__":
    sys.exit(main())
