"""SDP (RFC 8866, successor of RFC 4566): parse and serialize, sans-I/O.

The model keeps every line it does not interpret as text, in order, so a B2BUA can rewrite what
it means to (c=, m= ports, a=rtcp, ICE) and pass everything else through unchanged. Values are
checked where they carry numbers or addresses we use; a fault raises :class:`SdpError` naming
the line and what is wrong. Addresses are kept as text and never resolved.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, replace

MAX_SDP_BYTES = 64 * 1024
MAX_SDP_LINES = 1000
MAX_MEDIA_SECTIONS = 64

# RFC 8866 §6.7: the four direction attributes; sendrecv is the default.
DIRECTIONS = frozenset(("sendrecv", "sendonly", "recvonly", "inactive"))

_TOKEN = r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+"  # RFC 8866 §9 token
_TOKEN_RE = re.compile(_TOKEN)
_PROTO_RE = re.compile(f"{_TOKEN}(?:/{_TOKEN})*")
_DIGITS_RE = re.compile(r"[0-9]{1,20}")
_FQDN_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.\-]{0,253}[A-Za-z0-9])?\.?")
_RTPMAP_RE = re.compile(r"([0-9]{1,3}) ([^/ ]+)/([0-9]{1,10})(?:/([0-9]{1,3}))?")
_NUMBER_RE = re.compile(r"[0-9]{1,6}(?:\.[0-9]{1,6})?")  # RFC 8866 §9 non-zero-int-or-real
_BANDWIDTH_RE = re.compile(f"{_TOKEN}:[0-9]{{1,20}}")
_TIME_RE = re.compile(r"[0-9]{1,20} [0-9]{1,20}")
_UINT64 = 2**64


class SdpError(ValueError):
    """A session description is malformed; ``reason`` names the fault, ``line`` where (1-based)."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        super().__init__(f"line {line}: {reason}" if line is not None else reason)
        self.reason = reason
        self.line = line


@dataclass(slots=True)
class Origin:
    """``o=`` (RFC 8866 §5.2)."""

    username: str
    session_id: int
    session_version: int
    nettype: str
    addrtype: str
    address: str

    def __str__(self) -> str:
        return (
            f"{self.username} {self.session_id} {self.session_version} "
            f"{self.nettype} {self.addrtype} {self.address}"
        )


@dataclass(slots=True)
class Connection:
    """``c=`` (RFC 8866 §5.7). ``ttl_count`` is a multicast ``/ttl[/count]`` suffix, kept as
    text without its leading slash."""

    nettype: str
    addrtype: str
    address: str
    ttl_count: str | None = None

    def __str__(self) -> str:
        suffix = f"/{self.ttl_count}" if self.ttl_count is not None else ""
        return f"{self.nettype} {self.addrtype} {self.address}{suffix}"


@dataclass(frozen=True, slots=True)
class RtpMap:
    """``a=rtpmap:<pt> <encoding>/<clock rate>[/<channels>]`` (RFC 8866 §6.6)."""

    payload_type: int
    encoding: str
    clock_rate: int
    channels: int | None = None

    def __str__(self) -> str:
        channels = f"/{self.channels}" if self.channels is not None else ""
        return f"{self.payload_type} {self.encoding}/{self.clock_rate}{channels}"


Attribute = tuple[str, str | None]


class _AttributeList:
    """Ordered ``a=`` lines: ``(name, value)``, value ``None`` for a property attribute."""

    __slots__ = ()
    attributes: list[Attribute]

    def attribute_values(self, name: str) -> list[str | None]:
        return [value for attr, value in self.attributes if attr == name]

    def has_attribute(self, name: str) -> bool:
        return any(attr == name for attr, _ in self.attributes)

    def add_attribute(self, name: str, value: str | None = None) -> None:
        self.attributes.append((name, value))

    def set_attribute(self, name: str, value: str | None = None) -> None:
        """Replace the first ``a=name`` in place (dropping any others), or append one."""
        self._replace(frozenset((name,)), (name, value))

    def _replace(self, names: frozenset[str], new: Attribute) -> None:
        out = [attr for attr in self.attributes if attr[0] not in names]
        at = next((i for i, attr in enumerate(self.attributes) if attr[0] in names), None)
        # nothing before the first match is dropped, so its index is the same in ``out``
        out.insert(len(out) if at is None else at, new)
        self.attributes[:] = out

    def remove_attribute(self, name: str) -> int:
        """Remove every ``a=name``; return how many there were."""
        before = len(self.attributes)
        self.attributes[:] = [attr for attr in self.attributes if attr[0] != name]
        return before - len(self.attributes)

    def explicit_direction(self) -> str | None:
        """The direction attribute at this level, if any (RFC 8866 §6.7)."""
        for attr, _ in self.attributes:
            if attr in DIRECTIONS:
                return attr
        return None

    def set_direction(self, direction: str) -> None:
        """Replace any direction attribute by ``direction`` (in place of the first one)."""
        if direction not in DIRECTIONS:
            raise ValueError(f"unknown direction {direction!r}")
        self._replace(DIRECTIONS, (direction, None))


