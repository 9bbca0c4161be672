"""SIP, SIPS and tel URIs (RFC 3261 §19.1, RFC 3966) and SIP URI comparison (§19.1.4)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from urllib.parse import unquote_to_bytes

from sip.errors import SipParseError

_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+\-.]*):(.*)", re.S)
# RFC 3261 §25.1 user/password/param/header characters: unreserved, escaped, and the listed
# marks. A '%' must start an escape.
_USER_RE = re.compile(r"(?:[A-Za-z0-9\-_.!~*'()&=+$,;?/]|%[0-9A-Fa-f]{2})+")
_PASSWORD_RE = re.compile(r"(?:[A-Za-z0-9\-_.!~*'()&=+$,]|%[0-9A-Fa-f]{2})*")
_PARAM_RE = re.compile(r"(?:[A-Za-z0-9\-_.!~*'()\[\]/:&+$]|%[0-9A-Fa-f]{2})+")
_HEADER_RE = re.compile(r"(?:[A-Za-z0-9\-_.!~*'()\[\]/?:+$]|%[0-9A-Fa-f]{2})*")
_HOSTNAME_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9\-.]*[A-Za-z0-9])?\.?")
# RFC 3261 §25.1: IPv4address = 1*3DIGIT "." ..., ASCII digits only (``\d`` admits others).
_IPV4_RE = re.compile(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}")
_IPV6_RE = re.compile(r"\[([0-9A-Fa-f:.]+)\]")
_TEL_RE = re.compile(r"\+?[0-9A-Fa-f*#().\-pPwW]+")


def _valid_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


# Hosts repeat (the edge's domain, its address, phones' addresses): each valid one is checked
# once. Bounded, so a flood of invented names cannot grow it.
_HOSTS: dict[str, str] = {}
_HOSTS_LIMIT = 4096


def parse_host(text: str) -> str:
    """Validate a host (hostname, IPv4address, IPv6reference; RFC 3261 §25.1), lower-cased."""
    host = _HOSTS.get(text)
    if host is None:
        host = _check_host(text)
        if len(_HOSTS) < _HOSTS_LIMIT:
            _HOSTS[text] = host
    return host


def _check_host(text: str) -> str:
    if text.startswith("["):
        match = _IPV6_RE.fullmatch(text)
        if match is None or not _valid_ipv6(match.group(1)):
            raise SipParseError("Malformed IPv6 reference")
        return text.lower()
    if _IPV4_RE.fullmatch(text):
        if any(int(octet) > 255 for octet in text.split(".")):
            raise SipParseError("Malformed IPv4 address")
        return text
    if not _HOSTNAME_RE.fullmatch(text):
        raise SipParseError("Malformed host")
    return text.lower()


def split_hostport(text: str) -> tuple[str, int | None]:
    """``host[:port]`` -> (host, port); an IPv6 reference keeps its brackets."""
    if text.startswith("["):
        close = text.find("]")
        host, rest = text[: close + 1], text[close + 1 :]
        if close < 0 or (rest and not rest.startswith(":")):
            raise SipParseError("Malformed IPv6 reference")
        port_text = rest[1:] if rest else None
    else:
        host, sep, port_text_ = text.partition(":")
        port_text = port_text_ if sep else None
    port: int | None = None
    if port_text is not None:
        # port = 1*DIGIT (RFC 3261 §25.1). int() raises a bare ValueError past 4300 digits
        # (zeros included), so it only sees the significant digits, and only a few of them.
        if (
            not port_text.isdigit()
            or not port_text.isascii()
            or len(port_text.lstrip("0")) > 5
            or int(port_text.lstrip("0") or "0") > 65535
        ):
            raise SipParseError("Malformed port")
        port = int(port_text.lstrip("0") or "0")
    return parse_host(host), port


def parse_params(text: str, pattern: re.Pattern[str] = _PARAM_RE) -> dict[str, str | None]:
    """``;a=b;c`` (leading ';' already removed) -> ordered dict, names lower-cased."""
    params: dict[str, str | None] = {}
    for item in text.split(";"):
        name, sep, value = item.partition("=")
        if not name or not pattern.fullmatch(name) or (sep and not pattern.fullmatch(value)):
            raise SipParseError("Malformed URI parameter")
        params[name.lower()] = value if sep else None
    return params


@dataclass(slots=True)
class SipUri:
    scheme: str  # "sip" or "sips"
    host: str
    user: str | None = None
    password: str | None = None
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def transport(self) -> str | None:
        value = self.params.get("transport")
        return value.lower() if value else None

    def aor(self) -> str:
        """The address-of-record form: scheme, user and host only (RFC 3261 §10.3 step 5)."""
        user = f"{_unescape(self.user)}@" if self.user is not None else ""
        return f"{self.scheme}:{user}{self.host}"

    def __str__(self) -> str:
        text = self.scheme + ":"
        if self.user is not None:
            text += self.user
            if self.password is not None:
                text += ":" + self.password
            text += "@"
        text += self.host
        if self.port is not None:
            text += f":{self.port}"
        for name, value in self.params.items():
            text += f";{name}" if value is None else f";{name}={value}"
        if self.headers:
            text += "?" + "&".join(f"{k}={v}" for k, v in self.headers.items())
        return text


@dataclass(slots=True)
class TelUri:
    number: str
    params: dict[str, str | None] = field(default_factory=dict)

    def __str__(self) -> str:
        params = "".join(f";{k}" if v is None else f";{k}={v}" for k, v in self.params.items())
        return f"tel:{self.number}{params}"


@dataclass(slots=True)
class AbsoluteUri:
    """A URI of a scheme we do not route (kept so that callers can answer 416)."""

    scheme: str
    rest: str

    def __str__(self) -> str:
        return f"{self.scheme}:{self.rest}"


Uri = SipUri | TelUri | AbsoluteUri


def parse_uri(text: str) -> Uri:
    """Parse a URI; ``SipParseError`` names the fault when it is malformed."""
    match = _SCHEME_RE.fullmatch(text)
    if match is None:
        raise SipParseError("Malformed URI")
    scheme = match.group(1).lower()
    rest = match.group(2)
    if scheme in ("sip", "sips"):
        return _parse_sip(scheme, rest)
    if scheme == "tel":
        number, semi, params = rest.partition(";")
        if not _TEL_RE.fullmatch(number):
            raise SipParseError("Malformed tel URI")
        # RFC 3966 §3: every ";" starts a parameter, so "tel:123;" is malformed (as in SIP URIs).
        return TelUri(number, parse_params(params) if semi else {})
    if not rest or any(c in rest for c in ' \t\r\n<>"'):
        raise SipParseError("Malformed URI")
    return AbsoluteUri(scheme, rest)


def _parse_sip(scheme: str, rest: str) -> SipUri:
    # RFC 3261 §19.1.1: sip:user:password@host:port;uri-parameters?headers
    # The user part may hold '?', ';' and ',' (RFC 4475 §3.1.1.2); '@' may not appear
    # unescaped anywhere else, so the last '@' ends the userinfo.
    at = rest.rfind("@")
    user: str | None = None
    password: str | None = None
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
        user, colon, pw = userinfo.partition(":")
        if not _USER_RE.fullmatch(user):
            raise SipParseError("Malformed URI user part")
        if colon:
            if not _PASSWORD_RE.fullmatch(pw):
                raise SipParseError("Malformed URI password")
            password = pw
    rest, qmark, header_text = rest.partition("?")
    hostport, semi, param_text = rest.partition(";")
    host, port = split_hostport(hostport)
    params = parse_params(param_text) if semi else {}
    headers: dict[str, str] = {}
    if qmark:
        for item in header_text.split("&"):
            name, eq, value = item.partition("=")
            if not name or not eq or not _HEADER_RE.fullmatch(name + value):
                raise SipParseError("Malformed URI header")
            headers[name] = value
    return SipUri(scheme, host, user, password, port, params, headers)


def _unescape(text: str | None) -> str | None:
    # Fully unescaped text for an address-of-record key; keep NULs (RFC 4475 §3.1.1.4).
    if text is None or "%" not in text:
        return text
    return unquote_to_bytes(text).decode("utf-8", "surrogateescape")


# RFC 3261 §19.1.4: these parameters must match when either URI has them.
_SIGNIFICANT_PARAMS = ("user", "ttl", "method", "maddr", "transport")


def uri_equal(a: Uri, b: Uri) -> bool:
    """URI equality per RFC 3261 §19.1.4 (SIP/SIPS) and RFC 3966 §4 (tel, simplified)."""
    if isinstance(a, SipUri) and isinstance(b, SipUri):
        if a.scheme != b.scheme or a.host != b.host or a.port != b.port:
            return False
        if _compare_form(a.user) != _compare_form(b.user):
            return False
        if _compare_form(a.password) != _compare_form(b.password):
            return False
        # §19.1.4: escapes count in parameter names too (";%6Cr" is ";lr").
        pa = _params_norm(a.params)
        pb = _params_norm(b.params)
        for name in _SIGNIFICANT_PARAMS:
            if pa.get(name) != pb.get(name):
                return False
        for name in pa.keys() & pb.keys():
            if pa[name] != pb[name]:
                return False
        ha = {(_compare_form(k) or "").lower(): _compare_form(v) for k, v in a.headers.items()}
        hb = {(_compare_form(k) or "").lower(): _compare_form(v) for k, v in b.headers.items()}
        return ha == hb
    if isinstance(a, TelUri) and isinstance(b, TelUri):
        strip = str.maketrans("", "", "-.()")
        return a.number.translate(strip) == b.number.translate(strip) and {
            k: (v or "").lower() for k, v in a.params.items()
        } == {k: (v or "").lower() for k, v in b.params.items()}
    if isinstance(a, AbsoluteUri) and isinstance(b, AbsoluteUri):
        return a.scheme == b.scheme and a.rest == b.rest
    return False


def _params_norm(params: dict[str, str | None]) -> dict[str, str]:
    """Parameters in comparison form: names and values case-folded, a valueless one as ''."""
    return {
        (_compare_form(k) or "").lower(): (_compare_form(v) or "").lower()
        for k, v in params.items()
    }


# RFC 2396 §2.2 reserved characters, and '%' itself: RFC 3261 §19.1.4 makes only the other
# characters equal to their "%" HEX HEX escape, so these stay escaped for comparison.
_KEEP_ESCAPED = frozenset(";/?:@&=+$,%")
_ESCAPE_RE = re.compile(r"%([0-9A-Fa-f]{2})")


def _compare_form(text: str | None) -> str | None:
    """``text`` with every escape of a non-reserved character resolved (RFC 3261 §19.1.4).

    "sip:%61lice@h" equals "sip:alice@h", but "sip:a%3Bb@h" is not "sip:a;b@h". NULs are kept
    (RFC 4475 §3.1.1.4).
    """
    if text is None or "%" not in text:
        return text

    def resolve(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return "%" + match.group(1).upper() if char in _KEEP_ESCAPED else char

    return _ESCAPE_RE.sub(resolve, text)
