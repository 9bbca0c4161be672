"""Typed views of SIP header field values (RFC 3261 §20, grammar in §25.1).

Each ``parse_*`` takes one field value (already unfolded) and raises ``SipParseError`` naming
the header when it is malformed. Values keep enough of their text to be written back unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sip.errors import SipParseError
from sip.parser import TOKEN_RE
from sip.uri import Uri, parse_host, parse_uri, split_hostport

MAX_CSEQ = 2**32 - 1  # RFC 3261 §8.1.1.5: a 32-bit unsigned integer
BRANCH_COOKIE = "z9hG4bK"  # RFC 3261 §8.1.1.7

_SENT_PROTOCOL_RE = re.compile(
    r"[ \t]*([A-Za-z0-9\-.!%*_+`'~]+)[ \t]*/[ \t]*([A-Za-z0-9\-.!%*_+`'~]+)[ \t]*/[ \t]*"
    r"([A-Za-z0-9\-.!%*_+`'~]+)[ \t]+(.*)",
    re.S,
)
_COLON_LWS_RE = re.compile(r"[ \t]*:[ \t]*")


def split_params(text: str, what: str) -> dict[str, str | None]:
    """``a=b ; c ; d="x;y"`` (text after the first ';') -> ordered dict, names lower-cased.

    generic-param, RFC 3261 §25.1; an empty item (``;;``) is malformed (RFC 4475 §3.1.2.1).
    """
    params: dict[str, str | None] = {}
    for item in _split_semicolons(text):
        name, eq, value = item.partition("=")
        name = name.strip()
        value = value.strip()
        if not TOKEN_RE.fullmatch(name):
            raise SipParseError(f"Malformed {what} parameter")
        if eq:
            if value.startswith('"'):
                end = quoted_string_end(value, 0)
                if end != len(value):
                    raise SipParseError(f"Malformed {what} parameter")
            elif not value or not _gen_value_ok(value):
                raise SipParseError(f"Malformed {what} parameter")
            params[name.lower()] = value
        else:
            params[name.lower()] = None
    return params


# gen-value = token / host / quoted-string; host adds ':' '[' ']' for IPv6 references.
_GEN_VALUE_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~:\[\]]+")


def _gen_value_ok(value: str) -> bool:
    return _GEN_VALUE_RE.fullmatch(value) is not None


def _split_semicolons(text: str) -> list[str]:
    if '"' not in text:
        return text.split(";")
    items: list[str] = []
    start = 0
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == '"':
            i = quoted_string_end(text, i)
            continue
        if ch == ";":
            items.append(text[start:i])
            start = i + 1
        i += 1
    items.append(text[start:])
    return items


def quoted_string_end(text: str, start: int) -> int:
    """Index just past the quoted-string that opens at ``start`` (quoted-pair aware, §25.1)."""
    i = start + 1
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == '"':
            return i + 1
        i += 1
    raise SipParseError("Unterminated quoted string")


def unquote(text: str) -> str:
    """The content of a quoted-string, quoted-pairs resolved."""
    inner = text[1:-1]
    return re.sub(r"\\(.)", r"\1", inner, flags=re.S) if "\\" in inner else inner


def _params_text(params: dict[str, str | None]) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())


@dataclass(slots=True)
class Via:
    transport: str  # upper case: UDP, TCP, TLS, WS, WSS, SCTP or an extension token
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    protocol: str = "SIP/2.0"

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.protocol}/{self.transport} {self.host}{port}{_params_text(self.params)}"


def parse_via(value: str) -> Via:
    """One via-parm (RFC 3261 §20.42); the caller splits the list first."""
    match = _SENT_PROTOCOL_RE.fullmatch(value)
    if match is None:
        raise SipParseError("Malformed Via")
    name, version, transport, rest = match.groups()
    sent_by, semi, param_text = rest.partition(";")
    sent_by = _COLON_LWS_RE.sub(":", sent_by.strip())
    if not sent_by:
        raise SipParseError("Malformed Via")
    try:
        host, port = split_hostport(sent_by)
        params = split_params(param_text, "Via") if semi else {}
        received = params.get("received")
        if received is not None:
            # RFC 3261 §20.42 / RFC 5118 §4.5: an IPv4address or IPv6address (no brackets).
            # Brackets are tolerated: implementations send them (RFC 5118 §4.5).
            bracketed = received.startswith("[") or received.count(":") < 2
            parse_host(received if bracketed else f"[{received}]")
    except SipParseError as exc:
        raise SipParseError("Malformed Via") from exc
    return Via(transport.upper(), host, port, params, f"{name.upper()}/{version}")


@dataclass(slots=True)
class NameAddr:
    """A From/To/Contact/Route value: optional display name, URI text, header parameters."""

    uri: str
    display: str | None = None  # as written: a quoted-string or bare tokens
    params: dict[str, str | None] = field(default_factory=dict)
    _parsed: Uri | None = field(default=None, repr=False, compare=False)

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    def parsed_uri(self) -> Uri:
        """The URI, parsed once (``parse_name_addr`` already did it while checking)."""
        if self._parsed is None:
            self._parsed = parse_uri(self.uri)
        return self._parsed

    def __str__(self) -> str:
        display = f"{self.display} " if self.display else ""
        return f"{display}<{self.uri}>{_params_text(self.params)}"


def parse_name_addr(value: str, what: str) -> NameAddr:
    """``(name-addr / addr-spec) *(SEMI param)`` (RFC 3261 §20.10, §20.20, §20.39).

    ``what`` names the header in error reasons. The URI is checked with ``sip.uri``.
    """
    text = value.strip()
    display: str | None = None
    if text.startswith('"'):
        try:
            end = quoted_string_end(text, 0)
        except SipParseError as exc:
            raise SipParseError(f"Unterminated quoted string in {what}") from exc
        display = text[:end]
        text = text[end:].lstrip()
        if not text.startswith("<"):
            raise SipParseError(f"Malformed {what}")
    lt = text.find("<")
    if lt >= 0:
        words = text[:lt].split()
        # display-name = *(token LWS) / quoted-string; the missing LWS before '<' is a known
        # grammar bug that elements accept (RFC 4475 §3.1.1.6).
        if any(not TOKEN_RE.fullmatch(w) for w in words):
            raise SipParseError(f"Malformed display name in {what}")
        if words:
            display = " ".join(words)
        gt = text.find(">", lt)
        if gt < 0:
            raise SipParseError(f"Malformed {what}: missing '>'")
        uri = text[lt + 1 : gt]
        rest = text[gt + 1 :].strip()
        if rest and not rest.startswith(";"):
            raise SipParseError(f"Malformed {what}")
        has_params = bool(rest)
        param_text = rest[1:]
    else:
        # addr-spec form: the URI ends at the first ';', and those are header parameters
        # (RFC 3261 §20.10, RFC 4475 §3.3.12); a URI with ',', '?' or ';' needs <>.
        uri, semi, param_text = text.partition(";")
        uri = uri.strip()
        if "?" in uri or "," in uri:
            # RFC 3261 §20: the reason names the rule broken (not only "headers" need <>).
            raise SipParseError(f"Malformed {what}: a URI with ',' or '?' must be enclosed in <>")
        if " " in uri:
            raise SipParseError(f"Malformed {what} URI")  # no LWS inside a URI (§25.1)
        has_params = bool(semi)
    if not uri or uri != uri.strip():
        raise SipParseError(f"Malformed {what} URI")
    try:
        parsed = parse_uri(uri)
    except SipParseError as exc:
        raise SipParseError(f"Malformed {what} URI") from exc
    params = split_params(param_text, what) if has_params else {}
    return NameAddr(uri, display, params, parsed)


def parse_cseq(value: str) -> tuple[int, str]:
    """CSeq = 1*DIGIT LWS Method (RFC 3261 §20.16)."""
    parts = value.split()
    if len(parts) != 2 or not parts[0].isdigit() or not parts[0].isascii():
        raise SipParseError("Malformed CSeq")
    # Leading zeros are legal (RFC 4475 §3.1.1.1). int() raises a bare ValueError past 4300
    # digits (zeros included), so it only sees the significant digits, and only a few of them.
    if len(parts[0].lstrip("0")) > len(str(MAX_CSEQ)):
        raise SipParseError("CSeq out of range")
    number = int(parts[0].lstrip("0") or "0")
    if number > MAX_CSEQ:
        raise SipParseError("CSeq out of range")
    if not TOKEN_RE.fullmatch(parts[1]):
        raise SipParseError("Malformed CSeq")
    return number, parts[1]


def parse_uint(value: str, what: str, maximum: int) -> int:
    """A non-negative decimal field (Expires, Max-Forwards, Min-Expires…) within ``maximum``."""
    text = value.strip()
    if not text.isdigit() or not text.isascii():
        raise SipParseError(f"Malformed {what}")
    # delta-seconds = 1*DIGIT (RFC 3261 §25.1). int() raises a bare ValueError past 4300 digits
    # (zeros included), so it only sees the significant digits, and only a few of them.
    if len(text.lstrip("0")) > len(str(maximum)):
        raise SipParseError(f"{what} out of range")
    number = int(text.lstrip("0") or "0")
    if number > maximum:
        raise SipParseError(f"{what} out of range")
    return number