@dataclass(slots=True)
class MediaDescription(_AttributeList):
    """One ``m=`` section (RFC 8866 §5.14) and the lines under it."""

    media: str
    port: int
    proto: str
    formats: list[str]
    port_count: int | None = None
    information: str | None = None
    connection: Connection | None = None
    bandwidths: list[str] = field(default_factory=list)
    key: str | None = None
    unknown: list[tuple[str, str]] = field(default_factory=list)
    attributes: list[Attribute] = field(default_factory=list)

    def copy(self) -> MediaDescription:
        """A copy sharing nothing mutable (``copy.deepcopy`` costs ~10x more: calls copy SDP on
        every offer and answer)."""
        connection = self.connection
        return replace(
            self,
            formats=list(self.formats),
            connection=None if connection is None else replace(connection),
            bandwidths=list(self.bandwidths),
            unknown=list(self.unknown),
            attributes=list(self.attributes),
        )

    def rtpmap(self) -> dict[str, RtpMap]:
        """Format → rtpmap, from ``a=rtpmap`` only (static payload types without one are not
        listed; see ``media.offer_answer`` for the RFC 3551 table). The first line wins."""
        out: dict[str, RtpMap] = {}
        for value in self.attribute_values("rtpmap"):
            rtpmap = parse_rtpmap(value or "")
            out.setdefault(str(rtpmap.payload_type), rtpmap)
        return out

    def fmtp(self) -> dict[str, str]:
        """Format → parameter text of ``a=fmtp:<format> <params>`` (RFC 8866 §6.15)."""
        out: dict[str, str] = {}
        for value in self.attribute_values("fmtp"):
            fmt, _, params = (value or "").partition(" ")
            out.setdefault(fmt, params)
        return out

    @property
    def ptime(self) -> int | None:
        """``a=ptime`` in whole milliseconds (RFC 8866 §6.4 allows a decimal; it is rounded)."""
        values = self.attribute_values("ptime")
        return _parse_ptime(values[0] or "") if values else None

    @property
    def direction(self) -> str:
        """This section's own direction, ``sendrecv`` when it has none. Use
        :func:`effective_direction` to let a session-level attribute apply."""
        return self.explicit_direction() or "sendrecv"

    @property
    def rtcp(self) -> tuple[int, Connection | None] | None:
        """``a=rtcp:<port> [<nettype> <addrtype> <address>]`` (RFC 3605 §2.1)."""
        values = self.attribute_values("rtcp")
        return _parse_rtcp(values[0] or "") if values else None

    @property
    def rtcp_mux(self) -> bool:
        """``a=rtcp-mux``: RTP and RTCP share the port (RFC 5761 §5.1.1)."""
        return self.has_attribute("rtcp-mux")

    def m_line(self) -> str:
        count = f"/{self.port_count}" if self.port_count is not None else ""
        fmts = "".join(f" {fmt}" for fmt in self.formats)
        return f"{self.media} {self.port}{count} {self.proto}{fmts}"


