"""The edge's configuration snapshot and its TOML loader.

`EdgeConfig` is the one snapshot type the edge runs on. It is immutable (frozen dataclasses,
tuples, read-only mappings), so the daemon swaps the whole object atomically on SIGHUP or when
the control plane pushes a new version; nothing in it knows about TOML. This module also reads
the standalone TOML file users write (`voxedge-edge --config FILE.toml`):

- `load_config(path)` reads a file; relative paths in it are relative to the file's folder;
- `parse_config(text, base_dir)` parses TOML text;
- `build_config(data, base_dir)` validates an already-decoded mapping (the TOML-free core).

Every refusal is a `ConfigError` whose message names the place: `line 7, column 3: …` for TOML
syntax, the field path for everything else (`phones[2].extension: …`, `listen.phones.udp: …`).
No plaintext SIP password survives loading: each phone keeps HA1 per digest algorithm.
"""

from __future__ import annotations

import ipaddress
import math
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Final

from media.ports import parse_port_range
from sip import digest

MAX_CONFIG_BYTES: Final = 8 * 1024 * 1024
MAX_PHONES: Final = 100_000
MAX_SECONDS: Final = 7 * 86_400.0  # upper bound for every duration key
MAX_EXPIRES: Final = 2**32 - 1  # RFC 3261 §20.19: delta-seconds fit in 32 bits


class ConfigError(ValueError):
    """A configuration the edge refuses; the message names the line/column or field path."""


# ---------------------------------------------------------------------------- value types


@dataclass(frozen=True, slots=True)
class Rate:
    """At most `count` events per `window` seconds (written `40/5s`, as Genesys does)."""

    count: int
    window: float

    def __str__(self) -> str:
        if self.window == int(self.window):
            return f"{self.count}/{int(self.window)}s"
        if (ms := round(self.window * 1000, 6)) == int(ms):
            return f"{self.count}/{int(ms)}ms"
        return f"{self.count}/{self.window}s"


_RATE_RE: Final = re.compile(r"(\d{1,9})/(\d{1,9}(?:\.\d{1,6})?)?(ms|s|m|h)")
_RATE_UNITS: Final = {"s": 1, "m": 60, "h": 3600}
_RATE_HELP: Final = 'expected a rate "COUNT/WINDOW" like "40/5s" (units ms, s, m, h)'


def parse_rate(text: str) -> Rate:
    """Parse `40/5s`, `10/60s`, `100/1m`, `5/500ms`, `3/h` (no number means 1) into a `Rate`."""
    match = _RATE_RE.fullmatch(text.strip())
    if match is None:
        raise ConfigError(f'{_RATE_HELP}, got "{text}"')
    count = int(match[1])
    number = float(match[2] or 1)
    # Divide for ms: 93237 * 0.001 is 93.23700000000001, 93237 / 1000 is 93.237.
    window = number / 1000 if match[3] == "ms" else number * _RATE_UNITS[match[3]]
    if count < 1 or window <= 0:
        raise ConfigError(f'count and window must be greater than 0, got "{text}"')
    return Rate(count, window)


