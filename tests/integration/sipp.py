"""Run SIPp (Debian ``sip-tester`` 3.6) from tests and benchmarks, and read what it reports.

    from tests.integration.sipp import run_sipp, sipp_path

    result = run_sipp(Path("benchmarks/sipp/register_auth.xml"), "127.0.0.1:5060",
                      calls=1000, rate=500, csv=users_csv, timeout=30,
                      keys={"domain": "voxedge.test", "expires": "3600"},
                      extra_args=["-auth_uri", "voxedge.test"])
    assert result.exit_code == 0 and result.successful == 1000

SIPp runs in the foreground with ``-nostdin``, bound to 127.0.0.1 on a free port, all its files
in a fresh directory. The counts come from its own statistics file (``-trace_stat``, last row),
the exit code from the process, per-call times from its short message log (``-trace_shortmsg``,
microsecond timestamps). Its ``-trace_rtt`` and response-time counters are not used: SIPp 3.6
reads a coarse clock, so they come in 4 ms steps. SIPp stops itself at ``timeout`` (``-timeout
-timeout_error``, exit code 255); should it overrun that by ``KILL_GRACE`` seconds it is killed
by PID.

SIPp 3.6 facts worth knowing (found by testing this build):
- ``-p 0`` does not mean an ephemeral port: SIPp tries 5060 upward. Hence ``free_port()``.
- Without ``-timeout_error`` a ``-timeout`` stops the calls but not the process.
- ``[authentication]`` only expands ``[field0]`` inside quotes: ``username="[field0]"``.
- The digest ``uri`` is ``sip:<remote ip>:<remote port>`` unless ``-auth_uri`` says otherwise.
- Digest is MD5 only; a challenge with ``algorithm=SHA-256`` makes SIPp exit (code 255).
- With ``-t tn`` (a TCP connection per call) ``[local_port]`` is that connection's port, so
  every call has its own Contact, and a call's first message (sent as the connection opens)
  is missing from the message logs: its time then starts at the second request.
"""

from __future__ import annotations

import csv
import math
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

LOCAL_IP = "127.0.0.1"
KILL_GRACE = 5.0  # seconds past ``timeout`` before SIPp is killed by PID
TRANSPORTS = ("u1", "un", "t1", "tn")

# "2026-11-23<TAB>15:03:17.316469<TAB>1795446197.316469: " before each event in the error log.
_EVENT_STAMP = re.compile(r"\d{4}-\d\d-\d\d\t[\d:.]+\t[\d.]+: ")

# SIPp's exit codes (sipp(1)).
EXIT_ALL_CALLS_OK = 0
EXIT_SOME_CALLS_FAILED = 1
EXIT_NO_CALL_PROCESSED = 99
EXIT_FATAL = 255  # -1: fatal error, or -timeout reached with -timeout_error


@dataclass(frozen=True, slots=True)
class SippResult:
    """What one SIPp run reported about itself."""

    exit_code: int
    """SIPp's exit code: 0 all calls succeeded, 1 some failed, 99 none processed, 255 fatal or
    timed out; -9 (SIGKILL) when it overran ``timeout`` and was killed."""
    successful: int
    """``SuccessfulCall(C)`` of the last statistics row."""
    failed: int
    """``FailedCall(C)`` of the last statistics row."""
    created: int
    """``OutgoingCall(C)``: calls started."""
    retransmissions: int
    """``Retransmissions(C)``: UDP retransmissions SIPp sent."""
    failure_reasons: dict[str, int]
    """The non-zero ``Failed…(C)`` counters, e.g. ``{"FailedUnexpectedMessage": 3}``."""
    timed_out: bool
    """SIPp ran into ``timeout`` (stopped itself, or was killed)."""
    elapsed: float
    """Wall-clock seconds of the process."""
    cpu_seconds: float
    """User + system CPU seconds SIPp spent (from ``wait4``)."""
    call_times_ms: list[float] = field(repr=False)
    """Per call that ended with a 2xx: first message sent to that response received, in ms
    (µs accuracy); empty unless ``trace_calls``."""
    final_statuses: dict[int, int]
    """How many calls ended with each final status, e.g. ``{403: 100}``; empty unless
    ``trace_calls``."""
    span: float
    """Seconds from the first message sent to the last one received (0 without ``trace_calls``)."""
    local_port: int
    """The port SIPp used for ``[local_port]``, e.g. to unregister from the same contact."""
    workdir: Path
    """Where SIPp's files are: ``stat.csv``, ``errors.log``, ``screen.log``, ``stdout.log``…"""

    @property
    def errors(self) -> str:
        """SIPp's error log (unexpected messages, regexp failures, fatal errors)."""
        path = self.workdir / "errors.log"
        return path.read_text(errors="replace") if path.exists() else ""

    @property
    def events(self) -> list[str]:
        """The error log split into its events, timestamps removed (SIPp 3.6 writes them
        without line breaks between them)."""
        return [e.strip() for e in _EVENT_STAMP.split(self.errors)[1:] if e.strip()]

    @property
    def all_ok(self) -> bool:
        """Exit code 0, every call started succeeded, none failed."""
        return self.exit_code == EXIT_ALL_CALLS_OK and self.failed == 0 and self.successful > 0