@dataclass(slots=True)
class SessionDescription(_AttributeList):
    """A whole session description (RFC 8866 §5). ``timing`` holds the ``t=``/``r=``/``z=``
    lines as written (``"t=0 0"``); ``unknown`` the lines of types we do not know."""

    origin: Origin
    session_name: str
    version: int = 0
    information: str | None = None
    uri: str | None = None
    emails: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    connection: Connection | None = None
    bandwidths: list[str] = field(default_factory=list)
    timing: list[str] = field(default_factory=list)
    key: str | None = None
    unknown: list[tuple[str, str]] = field(default_factory=list)
    attributes: list[Attribute] = field(default_factory=list)
    media: list[MediaDescription] = field(default_factory=list)

    def copy(self) -> SessionDescription:
        """A copy sharing nothing mutable (see ``MediaDescription.copy``)."""
        connection = self.connection
        return replace(
            self,
            origin=replace(self.origin),
            emails=list(self.emails),
            phones=list(self.phones),
            connection=None if connection is None else replace(connection),
            bandwidths=list(self.bandwidths),
            timing=list(self.timing),
            unknown=list(self.unknown),
            attributes=list(self.attributes),
            media=[m.copy() for m in self.media],
        )

    def lines(self) -> list[tuple[str, str]]:
        """``(type, value)`` in RFC 8866 §5 order: v o s i u e p c b t r z k a, then each m=
        section as m i c b k a. Lines of unknown type go just before their level's a= lines."""
        out: list[tuple[str, str]] = [("v", str(self.version)), ("o", str(self.origin))]
        out.append(("s", self.session_name))
        _opt(out, "i", self.information)
        _opt(out, "u", self.uri)
        out += [("e", v) for v in self.emails] + [("p", v) for v in self.phones]
        _opt(out, "c", self.connection)
        out += [("b", v) for v in self.bandwidths]
        out += [(line[:1], line[2:]) for line in self.timing]
        _opt(out, "k", self.key)
        out += self.unknown
        out += [("a", _attr_text(attr)) for attr in self.attributes]
        for m in self.media:
            out.append(("m", m.m_line()))
            _opt(out, "i", m.information)
            _opt(out, "c", m.connection)
            out += [("b", v) for v in m.bandwidths]
            _opt(out, "k", m.key)
            out += m.unknown
            out += [("a", _attr_text(attr)) for attr in m.attributes]
        return out

    def to_bytes(self) -> bytes:
        """CRLF-terminated lines (RFC 8866 §5). A value holding CR, LF or NUL is refused, so a
        rewritten field can never inject lines."""
        text = []
        for kind, value in self.lines():
            if "\r" in value or "\n" in value or "\x00" in value:
                raise SdpError(f"{kind}= value contains CR, LF or NUL")
            text.append(f"{kind}={value}\r\n")
        return "".join(text).encode("utf-8")


def _opt(out: list[tuple[str, str]], kind: str, value: object | None) -> None:
    if value is not None:
        out.append((kind, str(value)))


def _attr_text(attr: Attribute) -> str:
    return attr[0] if attr[1] is None else f"{attr[0]}:{attr[1]}"


def effective_direction(session: SessionDescription, media: MediaDescription) -> str:
    """The media's direction attribute, else the session's, else sendrecv (RFC 8866 §6.7)."""
    return media.explicit_direction() or session.explicit_direction() or "sendrecv"


def connection_for(session: SessionDescription, media: MediaDescription) -> Connection | None:
    """The media-level ``c=`` if present, else the session-level one (RFC 8866 §5.7)."""
    return media.connection if media.connection is not None else session.connection


# --- field parsers: they raise SdpError without a line; parse_sdp adds it -------------------


def _uint(text: str, what: str, low: int, high: int) -> int:
    if not _DIGITS_RE.fullmatch(text):
        raise SdpError(f"{what} is not a number")
    number = int(text)
    if not low <= number <= high:
        raise SdpError(f"{what} {number} out of range {low}-{high}")
    return number


def check_address(addrtype: str, address: str, what: str = "address") -> None:
    """IP4/IP6 literals must be valid; anything else must look like a host name (RFC 8866
    §5.7, RFC 5118 §4.4). Nothing is resolved."""
    if addrtype == "IP4" and re.fullmatch(r"[0-9.]+", address):
        try:
            ipaddress.IPv4Address(address)
        except ValueError:
            raise SdpError(f"invalid IPv4 {what} {address!r}") from None
    elif addrtype == "IP6" and ":" in address:
        try:
            ipaddress.IPv6Address(address)
        except ValueError:
            raise SdpError(f"invalid IPv6 {what} {address!r}") from None
    elif len(address) > 255 or not _FQDN_RE.fullmatch(address):
        raise SdpError(f"invalid {what} {address!r}")