@dataclass(frozen=True, slots=True)
class HostPort:
    """A socket address to bind: IPv4 literal, IPv6 literal (stored without brackets) or
    `localhost`. Port 0 means an ephemeral port. Host names are never resolved."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_host_port(text: str) -> HostPort:
    """Parse `127.0.0.1:5060`, `[::1]:5060` or `localhost:5060` without any DNS lookup."""
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep:
            raise ConfigError(f'expected "[IPv6]:port", got "{text}"')
        if not _is_ip(host, 6):
            raise ConfigError(f'"{host}" is not an IPv6 address')
    else:
        host, sep, port = text.rpartition(":")
        if not sep or not host:
            raise ConfigError(f'expected "host:port", got "{text}"')
        if ":" in host:
            raise ConfigError(f'an IPv6 address needs brackets, like "[::1]:5060", got "{text}"')
        if host.lower() == "localhost":
            host = "localhost"
        elif not _is_ip(host, 4):
            raise ConfigError(
                f'host "{host}" must be an IP address or localhost (names are not resolved)'
            )
    if not (port.isascii() and port.isdigit() and len(port) <= 5 and int(port) <= 65535):
        raise ConfigError(f'port must be a number from 0 to 65535, got "{port}"')
    return HostPort(host, int(port))


def _is_ip(text: str, version: int) -> bool:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    return address.version == version


# ---------------------------------------------------------------------------- the snapshot


@dataclass(frozen=True, slots=True)
class Listener:
    """One side's SIP listeners (phones or trunks) and its admission limits.

    `tls_self_signed`: generate a self-signed certificate at `tls_cert`/`tls_key` when they are
    missing (the daemon calls `edge.certs.ensure_self_signed`), instead of requiring the files.
    `max_registration_rate` / `max_call_rate`: REGISTER / call admission (INVITEs with
    credentials: a call counts once, not its challenged first INVITE), `None` = unlimited.
    """

    udp: HostPort | None = None
    tcp: HostPort | None = None
    tls: HostPort | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_self_signed: bool = False
    max_registration_rate: Rate | None = None
    max_call_rate: Rate | None = None


@dataclass(frozen=True, slots=True)
class EdgeSettings:
    """Edge-wide settings. Durations are seconds.

    `domain` is the SIP domain phones register in and the digest realm; `advertise` is the
    host put in Via/Contact (IP literal, IPv6 without brackets, or a host name);
    `auth_failures` throttles failed digest attempts per source IP, which then get `403` for
    `auth_cooldown` seconds; `nonce_ttl` is how long a digest nonce is accepted;
    `t1`/`t2`/`t4` are the RFC 3261 §17 timers; `media_ports` is the RTP/RTCP port range
    (`"20000-29999"`, RTP even, RTCP odd) and `media_timeout` ends a call whose media has been
    silent that long (not while on hold); `media_address` is the IP literal the relay binds and
    writes into SDP (default: `advertise`, which must then be an IP literal);
    `no_answer_timeout` ends an unanswered call with `480`.
    """

    name: str
    domain: str
    advertise: str
    data_dir: Path
    min_expires: int = 60
    max_expires: int = 3600
    default_expires: int = 3600
    auth_failures: Rate = Rate(10, 60.0)
    auth_cooldown: float = 60.0
    nonce_ttl: float = 300.0
    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    tcp_idle_timeout: float = 300.0
    max_connections: int = 1024
    media_ports: tuple[int, int] = (20000, 29999)
    media_timeout: float = 60.0
    media_address: str = ""
    no_answer_timeout: float = 30.0


class PhoneType(StrEnum):
    """Phone kinds. The TOML file accepts only generic_sip; the control plane's feed also
    brings webrtc and managed phones that hold digest secrets (edge.feed); remote numbers
    never register."""

    GENERIC_SIP = "generic_sip"
    WEBRTC = "webrtc"
    MANAGED = "managed"
    REMOTE_NUMBER = "remote_number"


@dataclass(frozen=True, slots=True)
class Phone:
    """A phone the registrar admits. `extension` is the AOR user part and the digest username;
    `ha1` maps each digest algorithm the phone may use (`sip.digest.HASHES`), in the order it
    is challenged with, to its HA1 hex digest."""

    name: str
    type: PhoneType
    extension: str
    ha1: Mapping[str, str] = field(hash=False, repr=False)  # password-equivalent: keep out of logs

    def __post_init__(self) -> None:
        # A read-only copy, so no caller can change a live snapshot through its own dict.
        object.__setattr__(self, "ha1", MappingProxyType(dict(self.ha1)))


@dataclass(frozen=True, slots=True)
class EdgeConfig:
    """The edge's immutable configuration snapshot; replace it whole, never edit it."""

    edge: EdgeSettings
    phones_listener: Listener | None = None
    trunks_listener: Listener | None = None
    phones: tuple[Phone, ...] = ()
    _by_extension: dict[str, Phone] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        phones = tuple(self.phones)
        by_extension = {phone.extension: phone for phone in phones}
        if len(by_extension) != len(phones):
            raise ValueError("phones: duplicate extension")
        object.__setattr__(self, "phones", phones)
        object.__setattr__(self, "_by_extension", by_extension)

    def phone_by_extension(self, extension: str) -> Phone | None:
        """The phone whose extension (digest username) is `extension`, if any."""
        return self._by_extension.get(extension)


