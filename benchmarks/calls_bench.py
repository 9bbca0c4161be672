"""Calls benchmark: whole SIP calls per second through VoxEdge's edge and through Kamailio.

Usage (from the project root):

    .venv/bin/python benchmarks/calls_bench.py                  # both targets, 10 s steps
    .venv/bin/python benchmarks/calls_bench.py --quick          # 2 s steps, for a smoke test
    .venv/bin/python benchmarks/calls_bench.py --only kamailio --rates 100,200
    .venv/bin/python benchmarks/calls_bench.py --check          # each call flow once first
    .venv/bin/python benchmarks/run.py --only calls             # the same, from the runner

A call is phone 1001 calling phone 1002 through the target and hanging up at once, no media:
the caller is SIPp with ``benchmarks/sipp/call_uac_nomedia.xml`` (INVITE -> 407 -> ACK ->
INVITE with Proxy-Authorization -> 100/180/200 -> ACK -> BYE -> 200), the callee a second SIPp
with ``call_uas_nomedia.xml`` (180, 200 with SDP, then 200 to the BYE), registered as 1002 from
its own port first (``register_auth.xml``) so that the target finds it by location lookup.

Targets (started fresh on a free port of 127.0.0.1, as in ``run.py``):
- ``kamailio``: ``benchmarks/kamailio/proxy.cfg``, a transaction-stateful proxy with digest
  auth on INVITE, registrar, Record-Route and loose routing (``run.start_kamailio``: ``-x
  tlsf``, two workers, here 512 MB shared memory for the transactions);
- ``edge``: ``voxedge-edge`` (``run.start_edge``) with phones 1001 and 1002, MD5 only: a
  B2BUA, two dialogs and two transactions per request, media anchored on its ports.
Passwords are ``pw-<extension>`` on both.

Per step ``--step-seconds`` of calls at the offered rate, at most one second's worth in flight
(``-l``): the achieved rate (successful calls over the span of the caller's traffic), failed
calls, the target's CPU (its process tree from /proc over the caller's run; 100% = one core),
the busier SIPp's CPU (``*`` above 90%: the load generator was the limit), and INVITE -> 200
p50/p99 (first INVITE sent to the 200 for an INVITE received, so with the 407 round trip;
SIPp's short message log, µs timestamps). A step sustains its rate as in ``run.py`` (< 0.1%
failed calls, >= 90% of the offered rate, p99 of the whole call below T1); stepping stops at
the first that does not. One more step at half the highest sustained rate gives the latency
of the summary, away from saturation.

The summary per target: sustained calls/s, the target's CPU and CPU-seconds in that step,
calls per CPU-second, INVITE -> 200 p50/p99 at half that rate; with both targets the edge's
calls per CPU-second over Kamailio's (goal: 0.4 or more). ``--check`` first runs each call
flow of ``benchmarks/sipp/`` once through the target (media echoed, cancel while ringing,
busy, hold and resume, callee hangs up); the exit code is 1 if one fails.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the project root

from benchmarks.run import (
    DOMAIN,
    MAX_FAILURE_PCT,
    ROOT,
    SIPP_DIR,
    Step,
    Target,
    TargetUnavailable,
    log_errors,
    sipp_trouble,
    start_edge,
    start_kamailio,
    stop_target,
    tree_cpu_seconds,
)
from benchmarks.sipp.users import phone_users, write_sipp_csv
from tests.integration.sipp import (
    SippProcess,
    SippResult,
    free_media_port,
    free_port,
    percentile,
    register_phone,
    run_sipp,
    sipp_path,
    start_sipp,
    udp_queued_bytes,
)

PROXY_CFG = ROOT / "benchmarks" / "kamailio" / "proxy.cfg"
RATES = (50, 100, 200, 400, 600, 800, 1000, 1500, 2000, 2500, 3000, 4000, 6000, 8000)
TARGETS = ("edge", "kamailio")
USERS = phone_users(2, first=1001)
CALLER, CALLEE = USERS
CALLER_ARGS = ["-s", CALLEE.extension, "-auth_uri", f"{CALLEE.extension}@{DOMAIN}"]
# -buff_size: with SIPp's default 64 KB socket buffers UDP bursts overflow at high rates.
LOAD_ARGS = ["-recv_timeout", "5s", "-buff_size", "4194304"]
GOAL_RATIO = 0.4
IDLE_CPU_PCT = 5.0  # after the step that failed, the target settles below this...
IDLE_WAIT = 30.0  # ...for at most this many seconds, before the step at half the rate

# --check: (name, callee scenario, caller scenario, callee args, caller args, final status)
CHECKS: tuple[tuple[str, str, str, list[str], list[str], int], ...] = (
    ("media echoed", "call_uas_echo.xml", "call_uac.xml", ["-rtp_echo"], [], 200),
    ("cancel while ringing", "call_uas_ring.xml", "call_uac_cancel.xml", [], ["-d", "100"], 487),
    ("busy", "call_uas_busy.xml", "call_uac_expect_fail.xml", [], [], 486),
    ("hold and resume", "call_uas_hold.xml", "call_uac_hold.xml", ["-rtp_echo"], [], 200),
    ("callee hangs up", "call_uas_bye.xml", "call_uac_wait_bye.xml", ["-d", "200"], [], 200),
)


@dataclass(frozen=True, slots=True)
class CallStep:
    """One rate step: ``step`` judges it (achieved rate, failures, CPU) as run.py does."""

    step: Step
    callee: SippResult
    invite_ms: list[float]
    """First INVITE sent to the 200 for an INVITE received, per answered call."""
    cpu_seconds: float

    @property
    def sipp_cpu_pct(self) -> float:
        callee = self.callee
        callee_pct = 100.0 * callee.cpu_seconds / callee.elapsed if callee.elapsed else 0.0
        return max(self.step.sipp_cpu_pct, callee_pct)

    @property
    def per_cpu_second(self) -> float:
        return self.step.sipp.successful / self.cpu_seconds if self.cpu_seconds else math.inf


def invite_answer_ms(calls_log: Path) -> list[float]:
    """Per call in SIPp's short message log: first INVITE sent to first 200 (CSeq INVITE)
    received, in ms. Lines: date, time, epoch, S|R, Call-ID, ``CSeq:N METHOD``, first line."""
    sent: dict[str, float] = {}
    answered: dict[str, float] = {}
    if not calls_log.exists():
        return []
    with calls_log.open(errors="replace") as lines:
        for line in lines:
            parts = line.rstrip("\r\n").split("\t", 6)
            if len(parts) < 7 or not parts[5].endswith(" INVITE"):
                continue
            try:
                stamp = float(parts[2])
            except ValueError:
                continue
            direction, call_id = parts[3], parts[4]
            if direction == "S":
                sent.setdefault(call_id, stamp)
            elif parts[6].startswith("SIP/2.0 200 ") and call_id not in answered:
                answered[call_id] = stamp
    return [1000.0 * (t - sent[c]) for c, t in answered.items() if c in sent]


# --- targets and the two SIPps -------------------------------------------------------------------


def start_target(name: str, workdir: Path) -> Target:
    workdir.mkdir()
    if name == "kamailio":
        return start_kamailio(workdir, USERS, free_port(), config=PROXY_CFG, shared_mb=512)
    return start_edge(workdir, USERS, free_port())


@contextlib.contextmanager
def callee(
    scenario: str,
    port: int,
    calls: int,
    timeout: float,
    workdir: Path,
    args: Sequence[str] = (),
    *,
    linger: float = 5.0,
) -> Iterator[SippProcess]:
    """A callee SIPp listening on ``port`` for the block; reaped after it, stopped if it still
    runs ``linger`` seconds later (e.g. waiting for calls that failed on the caller's side)."""
    process = start_sipp(
        SIPP_DIR / scenario,
        None,
        calls=calls,
        rate=1,
        local_port=port,
        timeout=timeout,
        trace_calls=False,
        extra_args=[*LOAD_ARGS, "-mp", str(free_media_port()), *args],
        workdir=workdir,
    )
    try:
        process.wait_listening()
        yield process
    finally:
        process.wait(timeout=linger)


def call_step(
    target: Target, workdir: Path, callee_port: int, caller_csv: Path, rate: float, seconds: float
) -> CallStep:
    """Offer ``rate`` calls/s for ``seconds`` and measure the target's CPU meanwhile."""
    calls = max(1, round(rate * seconds))
    timeout = seconds * 3 + 10
    name = f"{target.name}-{rate:g}"
    # The callee takes more calls than offered and is stopped once the caller is done: after an
    # overloaded step the target may still retransmit INVITEs of that step's failed calls to
    # this port, and those must not use up a callee's count of calls.
    uas_dir = workdir / f"uas-{name}"
    with callee(
        "call_uas_nomedia.xml", callee_port, 2 * calls + 100, timeout + 5, uas_dir, linger=0
    ) as uas:
        cpu_before = tree_cpu_seconds(target.proc.pid)
        caller = run_sipp(
            SIPP_DIR / "call_uac_nomedia.xml",
            target.address,
            calls=calls,
            rate=rate,
            csv=caller_csv,
            keys={"domain": DOMAIN},
            limit=max(50, round(rate)),
            timeout=timeout,
            extra_args=[*CALLER_ARGS, *LOAD_ARGS, "-mp", str(free_media_port())],
            workdir=workdir / f"uac-{name}",
        )
        cpu = tree_cpu_seconds(target.proc.pid) - cpu_before
    cpu_pct = 100.0 * cpu / caller.elapsed if caller.elapsed > 0 else 0.0
    step = Step(target.name, "u1", rate, calls, caller, cpu_pct)
    return CallStep(step, uas.wait(), invite_answer_ms(caller.workdir / "calls.log"), cpu)


def wait_idle(target: Target) -> None:
    """Return once the target spends under ``IDLE_CPU_PCT`` of a core (per 0.5 s), or after
    ``IDLE_WAIT`` seconds: after an overload it still retransmits and times out transactions."""
    deadline = time.monotonic() + IDLE_WAIT
    while time.monotonic() < deadline:
        before = tree_cpu_seconds(target.proc.pid)
        time.sleep(0.5)
        if tree_cpu_seconds(target.proc.pid) - before < IDLE_CPU_PCT / 100 * 0.5:
            return


def check_flows(target: Target, workdir: Path, callee_port: int, caller_csv: Path) -> bool:
    """Each call flow once through the target; for the media flows also that RTP came back."""
    passed = True
    for name, uas_xml, uac_xml, uas_args, uac_args, status in CHECKS:
        slug = name.replace(" ", "-")
        media_port = free_media_port()
        echoed = 0
        with callee(uas_xml, callee_port, 1, 20, workdir / f"check-uas-{slug}", uas_args) as uas:
            uac = start_sipp(
                SIPP_DIR / uac_xml,
                target.address,
                calls=1,
                rate=1,
                csv=caller_csv,
                keys={"domain": DOMAIN},
                timeout=15,
                extra_args=[*CALLER_ARGS, "-mp", str(media_port), *uac_args],
                workdir=workdir / f"check-uac-{slug}",
            )
            while uac.running():  # SIPp never reads its RTP socket: an echo piles up there
                echoed = max(echoed, udp_queued_bytes(media_port))
                time.sleep(0.05)
        caller, answered = uac.wait(), uas.wait()
        media_ok = "-rtp_echo" not in uas_args or echoed > 0
        ok = caller.all_ok and answered.all_ok and caller.final_statuses == {status: 1}
        ok &= media_ok
        passed &= ok
        print(
            f"check {target.name:<10} {name:<22} "
            + ("ok" if ok else f"FAILED, statuses {caller.final_statuses}")
            + ("" if media_ok else ", no RTP echoed")
            + ("" if caller.all_ok else f"; caller: {sipp_trouble(caller)}")
            + ("" if answered.all_ok else f"; callee: {sipp_trouble(answered)}"),
            flush=True,
        )
    return passed


# --- output ------------------------------------------------------------------------------------

HEADER = (
    f"{'target':<10} {'offered/s':>9} {'achieved/s':>10} {'fail %':>7} {'CPU %':>6} "
    f"{'SIPp %':>7} {'p50 ms':>7} {'p99 ms':>7}"
)


def print_step(call: CallStep, note: str = "") -> None:
    step = call.step
    mark = "*" if call.sipp_cpu_pct > 90 else " "
    print(
        f"{step.target:<10} {step.offered:>9g} {step.achieved:>10.0f} {step.failure_pct:>7.2f} "
        f"{step.target_cpu_pct:>6.0f} {call.sipp_cpu_pct:>6.0f}{mark} "
        f"{percentile(call.invite_ms, 0.5):>7.2f} {percentile(call.invite_ms, 0.99):>7.2f}" + note,
        flush=True,
    )
    if step.sipp.failure_reasons or step.sipp.exit_code not in (0, 1):
        print(f"{'':<10} {sipp_trouble(step.sipp)}", flush=True)


def run_target(
    name: str, workdir: Path, rates: Sequence[float], seconds: float, check: bool
) -> tuple[CallStep | None, CallStep | None, bool]:
    """Step one target up; returns (best sustained step, half-rate step, checks passed)."""
    try:
        target = start_target(name, workdir / name)
    except TargetUnavailable as exc:
        print(f"{name}: skipped, {exc}")
        return None, None, True
    best: CallStep | None = None
    half: CallStep | None = None
    passed = True
    try:
        callee_port = free_port()
        caller_csv = write_sipp_csv(workdir / name / "caller.csv", [CALLER])
        registered = register_phone(target.address, CALLEE, callee_port, workdir / name)
        if not registered.all_ok:
            print(f"{name}: the callee did not register: {sipp_trouble(registered)}")
            return None, None, False
        if check:
            passed = check_flows(target, workdir / name, callee_port, caller_csv)
        for rate in rates:
            call = call_step(target, workdir / name, callee_port, caller_csv, rate, seconds)
            print_step(call)
            if not call.step.sustained:
                break
            if best is None or call.step.achieved > best.step.achieved:
                best = call
        if best is not None:
            if not call.step.sustained:
                wait_idle(target)  # let the target work off the overload first
            rate = max(1.0, round(best.step.achieved / 2))
            half = call_step(target, workdir / name, callee_port, caller_csv, rate, seconds)
            print_step(half, "  (half the sustained rate)")
        errors = log_errors(target)  # before stopping: shutdown logs noise of its own
    finally:
        stop_target(target)
    if errors:
        print(f"{name}: {len(errors)} error lines in {target.log}, first: {errors[0]}")
    return best, half, passed


def print_summary(results: dict[str, tuple[CallStep | None, CallStep | None]]) -> None:
    print()
    for name, (best, half) in results.items():
        if best is None:
            print(f"{name}: no step sustained its rate with < {MAX_FAILURE_PCT:g}% failed calls")
            continue
        step = best.step
        latency = (
            f"INVITE → 200 at {half.step.offered:g} calls/s: "
            f"p50 {percentile(half.invite_ms, 0.5):.2f} ms, "
            f"p99 {percentile(half.invite_ms, 0.99):.2f} ms"
            if half
            else "no half-rate step"
        )
        print(
            f"{name}: sustained {step.achieved:.0f} calls/s at {step.target_cpu_pct:.0f}% CPU, "
            f"{best.cpu_seconds:.2f} CPU-seconds for {step.sipp.successful} calls → "
            f"{best.per_cpu_second:.0f} calls/CPU-second; {latency}"
            + (" (SIPp-bound)" if best.sipp_cpu_pct > 90 else "")
        )
    edge, kamailio = results.get("edge", (None, None))[0], results.get("kamailio", (None, None))[0]
    if edge and kamailio:
        ratio = edge.per_cpu_second / kamailio.per_cpu_second
        print(f"edge/Kamailio calls per CPU-second: {ratio:.2f} (goal ≥ {GOAL_RATIO:g})")


# --- main --------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n", 1)[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    parser.add_argument("--quick", action="store_true", help="2 s steps (default 10 s)")
    parser.add_argument("--step-seconds", type=float, help="seconds of calls per step")
    parser.add_argument(
        "--only", action="append", default=[], metavar="TARGET", help=f"one of {TARGETS}"
    )
    parser.add_argument("--rates", help=f"calls/s per step ({','.join(map(str, RATES))})")
    parser.add_argument("--check", action="store_true", help="each call flow once first")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    only = {name for value in args.only for name in value.split(",") if name}
    if unknown := only - set(TARGETS):
        parser.error(f"--only: unknown {sorted(unknown)}; known {TARGETS}")
    args.targets = [t for t in TARGETS if t in only] or list(TARGETS)
    args.rate_list = [float(r) for r in args.rates.split(",")] if args.rates else list(RATES)
    args.seconds = args.step_seconds or (2.0 if args.quick else 10.0)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if sipp_path() is None:
        print("sipp not installed (Debian package sip-tester)")
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="voxedge-calls-"))
    print(
        "calls/s: INVITE → 407 → ACK → INVITE with digest → 100/180/200 → ACK → BYE → 200, "
        f"no media; {args.seconds:g} s steps; work directory {workdir}"
    )
    print("p50/p99: first INVITE sent to the 200 for it; CPU %: the target's, one core = 100")
    print(HEADER)
    results: dict[str, tuple[CallStep | None, CallStep | None]] = {}
    checks_passed = True
    try:
        for name in args.targets:
            best, half, passed = run_target(name, workdir, args.rate_list, args.seconds, args.check)
            results[name] = (best, half)
            checks_passed &= passed
        print_summary(results)
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
            print(f"removed {workdir} (--keep keeps it)")
    sustained_any = any(best for best, _ in results.values())
    return 0 if sustained_any and checks_passed else 1


if __name__ == "__main__":
    sys.exit(main())