def parse_connection(value: str, what: str = "c= line") -> Connection:
    parts = value.split(" ")
    if len(parts) != 3 or not _TOKEN_RE.fullmatch(parts[0]) or not _TOKEN_RE.fullmatch(parts[1]):
        raise SdpError(f"malformed {what}")
    address, slash, suffix = parts[2].partition("/")
    if slash and not re.fullmatch(r"[0-9]{1,5}(?:/[0-9]{1,5})?", suffix):
        raise SdpError(f"malformed {what}: bad multicast suffix")
    check_address(parts[1], address, "connection address")
    return Connection(parts[0], parts[1], address, suffix if slash else None)


def _parse_origin(value: str) -> Origin:
    parts = value.split(" ")
    if len(parts) != 6 or not all(parts):
        raise SdpError("malformed o= line")
    username, sess_id, sess_version, nettype, addrtype, address = parts
    for text in (sess_id, sess_version):
        if not _DIGITS_RE.fullmatch(text) or int(text) >= _UINT64:
            raise SdpError("malformed o= line: session id and version must be 64-bit numbers")
    if not _TOKEN_RE.fullmatch(nettype) or not _TOKEN_RE.fullmatch(addrtype):
        raise SdpError("malformed o= line")
    check_address(addrtype, address, "origin address")
    return Origin(username, int(sess_id), int(sess_version), nettype, addrtype, address)


def is_rtp_proto(proto: str) -> bool:
    """RTP/AVP, RTP/SAVPF, UDP/TLS/RTP/SAVPF…: formats are RTP payload types."""
    return "RTP/" in proto


def _parse_media(value: str) -> MediaDescription:
    parts = value.split(" ")
    if len(parts) < 3 or not all(parts):
        raise SdpError("malformed m= line")
    media, port_text, proto, formats = parts[0], parts[1], parts[2], parts[3:]
    if not _TOKEN_RE.fullmatch(media) or not _PROTO_RE.fullmatch(proto):
        raise SdpError("malformed m= line")
    port_text, slash, count_text = port_text.partition("/")
    port = _uint(port_text, "m= port", 0, 65535)
    count = _uint(count_text, "m= port count", 1, 65535) if slash else None
    # RFC 3264 §6: a rejected stream keeps its formats, but tolerate peers that drop them.
    if not formats and port != 0:
        raise SdpError("m= line has no formats")
    for fmt in formats:
        if is_rtp_proto(proto):
            _uint(fmt, "payload type", 0, 127)
        elif not _TOKEN_RE.fullmatch(fmt):
            raise SdpError(f"malformed m= format {fmt!r}")
    return MediaDescription(media, port, proto, formats, port_count=count)


def parse_rtpmap(value: str) -> RtpMap:
    match = _RTPMAP_RE.fullmatch(value)
    if not match or not _TOKEN_RE.fullmatch(match[2]):
        raise SdpError("malformed a=rtpmap")
    pt = _uint(match[1], "rtpmap payload type", 0, 127)
    clock = _uint(match[3], "rtpmap clock rate", 1, 10**9)
    channels = _uint(match[4], "rtpmap channels", 1, 255) if match[4] else None
    return RtpMap(pt, match[2], clock, channels)


def _parse_ptime(value: str) -> int:
    if not _NUMBER_RE.fullmatch(value) or float(value) <= 0:
        raise SdpError("malformed a=ptime")
    return max(1, round(float(value)))


def _parse_rtcp(value: str) -> tuple[int, Connection | None]:
    port_text, space, rest = value.partition(" ")
    port = _uint(port_text, "a=rtcp port", 0, 65535)
    return port, parse_connection(rest, "a=rtcp address") if space else None


def _parse_attribute(value: str) -> Attribute:
    name, colon, rest = value.partition(":")
    if not _TOKEN_RE.fullmatch(name):
        raise SdpError("malformed a= line: bad attribute name")
    attr: Attribute = (name, rest if colon else None)
    # Check the attributes whose numbers we use, so faults carry a line number.
    if name == "rtpmap":
        parse_rtpmap(rest)
    elif name == "fmtp" and not _TOKEN_RE.fullmatch(rest.partition(" ")[0]):
        raise SdpError("malformed a=fmtp")
    elif name in ("ptime", "maxptime"):
        _parse_ptime(rest)
    elif name == "rtcp":
        _parse_rtcp(rest)
    elif (name in DIRECTIONS or name == "rtcp-mux") and colon:
        raise SdpError(f"a={name} takes no value")
    return attr