def sipp_path() -> str | None:
    """The ``sipp`` binary, or None when SIPp is not installed."""
    return shutil.which("sipp")


def free_port(host: str = LOCAL_IP, attempts: int = 50) -> int:
    """A port free on ``host`` for both UDP and TCP right now (SIP listens on both)."""
    for _ in range(attempts):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((host, 0))
            port: int = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((host, port))
                except OSError:
                    continue
                return port
    raise RuntimeError(f"no port free for both UDP and TCP on {host} in {attempts} attempts")


def run_sipp(
    scenario: Path,
    target: str,
    *,
    transport: str = "u1",
    calls: int,
    rate: float,
    csv: Path | None = None,
    extra_args: Sequence[str] = (),
    timeout: float,
    keys: Mapping[str, str] | None = None,
    limit: int | None = None,
    local_port: int | None = None,
    trace_calls: bool = True,
    workdir: Path | None = None,
) -> SippResult:
    """Run ``calls`` calls of ``scenario`` against ``target`` (``"127.0.0.1:PORT"``) at ``rate``
    calls/s and wait for SIPp to finish, at most ``timeout`` seconds.

    ``transport`` is SIPp's ``-t``: ``u1`` one UDP socket, ``t1`` one TCP connection, ``tn`` a
    TCP connection per call. ``csv`` is the injection file (``-inf``), ``keys`` become ``-key
    NAME VALUE``, ``limit`` is ``-l`` (most calls at once). ``local_port`` defaults to a free
    port. ``trace_calls`` keeps the short message log for per-call times (costs SIPp a little CPU
    per message). ``workdir`` defaults to a new temporary directory, which is left in place.
    """
    binary = sipp_path()
    if binary is None:
        raise FileNotFoundError("sipp is not installed (Debian package sip-tester)")
    if transport not in TRANSPORTS:
        raise ValueError(f"transport must be one of {TRANSPORTS}, not {transport!r}")
    if calls < 1 or rate <= 0 or timeout <= 0:
        raise ValueError("calls, rate and timeout must be positive")
    workdir = workdir or Path(tempfile.mkdtemp(prefix="sipp-"))
    workdir.mkdir(parents=True, exist_ok=True)
    port = local_port or free_port()
    args = [
        binary, target,
        "-sf", str(scenario.resolve()),
        "-t", transport,
        "-i", LOCAL_IP,
        "-p", str(port),
        "-m", str(calls),
        "-r", f"{rate:g}",
        "-nostdin",
        "-timeout", f"{timeout:g}s", "-timeout_error",
        "-trace_stat", "-stf", "stat.csv", "-fd", "1",
        "-trace_err", "-error_file", "errors.log",
        "-trace_screen", "-screen_file", "screen.log",
    ]  # fmt: skip
    if limit is not None:
        args += ["-l", str(limit)]
    if transport == "tn":  # a connection per call; SIPp refuses to start above the fd limit
        soft_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        args += ["-max_socket", str(max(64, min(calls + 64, soft_limit - 64)))]
    if csv is not None:
        args += ["-inf", str(csv.resolve())]
    for name, value in (keys or {}).items():
        args += ["-key", name, value]
    if trace_calls:
        args += ["-trace_shortmsg", "-shortmessage_file", "calls.log"]
    args += list(extra_args)

    exit_code, elapsed, cpu, killed = _run_bounded(args, workdir, timeout + KILL_GRACE)
    stats = _last_stat_row(workdir / "stat.csv")
    times, statuses, span = _call_times(workdir / "calls.log") if trace_calls else ([], {}, 0.0)
    return SippResult(
        exit_code=exit_code,
        successful=stats.get("SuccessfulCall", 0),
        failed=stats.get("FailedCall", 0),
        created=stats.get("OutgoingCall", 0),
        retransmissions=stats.get("Retransmissions", 0),
        failure_reasons={
            k: v for k, v in stats.items() if k.startswith("Failed") and k != "FailedCall" and v
        },
        timed_out=killed or (exit_code == EXIT_FATAL and _said_timed_out(workdir)),
        elapsed=elapsed,
        cpu_seconds=cpu,
        call_times_ms=times,
        final_statuses=statuses,
        span=span,
        local_port=port,
        workdir=workdir,
    )