def local_defaults(data_dir: Path) -> EdgeConfig:
    """The local part of a paired edge's config when no ``--config`` file is given: everything
    on 127.0.0.1, phones UDP+TCP 8060, trunks UDP+TCP 5060. Name and domain are placeholders
    the control plane's feed replaces (edge.feed)."""
    phones = Listener(udp=HostPort("127.0.0.1", 8060), tcp=HostPort("127.0.0.1", 8060))
    trunks = Listener(udp=HostPort("127.0.0.1", 5060), tcp=HostPort("127.0.0.1", 5060))
    settings = EdgeSettings(
        name="edge",
        domain="localhost",
        advertise="127.0.0.1",
        data_dir=data_dir,
        media_address="127.0.0.1",
    )
    return EdgeConfig(settings, phones, trunks)


# ---------------------------------------------------------------------------- loading


def load_config(path: Path) -> EdgeConfig:
    """Read and validate a TOML config file; errors are prefixed with the file's path."""
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 (byte {exc.start})") from exc
    try:
        return parse_config(text, path.absolute().parent)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


_TOML_AT_RE: Final = re.compile(r"(.*) \(at line (\d+), column (\d+)\)", re.DOTALL)
_TOML_END: Final = " (at end of document)"


def parse_config(text: str, base_dir: Path) -> EdgeConfig:
    """Parse TOML text; relative paths in it are taken relative to `base_dir`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(_toml_error_message(str(exc), text)) from exc
    return build_config(data, base_dir)


def _toml_error_message(message: str, text: str) -> str:
    """Python 3.11's tomllib puts the position at the end of the message; put it first."""
    if match := _TOML_AT_RE.fullmatch(message):
        return f"line {match[2]}, column {match[3]}: {match[1]}"
    if message.endswith(_TOML_END):
        lines = text.split("\n")
        where = f"line {len(lines)}, column {len(lines[-1]) + 1}"
        return f"{where}: {message.removesuffix(_TOML_END)} (at end of document)"
    return message


def build_config(data: Mapping[str, object], base_dir: Path) -> EdgeConfig:
    """Validate a decoded configuration document (TOML's data model) into a snapshot."""
    root = _Table(data, "", ("edge", "listen", "phones"))
    edge = root.table("edge", required=True)
    assert edge is not None
    settings = _edge_settings(edge, base_dir)
    phones_listener = trunks_listener = None
    if (listen := root.table("listen")) is not None:
        listen.check_keys(("phones", "trunks"))
        if (phones_table := listen.table("phones")) is not None:
            phones_listener = _listener(phones_table, base_dir)
        if (trunks_table := listen.table("trunks")) is not None:
            trunks_listener = _listener(trunks_table, base_dir)
        _check_port_clashes(phones_listener, trunks_listener)
    return EdgeConfig(settings, phones_listener, trunks_listener, _phones(root, settings.domain))


_TYPE_NAMES: Final = (
    *((bool, "boolean"), (int, "integer"), (float, "float")),
    *((str, "string"), (dict, "table"), (list, "array")),
)


def _type_name(value: object) -> str:
    for kind, name in _TYPE_NAMES:
        if isinstance(value, kind):
            return name
    return "date/time"  # tomllib's remaining value types


