"""Run SIPp (Debian ``sip-tester`` 3.6) from tests and benchmarks, and read what it reports.

    from tests.integration.sipp import run_sipp, sipp_path

    result = run_sipp(Path("benchmarks/sipp/register_auth.xml"), "127.0.0.1:5060",
                      calls=1000, rate=500, csv=users_csv, timeout=30,
                      keys={"domain": "voxedge.test", "expires": "3600"},
                      extra_args=["-auth_uri", "voxedge.test"])
    assert result.exit_code == 0 and result.successful == 1000

SIPp runs in the foreground with ``-nostdin``, bound to 127.0.0.1 on a free port (its control
socket too), all its files in a fresh directory. The counts come from its own statistics file
(``-trace_stat``, last row), the exit code from the process, per-call times from its short
message log (``-trace_shortmsg``, microsecond timestamps). Its ``-trace_rtt`` and response-time
counters are not used: SIPp 3.6 reads a coarse clock, so they come in 4 ms steps. SIPp stops
itself at ``timeout`` (``-timeout -timeout_error``, exit code 255); should it overrun that by
``KILL_GRACE`` seconds it is killed by PID.

``start_sipp`` takes the same arguments and returns at once, for a callee (UAS) that must
listen while a caller runs (``target`` None: a UAS answers whoever sends to it):

    callee = start_sipp(Path("benchmarks/sipp/call_uas_echo.xml"), None, calls=1, rate=1,
                        timeout=20, extra_args=["-mp", str(free_media_port()), "-rtp_echo"])
    callee.wait_listening()
    caller = run_sipp(Path("benchmarks/sipp/call_uac.xml"), f"127.0.0.1:{callee.local_port}",
                      calls=1, rate=1, csv=caller_csv, keys={"domain": "voxedge.test"},
                      timeout=20, extra_args=["-s", "1002", "-mp", str(free_media_port())])
    assert caller.all_ok and callee.wait(timeout=5).all_ok

SIPp 3.6 facts worth knowing (found by testing this build):
- ``-p 0`` does not mean an ephemeral port: SIPp tries 5060 upward. Hence ``free_port()``.
- Without ``-timeout_error`` a ``-timeout`` stops the calls but not the process.
- ``[authentication]`` only expands ``[field0]`` inside quotes: ``username="[field0]"``.
- The digest ``uri`` is ``sip:<remote ip>:<remote port>`` unless ``-auth_uri`` says otherwise.
- Digest is MD5 only; a challenge with ``algorithm=SHA-256`` makes SIPp exit (code 255).
- With ``-t tn`` (a TCP connection per call) ``[local_port]`` is that connection's port, so
  every call has its own Contact, and a call's first message (sent as the connection opens)
  is missing from the message logs: its time then starts at the second request.
- Its control socket (``-cp``, UDP 8888 upward) listens on every address unless ``-ci`` names
  one; it always binds RTP sockets on ``-mp`` and ``-mp`` + 2 (default 6000, moving up past
  ports in use), also for scenarios without media.
- ``play_pcap_audio`` sends from a raw socket (root or CAP_NET_RAW), from ``-mp`` to the last
  SDP received; its path is relative to the scenario file. ``-rtp_echo`` sends whatever
  arrives on ``-mp`` back to its source (SIPp 3.6 has no per-call echo action).
- SIGTERM ends it at once with exit code 0, calls in progress or not.

Writing scenarios for it (benchmarks/sipp/call_*.xml; found the same way):
- A send's ``[branch]`` is built from its own index in the scenario, ``ack_txn`` or not: an
  ACK for a non-2xx answer, or a CANCEL, takes the INVITE's Via from a response to it with
  ``[last_Via:]`` (which keeps any ``received``/``rport`` the far end added).
- ``[last_Via:]`` joins every Via of the last message on one line (``Via: a, b``), but an
  ``ereg`` with ``search_in="hdr"`` yields the first header of the name only, and
  ``assignstr`` does not expand ``[last_...]`` at all (the value comes out empty).
- ``response_txn`` matches by branch only: a recv for a 487 that follows a CANCEL must name
  the INVITE's transaction (without it the CSeq-method fallback does not match there), and a
  CANCEL shares its INVITE's branch, so ``response_txn`` does not tell their 200s apart.
  With it, a provisional that arrives after the final response is ignored and a retransmitted
  final response gets the transaction's ACK again (``ack_txn``).
- A recv's ``response`` is one exact code (no ``4xx``); an ``ereg`` ``check_it`` fails the
  call inside a recv's actions only (in a ``nop`` it logs and the call succeeds), and an
  ``ereg`` with ``search_in="msg"`` in a ``nop`` crashes SIPp (exit -11).
- A UAS scenario does not answer a request retransmitted after its call ended (the dead-call
  list swallows it), and a BYE that overtakes the ACK (a multi-process proxy) aborts the call
  unless the ACK's recv is optional.
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

from benchmarks.sipp.users import PhoneUser, write_sipp_csv

LOCAL_IP = "127.0.0.1"
SCENARIOS = Path(__file__).resolve().parents[2] / "benchmarks" / "sipp"
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


def free_media_port(host: str = LOCAL_IP, attempts: int = 50) -> int:
    """An even port with it and the port + 2 free for UDP on ``host`` right now: SIPp's ``-mp``
    (it binds both, audio and video RTP)."""
    for _ in range(attempts):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((host, 0))
            port: int = probe.getsockname()[1] & ~1
        if port < 1024 or port + 2 > 65535:
            continue
        try:
            with (
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rtp,
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as video,
            ):
                rtp.bind((host, port))
                video.bind((host, port + 2))
        except OSError:
            continue
        return port
    raise RuntimeError(f"no free even UDP port pair on {host} in {attempts} attempts")


def udp_queued_bytes(port: int, host: str = LOCAL_IP) -> int:
    """Bytes waiting unread in the UDP socket bound to ``host:port`` (0 when none is), from
    /proc/net/udp; kernel accounting, so per packet somewhat more than its payload.

    SIPp never reads its own ``-mp`` socket, so this shows whether RTP reached a caller, e.g.
    the echo of its ``play_pcap_audio``, while that SIPp still runs.
    """
    rows = _proc_net_rows("udp", host, port)
    return max((int(row[4].split(":")[1], 16) for row in rows), default=0)  # tx_queue:rx_queue


def _proc_net_rows(table: str, host: str, port: int) -> list[list[str]]:
    """The rows of /proc/net/``table`` (udp, tcp) whose local address is ``host:port``."""
    address = int.from_bytes(socket.inet_aton(host), "big")
    local = f"{socket.htonl(address):08X}:{port:04X}"  # as the kernel prints it: host order
    with open(f"/proc/net/{table}") as lines:
        return [row for line in lines if (row := line.split()) and row[1] == local]


def run_sipp(
    scenario: Path,
    target: str | None,
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
    ``target`` None suits a callee (UAS scenario), which answers whoever sends to it.
    """
    return start_sipp(
        scenario,
        target,
        transport=transport,
        calls=calls,
        rate=rate,
        csv=csv,
        extra_args=extra_args,
        timeout=timeout,
        keys=keys,
        limit=limit,
        local_port=local_port,
        trace_calls=trace_calls,
        workdir=workdir,
    ).wait()


