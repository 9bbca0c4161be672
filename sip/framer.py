"""Incremental message framer for stream transports (TCP, TLS), RFC 3261 §18.3.

Bytes arrive split anywhere; ``feed`` returns whole messages (still unparsed) and keep-alive
pings. Content-Length alone frames a message on a stream, so a missing body length means an
empty body and a malformed one loses the framing: the connection must then be closed, which
``feed`` signals by raising ``SipParseError`` (after returning the messages it completed before
the fault, if any: then the next call raises). The buffer never grows past ``max_message``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sip.errors import SipParseError

DEFAULT_MAX_MESSAGE = 65536

_CONTENT_LENGTH_RE = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*([^\r\n]*)", re.I | re.M)
# RFC 3261 §7.3.1: a continuation line (LWS fold) belongs to the field above it.
_FOLD_RE = re.compile(rb"\r?\n[ \t]+")


@dataclass(frozen=True, slots=True)
class KeepAlivePing:
    """A CRLFCRLF ping; answer with a single CRLF pong (RFC 5626 §4.4.1)."""


PING = KeepAlivePing()


class StreamFramer:
    __slots__ = ("_buf", "_error", "_max", "_scan_from")

    def __init__(self, max_message: int = DEFAULT_MAX_MESSAGE) -> None:
        self._buf = bytearray()
        self._max = max_message
        self._scan_from = 0  # where to resume looking for the end of the header section
        self._error: SipParseError | None = None  # framing lost; raised by the next feed

    @property
    def buffered(self) -> int:
        return len(self._buf)

    @property
    def failed(self) -> SipParseError | None:
        """The framing error held back for the next ``feed`` (the stream is then unusable)."""
        return self._error

    def feed(self, data: bytes) -> list[bytes | KeepAlivePing]:
        if self._error is not None:
            raise self._error
        self._buf += data
        out: list[bytes | KeepAlivePing] = []
        try:
            self._frame(out)
        except SipParseError as exc:
            if not out:
                raise
            # Messages completed before the fault are delivered, as they would be had the fault
            # come in a later segment: what is delivered must not depend on where the stream
            # was cut (RFC 3261 §18.3 frames by Content-Length only). The next feed raises; the
            # unframeable rest is of no use, so it is not kept.
            self._error = exc
            self._buf.clear()
        return out

    def _frame(self, out: list[bytes | KeepAlivePing]) -> None:
        buf = self._buf
        while buf:
            # RFC 3261 §7.5: CRLFs before a start line are ignored; a CRLFCRLF there is a
            # keep-alive ping (RFC 5626 §4.4.1).
            if buf[:1] == b"\r" or buf[:1] == b"\n":
                if buf[:4] == b"\r\n\r\n":
                    del buf[:4]
                    out.append(PING)
                    continue
                if len(buf) < 4 and b"\r\n\r\n".startswith(bytes(buf)):
                    break  # could still become a ping
                del buf[:1]
                continue
            end = buf.find(b"\r\n\r\n", self._scan_from)
            if end < 0:
                if len(buf) > self._max:
                    raise SipParseError("Header section too large")
                self._scan_from = max(0, len(buf) - 3)
                break
            head_end = end + 4
            head: bytes | bytearray = buf
            head_len = end + 2
            if buf.find(b"\n ", 0, head_len) >= 0 or buf.find(b"\n\t", 0, head_len) >= 0:
                # A folded Content-Length ("Content-Length:" CRLF SP "5") is legal and the
                # parser reads it; the framer must read the same length (RFC 3261 §7.3.1).
                head = _FOLD_RE.sub(b" ", bytes(buf[:head_len]))
                head_len = len(head)
            match = _CONTENT_LENGTH_RE.search(head, 0, head_len)
            length = 0
            if match is not None:
                raw = match.group(1).strip(b" \t")  # LWS is SP/HTAB only
                if not raw.isdigit():
                    raise SipParseError("Malformed Content-Length")
                # Leading zeros are legal; an overlong value cannot fit, and int() raises a bare
                # ValueError past 4300 digits (zeros included), so it only sees the stripped text.
                digits = raw.lstrip(b"0") or b"0"
                if len(digits) > len(str(self._max)):
                    raise SipParseError("Message too large")
                length = int(digits)
                # A second, different Content-Length makes the framing unknowable (RFC 4475
                # §3.3.9).
                for other in _CONTENT_LENGTH_RE.finditer(head, match.end(), head_len):
                    if other.group(1).strip(b" \t") != raw:
                        raise SipParseError("Conflicting Content-Length headers")
            total = head_end + length
            if total > self._max:
                raise SipParseError("Message too large")
            if len(buf) < total:
                self._scan_from = end  # head is complete; wait for the body
                break
            out.append(bytes(buf[:total]))
            del buf[:total]
            self._scan_from = 0
