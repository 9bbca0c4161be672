"""Incremental message framer for stream transports (TCP, TLS), RFC 3261 §18.3.

Bytes arrive split anywhere; ``feed`` returns whole messages (still unparsed) and keep-alive
pings. Content-Length alone frames a message on a stream, so a missing body length means an
empty body and a malformed one loses the framing: the connection must then be closed, which
``feed`` signals by raising ``SipParseError``. The buffer never grows past ``max_message``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sip.errors import SipParseError

DEFAULT_MAX_MESSAGE = 65536

_CONTENT_LENGTH_RE = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*([^\r\n]*)", re.I | re.M)


@dataclass(frozen=True, slots=True)
class KeepAlivePing:
    """A CRLFCRLF ping; answer with a single CRLF pong (RFC 5626 §4.4.1)."""


PING = KeepAlivePing()


class StreamFramer:
    __slots__ = ("_buf", "_max", "_scan_from")

    def __init__(self, max_message: int = DEFAULT_MAX_MESSAGE) -> None:
        self._buf = bytearray()
        self._max = max_message
        self._scan_from = 0  # where to resume looking for the end of the header section

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes | KeepAlivePing]:
        self._buf += data
        out: list[bytes | KeepAlivePing] = []
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
            match = _CONTENT_LENGTH_RE.search(buf, 0, end + 2)
            length = 0
            if match is not None:
                raw = match.group(1).strip()
                if not raw.isdigit():
                    raise SipParseError("Malformed Content-Length")
                length = int(raw)
                # A second, different Content-Length makes the framing unknowable (RFC 4475
                # §3.3.9).
                for other in _CONTENT_LENGTH_RE.finditer(buf, match.end(), end + 2):
                    if other.group(1).strip() != raw:
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
        return out