def start_sipp(
    scenario: Path,
    target: str | None,
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
) -> SippProcess:
    """Start SIPp as ``run_sipp`` does and return at once; the arguments are ``run_sipp``'s.

    ``wait()`` on the returned process collects its ``SippResult`` (killing it by PID should it
    overrun ``timeout`` by ``KILL_GRACE``), ``stop()`` ends it first. Its ``local_port`` is
    known at once, e.g. as the target of a caller.
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
    args = [binary] + ([target] if target else []) + [
        "-sf", str(scenario.resolve()),
        "-t", transport,
        "-i", LOCAL_IP,
        "-ci", LOCAL_IP,
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
    return SippProcess(args, workdir, port, timeout + KILL_GRACE, trace_calls)


class SippProcess:
    """A SIPp that ``start_sipp`` started, owned by PID; ``wait()`` or ``stop()`` reaps it."""

    def __init__(
        self, args: list[str], workdir: Path, local_port: int, deadline: float, trace_calls: bool
    ) -> None:
        self.workdir = workdir
        self.local_port = local_port
        self._deadline = deadline
        self._trace_calls = trace_calls
        self._result: SippResult | None = None
        self._start = time.monotonic()
        with (workdir / "stdout.log").open("wb") as out:
            self._proc = subprocess.Popen(
                args, cwd=workdir, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )

    @property
    def pid(self) -> int:
        return self._proc.pid

    def wait_listening(self, timeout: float = 5.0) -> None:
        """Return once SIPp listens on ``local_port`` (UDP bound, or TCP in LISTEN state), so
        a caller's first INVITE does not go to a closed port; RuntimeError if SIPp exits or
        ``timeout`` passes first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise RuntimeError(f"SIPp exited before it listened; see {self.workdir}")
            if _proc_net_rows("udp", LOCAL_IP, self.local_port) or any(
                row[3] == "0A" for row in _proc_net_rows("tcp", LOCAL_IP, self.local_port)
            ):
                return
            time.sleep(0.01)
        raise RuntimeError(f"SIPp did not listen on {self.local_port} in {timeout:g} s")

    def running(self) -> bool:
        """Not yet exited (a process that exited but is not reaped yet counts as exited)."""
        if self._result is not None:
            return False
        # WNOWAIT: look without reaping, so the PID stays ours until wait() reaps it.
        info = os.waitid(os.P_PID, self._proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        return info is None

    def stop(self) -> SippResult:
        """End it now with SIGTERM (SIPp 3.6 exits at once, code 0), then ``wait()``."""
        if self._result is None and self.running():
            os.kill(self._proc.pid, signal.SIGTERM)  # not reaped yet: the PID is still ours
        return self.wait()

    def wait(self, timeout: float | None = None) -> SippResult:
        """Wait for SIPp to exit (SIGKILL by PID past the deadline) and read its files;
        ``timeout``: ``stop()`` it should it still run after that many seconds."""
        if timeout is not None and self._result is None:
            deadline = time.monotonic() + timeout
            while self.running() and time.monotonic() < deadline:
                time.sleep(0.02)
            if self.running():
                os.kill(self._proc.pid, signal.SIGTERM)  # not reaped yet: the PID is ours
        if self._result is None:
            exit_code, elapsed, cpu, killed = self._reap()
            workdir = self.workdir
            stats = _last_stat_row(workdir / "stat.csv")
            times, statuses, span = (
                _call_times(workdir / "calls.log") if self._trace_calls else ([], {}, 0.0)
            )
            self._result = SippResult(
                exit_code=exit_code,
                successful=stats.get("SuccessfulCall", 0),
                failed=stats.get("FailedCall", 0),
                created=stats.get("OutgoingCall", 0),
                retransmissions=stats.get("Retransmissions", 0),
                failure_reasons={
                    k: v
                    for k, v in stats.items()
                    if k.startswith("Failed") and k != "FailedCall" and v
                },
                timed_out=killed or (exit_code == EXIT_FATAL and _said_timed_out(workdir)),
                elapsed=elapsed,
                cpu_seconds=cpu,
                call_times_ms=times,
                final_statuses=statuses,
                span=span,
                local_port=self.local_port,
                workdir=workdir,
            )
        return self._result

    def _reap(self) -> tuple[int, float, float, bool]:
        """(exit code, wall seconds, CPU seconds, killed). The exit code is SIPp's 0..255, or
        minus the signal that ended it."""
        proc = self._proc
        killed = False
        status = 0
        usage: resource.struct_rusage | None = None
        while True:  # bounded by the deadline: after it, one SIGKILL and a blocking reap
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                break
            if time.monotonic() - self._start > self._deadline:
                os.kill(proc.pid, signal.SIGKILL)
                killed = True
                _, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        elapsed = time.monotonic() - self._start
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


def register_phone(
    target: str,
    user: PhoneUser,
    port: int,
    workdir: Path,
    *,
    domain: str = "voxedge.test",
    unregister: bool = False,
    timeout: float = 10,
) -> SippResult:
    """REGISTER ``user`` with digest from 127.0.0.1:``port`` (its Contact there: a SIPp callee
    then listens on that port), or take that binding away (``unregister``)."""
    scenario = "unregister_auth.xml" if unregister else "register_auth.xml"
    return run_sipp(
        SCENARIOS / scenario,
        target,
        calls=1,
        rate=1,
        csv=write_sipp_csv(workdir / f"{user.extension}.csv", [user]),
        keys={"domain": domain, "expires": "3600"},
        extra_args=["-auth_uri", domain],
        local_port=port,
        timeout=timeout,
        workdir=workdir / f"{scenario.removesuffix('.xml')}-{user.extension}-{port}",
    )