class _Table:
    """A TOML table with its path, handing out typed values with errors that name the field."""

    __slots__ = ("data", "path")

    def __init__(self, data: Mapping[str, object], path: str, keys: Iterable[str] = ()) -> None:
        self.data = data
        self.path = path
        if keys:
            self.check_keys(keys)

    def check_keys(self, keys: Iterable[str]) -> None:
        allowed = frozenset(keys)
        for key in self.data:
            if key not in allowed:
                raise self.error(key, "unknown key")

    def where(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.where(key)}: {message}")

    def _wrong_type(self, key: str, expected: str, value: object) -> ConfigError:
        return self.error(key, f"expected {expected}, got {_type_name(value)}")

    def table(self, key: str, *, required: bool = False) -> _Table | None:
        value = self.data.get(key)
        if value is None:
            if required:
                raise self.error(key, "required")
            return None
        if not isinstance(value, dict):
            raise self._wrong_type(key, "a table", value)
        return _Table(value, self.where(key))

    def string(self, key: str, *, required: bool = False, limit: int = 256) -> str | None:
        value = self.data.get(key)
        if value is None:
            if required:
                raise self.error(key, "required")
            return None
        if not isinstance(value, str):
            raise self._wrong_type(key, "a string", value)
        if not value:
            raise self.error(key, "must not be empty")
        if len(value) > limit:
            raise self.error(key, f"longer than {limit} characters")
        return value

    def required(self, key: str, *, limit: int = 256) -> str:
        value = self.string(key, required=True, limit=limit)
        assert value is not None
        return value

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self.data.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self._wrong_type(key, "an integer", value)
        if not low <= value <= high:
            raise self.error(key, f"must be from {low} to {high}, got {value}")
        return value

    def seconds(self, key: str, default: float, *, zero_ok: bool = False) -> float:
        value = self.data.get(key, default)
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise self._wrong_type(key, "a number of seconds", value)
        if not (math.isfinite(value) and (value >= 0 if zero_ok else value > 0)):
            raise self.error(key, f"must be {'at least' if zero_ok else 'more than'} 0 seconds")
        if value > MAX_SECONDS:
            raise self.error(key, f"must be at most {MAX_SECONDS:g} seconds")
        return float(value)

    def boolean(self, key: str, default: bool = False) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise self._wrong_type(key, "true or false", value)
        return value

    def path_value(self, key: str, base_dir: Path) -> Path | None:
        text = self.string(key, limit=4096)
        return None if text is None else base_dir / text

    def rate(self, key: str) -> Rate | None:
        text = self.string(key)
        if text is None:
            return None
        try:
            return parse_rate(text)
        except ConfigError as exc:
            raise self.error(key, str(exc)) from None

    def host_port(self, key: str) -> HostPort | None:
        text = self.string(key)
        if text is None:
            return None
        try:
            return parse_host_port(text)
        except ConfigError as exc:
            raise self.error(key, str(exc)) from None


