"""RTP packets (RFC 3550 §5), sans-I/O, plus allocation-light helpers for the relay hot path.

Two ways in, on purpose:

- ``parse_rtp`` / ``RtpPacket.to_bytes`` build and check a whole packet object: for tests,
  playback, the jitter buffer, anything that looks inside the payload.
- ``rtp_header_fields``, ``is_rtcp``, ``set_ssrc`` and ``set_payload_type`` read or patch the
  fixed header of a buffer in place (bytes, bytearray or memoryview) without building objects:
  for the per-packet relay path (DESIGN.md principle 4).

RFC 4733 telephone-event payloads (DTMF) are read and written by ``parse_dtmf_event`` /
``build_dtmf_event``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = [
    "DTMF_EVENT_NAMES",
    "RTP_HEADER_SIZE",
    "DtmfEvent",
    "RtpError",
    "RtpPacket",
    "build_dtmf_event",
    "is_rtcp",
    "parse_dtmf_event",
    "parse_rtp",
    "rtp_header_fields",
    "set_payload_type",
    "set_ssrc",
]

RTP_HEADER_SIZE = 12  # RFC 3550 §5.1: the fixed header
RTP_VERSION = 2
MAX_CSRC = 15  # RFC 3550 §5.1: CC is 4 bits

# RFC 3550 §5.1: V(2) P(1) X(1) CC(4) | M(1) PT(7) | sequence(16) | timestamp(32) | SSRC(32)
_FIXED = struct.Struct("!BBHII")
_EXTENSION_HEADER = struct.Struct("!HH")  # RFC 3550 §5.3.1: profile, length in 32-bit words
_WORD = struct.Struct("!I")
_DTMF = struct.Struct("!BBH")  # RFC 4733 §2.3: event | E R volume | duration


class RtpError(ValueError):
    """An RTP packet or payload is malformed; ``reason`` names the fault."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class RtpPacket:
    """One RTP packet (RFC 3550 §5.1).

    ``padding`` is the number of padding octets at the end of the packet, the count octet
    included (0 = the P bit is clear). ``payload`` excludes the padding. Padding octets other
    than the count are written as zeros: RFC 3550 §5.1 gives them no meaning.
    ``extension`` is ``(profile, data)`` of the §5.3.1 header extension; ``data`` is a whole
    number of 32-bit words (e.g. RFC 8285 elements under profile 0xBEDE).
    """

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    extension: tuple[int, bytes] | None = None
    padding: int = 0
    version: int = RTP_VERSION

    def to_bytes(self) -> bytes:
        """Serialise; raise ``RtpError`` naming the field that cannot be encoded."""
        if self.version != RTP_VERSION:
            raise RtpError(f"RTP version must be 2, not {self.version}")
        if not 0 <= self.payload_type <= 0x7F:
            raise RtpError(f"payload type {self.payload_type} out of range 0-127")
        if not 0 <= self.sequence <= 0xFFFF:
            raise RtpError(f"sequence number {self.sequence} out of range")
        if not 0 <= self.timestamp <= 0xFFFFFFFF:
            raise RtpError(f"timestamp {self.timestamp} out of range")
        if len(self.csrcs) > MAX_CSRC:
            raise RtpError(f"{len(self.csrcs)} CSRCs; at most 15 fit")
        if not 0 <= self.padding <= 0xFF:
            raise RtpError(f"padding length {self.padding} out of range 0-255")
        first = (RTP_VERSION << 6) | len(self.csrcs)
        if self.padding:
            first |= 0x20
        if self.extension is not None:
            first |= 0x10
        second = self.payload_type | (0x80 if self.marker else 0)
        try:
            parts = [_FIXED.pack(first, second, self.sequence, self.timestamp, self.ssrc)]
            parts.extend(_WORD.pack(csrc) for csrc in self.csrcs)
        except struct.error as exc:
            raise RtpError("SSRC or CSRC out of 32-bit range") from exc
        if self.extension is not None:
            profile, data = self.extension
            if not 0 <= profile <= 0xFFFF:
                raise RtpError(f"extension profile {profile} out of range")
            if len(data) % 4 or len(data) > 0xFFFF * 4:
                raise RtpError("extension data must be a whole number of 32-bit words")
            parts.append(_EXTENSION_HEADER.pack(profile, len(data) // 4))
            parts.append(bytes(data))
        parts.append(self.payload)
        if self.padding:
            parts.append(bytes(self.padding - 1) + bytes((self.padding,)))
        return b"".join(parts)


def parse_rtp(data: bytes | bytearray | memoryview) -> RtpPacket:
    """Parse and check one RTP packet (RFC 3550 §5.1, §5.3.1); raise ``RtpError`` if malformed."""
    size = len(data)
    if size < RTP_HEADER_SIZE:
        raise RtpError(f"RTP packet too short: {size} octets, the fixed header needs 12")
    first, second, sequence, timestamp, ssrc = _FIXED.unpack_from(data)
    version = first >> 6
    if version != RTP_VERSION:
        raise RtpError(f"RTP version {version}, expected 2")
    offset = RTP_HEADER_SIZE
    csrc_count = first & 0x0F
    end_of_csrcs = offset + 4 * csrc_count
    if end_of_csrcs > size:
        raise RtpError(f"CSRC list truncated: {csrc_count} CSRCs do not fit in {size} octets")
    csrcs = struct.unpack_from(f"!{csrc_count}I", data, offset) if csrc_count else ()
    offset = end_of_csrcs
    extension: tuple[int, bytes] | None = None
    if first & 0x10:  # RFC 3550 §5.3.1
        if offset + 4 > size:
            raise RtpError("header extension truncated: no room for its 4-octet header")
        profile, words = _EXTENSION_HEADER.unpack_from(data, offset)
        offset += 4
        if offset + 4 * words > size:
            raise RtpError(f"header extension truncated: {words} words do not fit")
        extension = (profile, bytes(data[offset : offset + 4 * words]))
        offset += 4 * words
    end = size
    padding = 0
    if first & 0x20:  # RFC 3550 §5.1: the last octet counts the padding, itself included
        padding = data[size - 1]
        if padding == 0:
            raise RtpError("padding bit set but padding count is 0")
        if padding > size - offset:
            raise RtpError(f"padding count {padding} exceeds the {size - offset} octets left")
        end = size - padding
    return RtpPacket(
        payload_type=second & 0x7F,
        sequence=sequence,
        timestamp=timestamp,
        ssrc=ssrc,
        payload=bytes(data[offset:end]),
        marker=bool(second & 0x80),
        csrcs=tuple(csrcs),
        extension=extension,
        padding=padding,
        version=version,
    )


# --- hot path: no packet objects -------------------------------------------------------------


def rtp_header_fields(buf: bytes | bytearray | memoryview) -> tuple[int, int, int, int]:
    """``(payload_type, sequence, timestamp, ssrc)`` from the fixed header, without copying.

    Checks only what the fixed header can tell (length, version); a relay forwards the rest
    untouched. Raises ``RtpError`` for a buffer shorter than 12 octets or version ≠ 2.
    """
    if len(buf) < RTP_HEADER_SIZE:
        raise RtpError("RTP packet too short")
    first, second, sequence, timestamp, ssrc = _FIXED.unpack_from(buf)
    if first & 0xC0 != 0x80:
        raise RtpError(f"RTP version {first >> 6}, expected 2")
    return second & 0x7F, sequence, timestamp, ssrc


def is_rtcp(buf: bytes | bytearray | memoryview) -> bool:
    """True when a packet on a muxed RTP/RTCP port is RTCP (RFC 5761 §4).

    RTCP packet types 192-223 occupy the second octet where RTP has M+PT; RFC 5761 §4 keeps
    RTP payload types 64-95 (marker set: 192-223) out of use on muxed ports for this reason.
    """
    return len(buf) >= 2 and 192 <= buf[1] <= 223


def set_ssrc(buf: bytearray | memoryview, ssrc: int) -> None:
    """Rewrite the SSRC of an RTP packet in place (RFC 3550 §5.1, octets 8-11)."""
    if len(buf) < RTP_HEADER_SIZE:
        raise RtpError("RTP packet too short")
    if not 0 <= ssrc <= 0xFFFFFFFF:
        raise RtpError(f"SSRC {ssrc} out of 32-bit range")
    _WORD.pack_into(buf, 8, ssrc)


def set_payload_type(buf: bytearray | memoryview, payload_type: int) -> None:
    """Rewrite the payload type in place, keeping the marker bit (RFC 3550 §5.1)."""
    if len(buf) < RTP_HEADER_SIZE:
        raise RtpError("RTP packet too short")
    if not 0 <= payload_type <= 0x7F:
        raise RtpError(f"payload type {payload_type} out of range 0-127")
    buf[1] = (buf[1] & 0x80) | payload_type


# --- RFC 4733 telephone-event ----------------------------------------------------------------

# RFC 4733 §3.2: events 0-15 are the DTMF digits, in this order.
DTMF_EVENT_NAMES = "0123456789*#ABCD"


@dataclass(slots=True, frozen=True)
class DtmfEvent:
    """One RFC 4733 §2.3 telephone-event payload.

    ``volume`` is the power level in -dBm0 (0-63); ``duration`` is in RTP timestamp units
    since the event's first packet.
    """

    event: int
    end: bool
    volume: int
    duration: int


def parse_dtmf_event(payload: bytes | bytearray | memoryview) -> DtmfEvent:
    """Read a telephone-event payload (RFC 4733 §2.3); the R bit is ignored as §2.3 says."""
    if len(payload) != _DTMF.size:
        raise RtpError(f"telephone-event payload must be 4 octets, not {len(payload)}")
    event, flags, duration = _DTMF.unpack_from(payload)
    return DtmfEvent(event=event, end=bool(flags & 0x80), volume=flags & 0x3F, duration=duration)


def build_dtmf_event(event: int, *, end: bool, volume: int, duration: int) -> bytes:
    """Write a telephone-event payload (RFC 4733 §2.3), R bit zero."""
    if not 0 <= event <= 0xFF:
        raise RtpError(f"event {event} out of range 0-255")
    if not 0 <= volume <= 0x3F:
        raise RtpError(f"volume {volume} out of range 0-63")
    if not 0 <= duration <= 0xFFFF:
        raise RtpError(f"duration {duration} out of range 0-65535")
    return _DTMF.pack(event, (0x80 if end else 0) | volume, duration)
