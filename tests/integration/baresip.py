"""Drive a real SIP user agent, baresip (Debian's 1.0.0), headless from integration tests.

One `Baresip` is one user agent with one account. `start()` writes `config` and `accounts` into
its work dir, launches ``baresip -f WORKDIR`` with stdin a pipe (the ``stdio`` UI reads keys and
``/long commands`` from it) and collects everything it prints (stdout and stderr merged, ANSI
colours removed) in `output` and ``WORKDIR/baresip.log``. The ``wait_*`` methods parse that
output, so what they report is what baresip itself said.

Containment: the SIP stack listens on 127.0.0.1 only (``sip_listen``/``net_interface``), the
registrar is reached through the account's outbound proxy (an IP address, so the AOR domain is
never resolved), no STUN/TURN/ICE module is loaded, and ``dns_server`` points at a UDP socket
this object holds open on 127.0.0.1 and never answers: baresip has no DNS server off-box to ask,
and `dns_queries()` counts any query it tried.

Audio needs no device: the source is ``ausine`` (a 440 Hz tone; it only runs at 48 kHz stereo,
baresip resamples to the codec) and the player is ``aubridge`` with no source on the other side
(a sink). For calls, ``config_extra={"audio_source": "aufile,/x.wav"}`` plays a 16-bit PCM WAV
instead, and loading ``sndfile.so`` with ``snd_path`` dumps sent/received audio to WAV files.

What baresip 1.0.0 prints about registration (one line per change of status, not per refresh)::

    alice@voxedge.test: {0/TCP/v4} 200 OK (kamailio (5.6.3 (x86_64/linux))) [1 binding]
    reg: sip:alice@voxedge.test: 403 Forbidden (kamailio (5.6.3 (x86_64/linux)))
    reg: sip:alice@voxedge.test: Register: Connection refused

The last brackets hold the registrar's Server header (``()`` when it sends none); the methods
below return just ``"200 OK"``, ``"403 Forbidden"`` or ``"Register: Connection refused"``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Literal, TypeVar

Transport = Literal["udp", "tcp", "tls"]
_T = TypeVar("_T")

MODULE_PATH = Path("/usr/lib/baresip/modules")

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# "(prio N)" appears in newer baresip releases; 1.0.0 omits it.
_REG_OK = re.compile(
    r"^(?P<aor>\S+): (?:\(prio \d+\) )?\{\d+/(?P<transport>[A-Z]+)/v[46?]\} (?P<status>2\d\d .*)$",
    re.MULTILINE,
)
_REG_FAIL = re.compile(r"^reg: (?P<aor>\S+?)(?: \(prio \d+\))?: (?P<status>.+)$", re.MULTILINE)


def baresip_path() -> str | None:
    """Path of the ``baresip`` executable, or None when it is not installed."""
    return shutil.which("baresip")


class Baresip:
    """One headless baresip user agent registering one account over UDP, TCP or TLS.

    ``registrar`` is ``"127.0.0.1:PORT"``: it becomes the account's outbound proxy, so REGISTER
    (and later INVITE) goes there over ``transport`` while the AOR is ``sip:user@domain``.
    ``ca_file`` is written as ``sip_cafile``; note that baresip 1.0.0 (libre 1.1.0) does not
    verify the server certificate at all, so TLS works with or without it.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        user: str,
        password: str,
        domain: str,
        registrar: str,
        transport: Transport = "udp",
        ca_file: Path | None = None,
        expires: int = 60,
        sip_trace: bool = False,
        account_extra: str = "",
        config_extra: Mapping[str, str] | None = None,
        modules: tuple[str, ...] = ("stdio", "g711", "ausine", "aubridge"),
    ) -> None:
        if transport not in ("udp", "tcp", "tls"):
            raise ValueError(f"transport must be udp, tcp or tls, not {transport!r}")
        if not _is_loopback_hostport(registrar):
            raise ValueError(f"registrar must be a loopback IP:PORT, not {registrar!r}")
        self.workdir = Path(workdir)
        self.user = user
        self.password = password
        self.domain = domain
        self.registrar = registrar
        self.transport: Transport = transport
        self.ca_file = ca_file
        self.expires = expires
        self.sip_trace = sip_trace
        self.account_extra = account_extra
        self.config_extra = dict(config_extra or {})
        self.modules = modules
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._dns_sink: socket.socket | None = None
        self._dns_queries = 0
        self._chunks: list[str] = []
        self._version = 0  # bumped on each chunk of output and when the output ends
        self._cond = threading.Condition()

    # -- configuration -------------------------------------------------------------------------

    @property
    def aor(self) -> str:
        return f"sip:{self.user}@{self.domain}"

    def account_line(self) -> str:
        """The ``accounts`` file line: AOR, digest password, outbound proxy, register interval."""
        proxy = f"sip:{self.registrar};transport={self.transport}"
        return (
            f"<{self.aor};transport={self.transport}>;auth_pass={self.password}"
            f';outbound="{proxy}";regint={self.expires}{self.account_extra}'
        )

    def config_text(self, dns_port: int) -> str:
        """The ``config`` file: loopback only, a never-answering DNS server, no audio device."""
        settings: dict[str, str] = {
            "poll_method": "epoll",
            "sip_listen": "127.0.0.1:0",  # ephemeral port, one per transport
            "net_interface": "127.0.0.1",  # local address for SDP/RTP too; "lo" fails in 1.0.0
            "dns_server": f"127.0.0.1:{dns_port}",
            "call_local_timeout": "120",
            "call_max_calls": "4",
            "audio_path": "/usr/share/baresip",
            "audio_source": "ausine,440",
            "ausrc_srate": "48000",  # ausine refuses anything but 48 kHz stereo
            "ausrc_channels": "2",
            "audio_player": "aubridge,nil",
            "audio_alert": "aubridge,nil",
            "statmode_default": "off",  # no "[0:00:01] audio=..." status line spam
            "module_path": str(MODULE_PATH),
        }
        if self.ca_file is not None:
            settings["sip_cafile"] = str(self.ca_file)
        settings.update(self.config_extra)
        lines = [f"{key}\t{value}" for key, value in settings.items()]
        lines += [f"module\t{name}.so" for name in self.modules]
        lines += ["module_tmp\taccount.so", "module_app\tmenu.so"]
        return "\n".join(lines) + "\n"

    # -- process -------------------------------------------------------------------------------

    def start(self, ready_timeout: float = 5) -> None:
        """Write the config, launch baresip and wait until it says it is ready."""
        exe = baresip_path()
        if exe is None:
            raise RuntimeError("baresip is not installed")
        if self._proc is not None:
            raise RuntimeError("already started")
        self.workdir.mkdir(parents=True, exist_ok=True)
        sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sink.bind(("127.0.0.1", 0))
        sink.setblocking(False)
        self._dns_sink = sink
        (self.workdir / "config").write_text(self.config_text(sink.getsockname()[1]))
        (self.workdir / "accounts").write_text(self.account_line() + "\n")
        argv = [exe, "-f", str(self.workdir)] + (["-s"] if self.sip_trace else [])
        # With -f and both files present baresip needs no HOME; a writable one costs nothing.
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.workdir)}
        try:
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env=env,
            )
        except OSError:
            self.stop()
            raise
        assert self._proc.stdout is not None
        log = (self.workdir / "baresip.log").open("w", encoding="utf-8")
        self._reader = threading.Thread(
            target=self._read, args=(self._proc.stdout, log), name="baresip-output", daemon=True
        )
        self._reader.start()
        if self.wait_for(r"^baresip is ready\.$", ready_timeout) is None:
            output = self.output
            self.stop()
            raise RuntimeError(f"baresip did not become ready:\n{output}")

    def _read(self, stream: IO[bytes], log: IO[str]) -> None:
        with log:
            while chunk := os.read(stream.fileno(), 65536):
                text = _ANSI.sub("", chunk.decode("utf-8", "replace"))
                text = text.replace("\r\n", "\n").replace("\r", "\n")
                log.write(text)
                log.flush()
                with self._cond:
                    self._chunks.append(text)
                    self._version += 1
                    self._cond.notify_all()
        with self._cond:
            self._version += 1
            self._cond.notify_all()

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def output(self) -> str:
        """Everything baresip printed so far (stdout and stderr, without colour codes)."""
        with self._cond:
            if len(self._chunks) > 1:
                self._chunks[:] = ["".join(self._chunks)]
            return self._chunks[0] if self._chunks else ""

    def command(self, text: str) -> None:
        """Run a long console command, e.g. ``dial sip:bob@voxedge.test``, ``hangup``, ``quit``."""
        self.keys(f"/{text}\n")

    def keys(self, keys: str) -> None:
        """Send raw keystrokes to the stdio UI (single-key commands such as ``b`` = hang up)."""
        if self._proc is None or self._proc.stdin is None:
            raise RuntimeError("not started")
        self._proc.stdin.write(keys.encode())
        self._proc.stdin.flush()

    def stop(self, timeout: float = 3) -> int | None:
        """Quit politely (un-REGISTER) within ``timeout``, then SIGTERM twice, then SIGKILL.

        Returns baresip's exit status (negative: killed by that signal)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                with contextlib.suppress(OSError):
                    assert proc.stdin is not None
                    proc.stdin.write(b"/quit\n")
                    proc.stdin.flush()
            # 1.0.0 treats the first SIGTERM like /quit (waits for un-REGISTER) and exits at
            # the second one.
            steps = ((None, timeout), (proc.terminate, 0.5), (proc.terminate, 1), (proc.kill, 5))
            for send_signal, wait in steps:
                if send_signal is not None:
                    send_signal()
                try:
                    proc.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
            if proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
        if self._reader is not None:
            self._reader.join(timeout)
            self._reader = None
        if self._dns_sink is not None:
            self.dns_queries()
            self._dns_sink.close()
            self._dns_sink = None
        return None if proc is None else proc.returncode

    def __enter__(self) -> Baresip:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- observations --------------------------------------------------------------------------

    def dns_queries(self) -> int:
        """How many DNS queries baresip sent (to the only DNS server it knows, our sink)."""
        while self._dns_sink is not None:
            try:
                self._dns_sink.recv(4096)
            except BlockingIOError:
                break
            self._dns_queries += 1
        return self._dns_queries

    def wait_for(self, pattern: str, timeout: float = 10, since: int = 0) -> re.Match[str] | None:
        """First match of ``pattern`` (multiline) in `output` from offset ``since``.

        Returns None when ``timeout`` passes or baresip has exited without printing it.
        """
        regex = re.compile(pattern, re.MULTILINE)
        return self._poll(lambda text: regex.search(text, since), timeout)

    def registration(self, timeout: float = 10, since: int = 0) -> tuple[bool, str] | None:
        """The latest registration outcome after ``since``: (True, "200 OK") or (False, reason).

        Waits up to ``timeout`` for the first outcome; None if there is none.
        """
        return self._poll(lambda text: _last_registration(text[since:]), timeout)

    def wait_registered(self, timeout: float = 10) -> bool:
        """True once baresip reports a 2xx to REGISTER; False on a failure report or timeout."""
        outcome = self.registration(timeout)
        return outcome is not None and outcome[0]

    def wait_register_failed(self, timeout: float = 10) -> str | None:
        """The failure reason (``"403 Forbidden"``, ``"Register: Connection refused"``) if
        baresip reports a failed registration; None on success or timeout."""
        outcome = self.registration(timeout)
        return None if outcome is None or outcome[0] else outcome[1]

    def _poll(self, probe: Callable[[str], _T | None], timeout: float) -> _T | None:
        """Apply ``probe`` to the output each time it grows, until a result or the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            with self._cond:
                seen = self._version
            result = probe(self.output)
            if result is not None:
                return result
            remaining = deadline - time.monotonic()
            reader = self._reader
            if remaining <= 0 or reader is None or not reader.is_alive():
                return None
            with self._cond:
                if self._version == seen:
                    self._cond.wait(remaining)


def _is_loopback_hostport(text: str) -> bool:
    host, _, port = text.rpartition(":")
    try:
        return port.isdigit() and ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _last_registration(text: str) -> tuple[bool, str] | None:
    found: list[tuple[int, bool, str]] = [
        (m.start(), True, _strip_server(m["status"])) for m in _REG_OK.finditer(text)
    ]
    found += [(m.start(), False, _strip_server(m["status"])) for m in _REG_FAIL.finditer(text)]
    if not found:
        return None
    _, ok, status = max(found)
    return ok, status


def _strip_server(status: str) -> str:
    """Drop baresip's trailing ``[N bindings]`` and ``(Server header)`` from a status text."""
    status = re.sub(r" \[\d+ bindings?\]$", "", status.rstrip())
    if not status.endswith(")"):
        return status
    depth = 0
    for index in range(len(status) - 1, -1, -1):
        depth += {")": 1, "(": -1}.get(status[index], 0)
        if depth == 0:
            return status[:index].rstrip() if index > 0 and status[index - 1] == " " else status
    return status
