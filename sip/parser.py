"""SIP message syntax parser (RFC 3261 §7, §25).

``parse_message`` turns the bytes of one message into a ``Request`` or ``Response``; it checks
syntax only (start line, header field lines, framing). Whether the fields make sense together
is ``sip.validate``'s job. The only exception that escapes is ``SipParseError``.
"""

from __future__ import annotations

import re

from sip.errors import SipParseError
from sip.message import CANONICAL_NAMES, Headers, Request, Response, header_key

MAX_HEADER_FIELDS = 256
MAX_MESSAGE_SIZE = 65535

# RFC 3261 §25.1: token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
# RFC 3261 §25.1: SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT, DIGIT being ASCII only (``\d``
# would admit other scripts' digits and turn a malformed line into a 505).
_VERSION_RE = re.compile(r"SIP/([0-9]+)\.([0-9]+)", re.IGNORECASE)
_STATUS_RE = re.compile(r"[1-6][0-9][0-9]")
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*:")


def _split_head(data: bytes) -> tuple[bytes, bytes]:
    """Split at the empty line ending the header section (RFC 3261 §7)."""
    end = data.find(b"\r\n\r\n")
    if end >= 0:
        return data[:end], data[end + 4 :]
    # Tolerate bare-LF line ends (RFC 3261 §7.5 asks for CRLF, peers sometimes send LF).
    end = data.find(b"\n\n")
    if end >= 0:
        return data[:end], data[end + 2 :]
    raise SipParseError("Header section not terminated")


def _unfold_lines(head: str) -> list[str]:
    """Header lines with LWS continuation lines joined (RFC 3261 §7.3.1)."""
    # RFC 3261 §7.3.1: a field value holds no CR or LF except in folding. A bare LF ends the line
    # here just as in an all-LF message (§7.5 tolerance): kept inside a value, it would smuggle
    # a header line to any peer that splits at LF when we relay the field. A bare CR is refused.
    crlf = head.count("\r\n")
    if (
        head.count("\r") == crlf == head.count("\n")
        and "\n " not in head
        and "\n\t" not in head
        and head[:1] not in (" ", "\t")
    ):
        return head.split("\r\n")  # the common case: CRLF only, nothing folded
    lines = [line[:-1] if line.endswith("\r") else line for line in head.split("\n")]
    out: list[str] = []
    for line in lines:
        if "\r" in line:
            raise SipParseError("Bare CR in header line")
        if line[:1] in (" ", "\t"):
            if not out:
                raise SipParseError("Leading whitespace before start line")
            out[-1] = out[-1].rstrip() + " " + line.strip()
        else:
            out.append(line)
    return out


def _parse_start_line(line: str) -> Request | Response:
    if line.startswith("SIP/") or line[:4].upper() == "SIP/":
        # Status-Line = SIP-Version SP Status-Code SP Reason-Phrase (RFC 3261 §7.2)
        parts = line.split(" ", 2)
        if len(parts) < 3 or not _VERSION_RE.fullmatch(parts[0]):
            raise SipParseError("Malformed status line")
        code = parts[1]
        if not _STATUS_RE.fullmatch(code):
            raise SipParseError("Malformed status code")
        return Response(int(code), parts[2], Headers(), b"", parts[0].upper())
    # Request-Line = Method SP Request-URI SP SIP-Version (RFC 3261 §7.1): single spaces,
    # no LWS inside the URI (RFC 4475 §3.1.2.8-10 allow refusing the liberal forms).
    parts = line.split(" ")
    if len(parts) != 3:
        raise SipParseError("Malformed request line")
    method, uri, version = parts
    if not TOKEN_RE.fullmatch(method):
        raise SipParseError("Malformed method")
    if not _VERSION_RE.fullmatch(version):
        raise SipParseError("Malformed SIP version")
    if not uri or not _SCHEME_RE.match(uri) or "<" in uri or ">" in uri or "\t" in uri:
        raise SipParseError("Malformed Request-URI")
    return Request(method, uri, Headers(), b"", version.upper())


def _content_length(headers: Headers) -> int | None:
    values = headers.get_all("Content-Length")
    if not values:
        return None
    # Only SP and HTAB are LWS (RFC 3261 §25.1); str.strip() would also drop \x1c-\x1f and
    # Unicode spaces and read a length the stream framer refuses.
    first = values[0].strip(" \t")
    if any(v.strip(" \t") != first for v in values[1:]):
        raise SipParseError("Conflicting Content-Length headers")  # RFC 4475 §3.3.9
    if not first.isdigit() or not first.isascii():
        raise SipParseError("Malformed Content-Length")
    # RFC 3261 §20.14: 1*DIGIT, leading zeros allowed. int() raises a bare ValueError past 4300
    # digits (zeros included), so it only sees the significant digits, and only a few of them.
    if len(first.lstrip("0")) > len(str(MAX_MESSAGE_SIZE)):
        raise SipParseError("Content-Length too large")
    length = int(first.lstrip("0") or "0")
    if length > MAX_MESSAGE_SIZE:
        raise SipParseError("Content-Length too large")
    return length


def parse_head(head: bytes) -> Request | Response:
    """Parse a start line and header fields (no body); used by the stream framer as well."""
    text = head.decode("utf-8", "surrogateescape")
    lines = _unfold_lines(text)
    if not lines or not lines[0]:
        raise SipParseError("Empty start line")
    message = _parse_start_line(lines[0])
    if len(lines) - 1 > MAX_HEADER_FIELDS:
        raise SipParseError("Too many header fields")
    fields = message.headers._fields
    names = _NAMES
    for line in lines[1:]:
        colon = line.find(":")
        if colon <= 0:
            raise SipParseError("Malformed header line")
        # HCOLON = *( SP / HTAB ) ":" SWS  (RFC 3261 §25.1)
        name = line[:colon]
        known = names.get(name)
        if known is None:
            known = _name_entry(name.rstrip(" \t"))
            if len(names) < _NAMES_LIMIT:
                names[name] = known
        fields.append((known[0], known[1], line[colon + 1 :].strip(" \t")))
    return message


# Raw header name -> (key, spelling): names repeat across messages, so each is checked once.
_NAMES: dict[str, tuple[str, str]] = {}
_NAMES_LIMIT = 4096  # invented names beyond this are checked every time, never stored


def _name_entry(name: str) -> tuple[str, str]:
    if not TOKEN_RE.fullmatch(name):
        raise SipParseError("Malformed header name")
    key = header_key(name)
    return key, CANONICAL_NAMES.get(key, name)


def parse_message(data: bytes, *, datagram: bool = True) -> Request | Response:
    """Parse one whole message.

    ``datagram``: the bytes are a UDP datagram. Content-Length then bounds the body and any
    trailing octets are noise (RFC 3261 §18.3, RFC 4475 §3.1.1.8); without Content-Length the
    body is the rest of the datagram (RFC 2543 compatibility, RFC 4475 §3.4.1). A body shorter
    than Content-Length is an error (RFC 4475 §3.1.2.2). For stream transports the framer has
    already cut the message at Content-Length.
    """
    if len(data) > MAX_MESSAGE_SIZE:
        raise SipParseError("Message too large", 513)
    head, rest = _split_head(data)
    message = parse_head(head)
    length = _content_length(message.headers)
    if length is None:
        if not datagram and rest:
            raise SipParseError("Missing Content-Length")
        message.body = rest
    elif length > len(rest):
        raise SipParseError("Content-Length larger than body")
    else:
        message.body = rest[:length]
    return message