_EDGE_KEYS: Final = (
    *("name", "domain", "advertise", "data_dir", "min_expires", "max_expires", "default_expires"),
    *("auth_failures", "auth_cooldown", "nonce_ttl", "t1", "t2", "t4", "tcp_idle_timeout"),
    *("max_connections", "media_ports", "media_timeout", "media_address", "no_answer_timeout"),
)
_NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_HOSTNAME_RE: Final = re.compile(
    r"(?=.{1,253}\Z)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)


def _edge_settings(table: _Table, base_dir: Path) -> EdgeSettings:
    table.check_keys(_EDGE_KEYS)
    name = table.required("name")
    if not _NAME_RE.fullmatch(name):
        raise table.error("name", "use letters, digits, '.', '_' or '-' (at most 64)")
    domain = table.required("domain")
    if not (_HOSTNAME_RE.fullmatch(domain) or _is_ip(domain, 4)):
        raise table.error("domain", f'"{domain}" is not a host name or IPv4 address')
    advertise = table.required("advertise")
    bare = advertise.removeprefix("[").removesuffix("]")
    if not (_HOSTNAME_RE.fullmatch(advertise) or _is_ip(advertise, 4) or _is_ip(bare, 6)):
        raise table.error("advertise", f'"{advertise}" is not an IP address or host name')
    if _is_ip(bare, 6):
        advertise = bare
    data_dir = table.path_value("data_dir", base_dir)
    if data_dir is None:
        raise table.error("data_dir", "required")
    d = _DEFAULTS
    settings = EdgeSettings(
        name=name,
        domain=domain,
        advertise=advertise,
        data_dir=data_dir,
        min_expires=table.integer("min_expires", d.min_expires, 1, MAX_EXPIRES),
        max_expires=table.integer("max_expires", d.max_expires, 1, MAX_EXPIRES),
        default_expires=table.integer("default_expires", d.default_expires, 1, MAX_EXPIRES),
        auth_failures=table.rate("auth_failures") or d.auth_failures,
        auth_cooldown=table.seconds("auth_cooldown", d.auth_cooldown, zero_ok=True),
        nonce_ttl=table.seconds("nonce_ttl", d.nonce_ttl),
        t1=table.seconds("t1", d.t1),
        t2=table.seconds("t2", d.t2),
        t4=table.seconds("t4", d.t4),
        tcp_idle_timeout=table.seconds("tcp_idle_timeout", d.tcp_idle_timeout),
        max_connections=table.integer("max_connections", d.max_connections, 1, 1_000_000),
        media_ports=_media_ports(table, d.media_ports),
        media_timeout=table.seconds("media_timeout", d.media_timeout),
        media_address=_media_address(table, advertise),
        no_answer_timeout=table.seconds("no_answer_timeout", d.no_answer_timeout),
    )
    s = settings
    if s.min_expires > s.default_expires:
        raise table.error(
            "min_expires", f"{s.min_expires} is above default_expires ({s.default_expires})"
        )
    if s.default_expires > s.max_expires:
        raise table.error(
            "default_expires", f"{s.default_expires} is above max_expires ({s.max_expires})"
        )
    if s.t2 < s.t1:  # RFC 3261 §17.1.2.2: T2 caps the doubling of T1
        raise table.error("t2", f"{s.t2:g} is below t1 ({s.t1:g})")
    return settings


_DEFAULTS: Final = EdgeSettings(name="", domain="", advertise="", data_dir=Path())
_LISTENER_KEYS: Final = (
    *("udp", "tcp", "tls", "tls_cert", "tls_key", "tls_self_signed"),
    *("max_registration_rate", "max_call_rate"),
)


def _listener(table: _Table, base_dir: Path) -> Listener:
    table.check_keys(_LISTENER_KEYS)
    listener = Listener(
        udp=table.host_port("udp"),
        tcp=table.host_port("tcp"),
        tls=table.host_port("tls"),
        tls_cert=table.path_value("tls_cert", base_dir),
        tls_key=table.path_value("tls_key", base_dir),
        tls_self_signed=table.boolean("tls_self_signed"),
        max_registration_rate=table.rate("max_registration_rate"),
        max_call_rate=table.rate("max_call_rate"),
    )
    if listener.udp is None and listener.tcp is None and listener.tls is None:
        raise ConfigError(f"{table.path}: no transport given (udp, tcp or tls)")
    tls_files = (("tls_cert", listener.tls_cert), ("tls_key", listener.tls_key))
    if listener.tls is None:
        for key in ("tls_cert", "tls_key", "tls_self_signed"):
            if key in table.data:
                raise table.error(key, "given but tls is not set")
    for key, path in tls_files if listener.tls is not None else ():
        if path is None:
            raise table.error(key, "required when tls is set")
    for key, path in tls_files if not listener.tls_self_signed else ():
        if path is not None and not path.is_file():
            raise table.error(key, f"file not found: {path} (or set tls_self_signed = true)")
    return listener


def _check_port_clashes(*listeners: Listener | None) -> None:
    """Two listeners may not bind the same socket (TLS runs over TCP); port 0 never clashes."""
    taken: dict[tuple[str, HostPort], str] = {}
    for side, listener in zip(("phones", "trunks"), listeners, strict=True):
        if listener is None:
            continue
        for transport, socket_kind in (("udp", "udp"), ("tcp", "tcp"), ("tls", "tcp")):
            address: HostPort | None = getattr(listener, transport)
            if address is None or address.port == 0:
                continue
            where = f"listen.{side}.{transport}"
            if (other := taken.get((socket_kind, address))) is not None:
                raise ConfigError(f"{where}: {address} is already used by {other}")
            taken[(socket_kind, address)] = where


_PHONE_KEYS: Final = ("name", "type", "extension", "password", "digest_algorithms")
DEFAULT_DIGEST_ALGORITHMS: Final = ("SHA-256", "MD5")  # RFC 8760 §2.4: preferred first
_UNSUPPORTED_PHONE_TYPES: Final = frozenset({"managed", "webrtc", "remote_number"})
# RFC 3261 §25.1 token characters that also need no escaping in a SIP URI user part.
_EXTENSION_RE: Final = re.compile(r"[A-Za-z0-9\-.!*_+'~]{1,32}")


def _phones(root: _Table, realm: str) -> tuple[Phone, ...]:
    entries = root.data.get("phones", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        got = _type_name(entries)
        raise root.error("phones", f"expected an array of tables ([[phones]]), got {got}")
    if len(entries) > MAX_PHONES:
        raise root.error("phones", f"more than {MAX_PHONES} phones")
    phones: list[Phone] = []
    names: dict[str, int] = {}
    extensions: dict[str, int] = {}
    for index, entry in enumerate(entries):
        table = _Table(entry, f"phones[{index}]", _PHONE_KEYS)
        name = table.required("name", limit=64)
        if not name.isprintable():
            raise table.error("name", "must be printable characters")
        extension = table.required("extension")
        if not _EXTENSION_RE.fullmatch(extension):
            raise table.error(
                "extension",
                f'"{extension}" must be 1 to 32 letters, digits or -.!*_+\'~',
            )
        kind = table.required("type")
        if kind in _UNSUPPORTED_PHONE_TYPES:
            raise table.error("type", f'"{kind}" phones are not supported yet (use generic_sip)')
        if kind not in {t.value for t in PhoneType}:
            raise table.error("type", f'unknown phone type "{kind}" (supported: generic_sip)')
        password = table.required("password", limit=128)
        for key, value, seen in (("name", name, names), ("extension", extension, extensions)):
            if value in seen:
                raise table.error(key, f'duplicate {key} "{value}" (also phones[{seen[value]}])')
            seen[value] = index
        algorithms = _digest_algorithms(table)
        ha1 = {
            algorithm: digest.ha1(extension, realm, password, algorithm) for algorithm in algorithms
        }
        phones.append(Phone(name, PhoneType(kind), extension, ha1))
    return tuple(phones)


def _digest_algorithms(table: _Table) -> tuple[str, ...]:
    """``digest_algorithms``: what this phone is challenged with and may answer, in order.

    Some deployed user agents (baresip 1.0 / libre 1.1) abort on a SHA-256 challenge even when
    an MD5 one stands beside it; such a phone is configured ``["MD5"]``. Only the listed
    algorithms get an HA1, so the phone cannot be authenticated with any other.
    """
    value = table.data.get("digest_algorithms", list(DEFAULT_DIGEST_ALGORITHMS))
    known = ", ".join(digest.HASHES)
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, str) and v in digest.HASHES for v in value)
        or len(set(value)) != len(value)
    ):
        raise table.error(
            "digest_algorithms", f"expected a non-empty list of distinct names from: {known}"
        )
    return tuple(value)


def _media_address(table: _Table, advertise: str) -> str:
    """An IP literal: SDP's c= never names a host (the relay never resolves, RFC 8866 §5.7)."""
    text = table.string("media_address")
    if text is None:
        if not (_is_ip(advertise, 4) or _is_ip(advertise, 6)):
            raise table.error("media_address", "required when advertise is a host name")
        return advertise
    if not (_is_ip(text, 4) or _is_ip(text, 6)):
        raise table.error("media_address", f'"{text}" is not an IP address')
    return text


def _media_ports(table: _Table, default: tuple[int, int]) -> tuple[int, int]:
    text = table.string("media_ports")
    if text is None:
        return default
    try:
        return parse_port_range(text)
    except ValueError as exc:
        raise table.error("media_ports", str(exc)) from None