def _run_bounded(args: list[str], cwd: Path, deadline: float) -> tuple[int, float, float, bool]:
    """Run ``args`` in ``cwd``; kill it by PID after ``deadline`` seconds.

    Returns (exit code, wall seconds, CPU seconds, killed). The exit code is SIPp's 0..255, or
    minus the signal that ended it.
    """
    start = time.monotonic()
    with (cwd / "stdout.log").open("wb") as out:
        proc = subprocess.Popen(
            args, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )
    killed = False
    status = 0
    usage: resource.struct_rusage | None = None
    while True:  # bounded by ``deadline``: after it, one SIGKILL and a blocking reap
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            break
        if time.monotonic() - start > deadline:
            os.kill(proc.pid, signal.SIGKILL)
            killed = True
            _, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.02)
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    elapsed = time.monotonic() - start
    cpu = usage.ru_utime + usage.ru_stime if usage else 0.0
    return proc.returncode, elapsed, cpu, killed


def _said_timed_out(workdir: Path) -> bool:
    """SIPp logs "<scenario> timed out after 'N' seconds" when -timeout ends it."""
    path = workdir / "errors.log"
    return path.exists() and "timed out after" in path.read_text(errors="replace")


def _last_stat_row(path: Path) -> dict[str, int]:
    """The cumulative ``(C)`` counters of the last row of SIPp's ``-trace_stat`` file."""
    if not path.exists():
        return {}
    with path.open(newline="", errors="replace") as f:
        rows = [row for row in csv.reader(f, delimiter=";") if row]
    if len(rows) < 2:
        return {}
    counters: dict[str, int] = {}
    for name, value in zip(rows[0], rows[-1], strict=False):
        if name.endswith("(C)") and value.isdigit():
            counters[name.removesuffix("(C)")] = int(value)
    return counters


def _call_times(path: Path) -> tuple[list[float], dict[int, int], float]:
    """From SIPp's short message log: the times in ms of calls that ended with a 2xx, the count
    of calls per last final status, and the span of the whole log in seconds.

    Each line is ``date<TAB>time<TAB>epoch<TAB>S|R<TAB>Call-ID<TAB>CSeq<TAB>first line``. A call's
    time runs from its first message sent to its last final response (RFC 3261 §7.2: status
    200-699) received.
    """
    if not path.exists():
        return [], {}, 0.0
    first_sent: dict[str, float] = {}
    last_final: dict[str, tuple[float, int]] = {}
    lo, hi = math.inf, -math.inf
    with path.open(errors="replace") as f:
        for line in f:
            parts = line.rstrip("\r\n").split("\t", 6)
            if len(parts) < 7:
                continue
            try:
                stamp = float(parts[2])
            except ValueError:
                continue
            direction, call_id, start_line = parts[3], parts[4], parts[6]
            lo, hi = min(lo, stamp), max(hi, stamp)
            if direction == "S":
                first_sent.setdefault(call_id, stamp)
            elif direction == "R" and (status := _final_status(start_line)):
                last_final[call_id] = (stamp, status)
    times: list[float] = []
    statuses: dict[int, int] = {}
    for call_id, (stamp, status) in last_final.items():
        statuses[status] = statuses.get(status, 0) + 1
        if 200 <= status < 300 and call_id in first_sent:
            times.append((stamp - first_sent[call_id]) * 1000.0)
    return times, statuses, (hi - lo if hi > lo else 0.0)


def _final_status(start_line: str) -> int | None:
    """The status of a ``SIP/2.0 NNN …`` start line if final (>= 200), else None."""
    parts = start_line.split(" ", 2)
    if len(parts) >= 2 and parts[0] == "SIP/2.0" and parts[1].isdigit():
        status = int(parts[1])
        return status if status >= 200 else None
    return None


def percentile(samples: Sequence[float], fraction: float) -> float:
    """The ``fraction`` (0..1) percentile of ``samples`` by nearest rank; NaN when empty."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    rank = max(1, min(len(ordered), math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]