_SESSION_ONLY = frozenset("vosueptrz")
_ONCE = frozenset("osiuck")  # at most one per level (RFC 8866 §5)


def _split_lines(data: bytes) -> list[str]:
    if len(data) > MAX_SDP_BYTES:
        raise SdpError(f"SDP larger than {MAX_SDP_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SdpError("not UTF-8", data[: exc.start].count(b"\n") + 1) from None
    # RFC 8866 §5: lines end in CRLF, but parsers should accept a bare LF too.
    lines = [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]
    while lines and not lines[-1]:
        lines.pop()  # the final line end (and any blank lines after it)
    if not lines:
        raise SdpError("empty SDP")
    if len(lines) > MAX_SDP_LINES:
        raise SdpError(f"more than {MAX_SDP_LINES} lines")
    return lines


def parse_sdp(data: bytes) -> SessionDescription:
    """Parse a session description; raise :class:`SdpError` naming the line and the fault."""
    lines = _split_lines(data)
    origin: Origin | None = None
    name: str | None = None
    sd = SessionDescription(Origin("", 0, 0, "", "", ""), "")
    media: MediaDescription | None = None
    seen: set[str] = set()  # single-occurrence line types at the current level
    for lineno, line in enumerate(lines, 1):
        try:
            if len(line) < 2 or line[1] != "=" or not (line[0].isascii() and line[0].isalpha()):
                raise SdpError("expected <type>=<value>")
            kind, value = line[0], line[2:]
            if "\r" in value or "\x00" in value:
                raise SdpError("stray CR or NUL in line")
            if lineno == 1:
                if kind != "v":
                    raise SdpError("SDP must start with a v= line")
                if value != "0":
                    raise SdpError(f"unsupported SDP version {value!r}")
                continue
            if kind in _ONCE:
                if kind in seen:
                    where = "media description" if media else "session"
                    raise SdpError(f"more than one {kind}= line in {where}")
                seen.add(kind)
            if kind == "m":
                if len(sd.media) >= MAX_MEDIA_SECTIONS:
                    raise SdpError(f"more than {MAX_MEDIA_SECTIONS} m= sections")
                media = _parse_media(value)
                sd.media.append(media)
                seen = set()
            elif kind == "a":
                attr, target = _parse_attribute(value), (media or sd)
                other = target.explicit_direction() if attr[0] in DIRECTIONS else None
                if other not in (None, attr[0]):  # RFC 8866 §6.7: one direction per level
                    raise SdpError(f"conflicting direction attributes {other} and {attr[0]}")
                target.attributes.append(attr)
            elif kind == "c":
                (media or sd).connection = parse_connection(value)
            elif kind == "b":
                if not _BANDWIDTH_RE.fullmatch(value):
                    raise SdpError("malformed b= line")
                (media or sd).bandwidths.append(value)
            elif kind == "i":
                (media or sd).information = value
            elif kind == "k":
                (media or sd).key = value
            elif kind in _SESSION_ONLY:
                if media is not None:
                    raise SdpError(f"{kind}= line inside a media description")
                if kind == "v":
                    raise SdpError("more than one v= line")
                if kind == "o":
                    origin = _parse_origin(value)
                elif kind == "s":
                    name = value  # RFC 8866 §5.3 wants "s= " or "s=-"; an empty one is tolerated
                elif kind == "u":
                    sd.uri = value
                elif kind == "e":
                    sd.emails.append(value)
                elif kind == "p":
                    sd.phones.append(value)
                elif kind == "t":
                    if not _TIME_RE.fullmatch(value):
                        raise SdpError("malformed t= line")
                    sd.timing.append(line)
                else:  # r= and z= belong to the t= before them (RFC 8866 §5.9-5.11)
                    if not sd.timing:
                        raise SdpError(f"{kind}= line before any t= line")
                    sd.timing.append(line)
            else:
                (media or sd).unknown.append((kind, value))
        except SdpError as exc:
            if exc.line is None:
                raise SdpError(exc.reason, lineno) from None
            raise
    if origin is None:
        raise SdpError("missing o= line")
    if name is None:
        raise SdpError("missing s= line")
    sd.origin, sd.session_name = origin, name
    return sd
