"""What the relay does to RTP it has to look into, sans-I/O: one ``RtpFilter`` per leg.

The relay forwards packets unchanged and unparsed (DESIGN.md principle 4). A leg gets a filter
only when the B2BUA asks for one of:

- a payload map (``set_payload_map``): payload type ``pt`` received on the leg leaves as
  ``mapping[pt] = (new_pt, converter)``; the converter is None (renumber only, e.g. dynamic
  telephone-event 101 -> 96) or a G.711 transcoder, ``"ulaw_to_alaw"`` / ``"alaw_to_ulaw"``
  (PCMU PT 0 <-> PCMA PT 8, RFC 3551 §4.5.14; ``media.g711``'s ``bytes.translate`` tables).
  Marker bit, sequence number, timestamp, SSRC, CSRCs, header extension and padding are kept:
  only the PT bits of octet 1 and the payload octets change (one octet per sample, so the
  length does not);
- DTMF detection (``set_dtmf``): packets of the telephone-event payload type go to a
  ``media.dtmf.DtmfDetector``, each key press to ``on_digit(digit, duration_ms)``, and the
  packets on (through the payload map) only when ``forward`` is set.

Called with a datagram, a filter returns the one to forward (the same object when nothing
changes), or None when it is consumed; it raises ``RtpError`` for a datagram that is not
well-formed RTP (RFC 3550 §5.1), which the relay drops and counts. PTs in neither the map nor
DTMF pass unchanged.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping

from media.dtmf import DEFAULT_CLOCK_RATE, DtmfDetector
from media.g711 import ALAW_TO_ULAW_BYTES, ULAW_TO_ALAW_BYTES
from media.rtp import RTP_HEADER_SIZE, RtpError

__all__ = ["CONVERTERS", "DigitCallback", "RtpFilter", "payload_bounds"]

DigitCallback = Callable[[str, int], None]

# Converter name -> 256-octet table for bytes.translate: G.711 is one octet per sample.
CONVERTERS: dict[str, bytes] = {
    "ulaw_to_alaw": ULAW_TO_ALAW_BYTES,
    "alaw_to_ulaw": ALAW_TO_ULAW_BYTES,
}

_EXTENSION_WORDS = struct.Struct("!H")  # RFC 3550 §5.3.1: length in 32-bit words, octets 2-3
_TIMESTAMP_SSRC = struct.Struct("!II")  # RFC 3550 §5.1: octets 4-11


def payload_bounds(buf: bytes | bytearray | memoryview) -> tuple[int, int]:
    """``(start, end)`` of an RTP packet's payload, without copying (RFC 3550 §5.1, §5.3.1).

    The header is 12 octets, 4 per CSRC (CC), and with the X bit a 4-octet extension header
    plus its length in words; with the P bit the last octet counts the padding, itself
    included. Raises ``RtpError`` for a version other than 2 or fields that do not fit.
    """
    size = len(buf)
    if size < RTP_HEADER_SIZE or buf[0] & 0xC0 != 0x80:
        raise RtpError("not an RTP version 2 packet")
    first = buf[0]
    start = RTP_HEADER_SIZE + 4 * (first & 0x0F)
    if first & 0x10:
        if start + 4 > size:
            raise RtpError("header extension truncated")
        start += 4 + 4 * _EXTENSION_WORDS.unpack_from(buf, start + 2)[0]
    end = size
    if first & 0x20:
        padding = buf[size - 1]
        if padding == 0:
            raise RtpError("padding bit set but padding count is 0")
        end -= padding
    if start > end:
        raise RtpError("CSRCs, extension and padding do not fit in the packet")
    return start, end


class RtpFilter:
    """The payload map and DTMF detection of the RTP received on one leg."""

    __slots__ = ("_map", "detector", "dtmf_forward", "dtmf_payload_type", "on_digit")

    def __init__(self) -> None:
        self._map: dict[int, tuple[int, bytes | None]] = {}
        self.dtmf_payload_type: int | None = None
        self.dtmf_forward = True
        self.detector = DtmfDetector()
        self.on_digit: DigitCallback | None = None

    @property
    def active(self) -> bool:
        """False when the filter would pass every packet unchanged: the relay's fast path."""
        return bool(self._map) or self.dtmf_payload_type is not None

    def set_payload_map(self, mapping: Mapping[int, tuple[int, str | None]]) -> None:
        """Replace the payload map (empty: none); ``ValueError`` names a bad entry."""
        checked: dict[int, tuple[int, bytes | None]] = {}
        for pt, (new_pt, converter) in mapping.items():
            if not (0 <= pt <= 0x7F and 0 <= new_pt <= 0x7F):
                raise ValueError(f"payload types must be 0-127: {pt} -> {new_pt}")
            if converter is not None and converter not in CONVERTERS:
                raise ValueError(f"unknown converter {converter!r} (known: {sorted(CONVERTERS)})")
            checked[pt] = (new_pt, None if converter is None else CONVERTERS[converter])
        self._map = checked

    def set_dtmf(
        self,
        payload_type: int | None,
        on_digit: DigitCallback | None,
        *,
        forward: bool,
        clock_rate: int = DEFAULT_CLOCK_RATE,
    ) -> None:
        """Detect telephone-events of ``payload_type`` (None: stop), from a fresh state."""
        if payload_type is not None and not 0 <= payload_type <= 0x7F:
            raise ValueError(f"payload type {payload_type} out of range 0-127")
        self.detector = DtmfDetector(clock_rate)
        self.dtmf_payload_type = payload_type
        self.on_digit = on_digit
        self.dtmf_forward = forward

    def __call__(self, data: bytes) -> bytes | bytearray | None:
        start, end = payload_bounds(data)
        pt = data[1] & 0x7F
        if pt == self.dtmf_payload_type:
            timestamp, ssrc = _TIMESTAMP_SSRC.unpack_from(data, 4)
            digits = self.detector.feed(timestamp, data[start:end], ssrc=ssrc)
            if self.on_digit is not None:
                for digit, duration_ms in digits:
                    self.on_digit(digit, duration_ms)
            if not self.dtmf_forward:
                return None
        rule = self._map.get(pt)
        if rule is None:
            return data
        new_pt, table = rule
        out = bytearray(data)
        out[1] = (data[1] & 0x80) | new_pt  # RFC 3550 §5.1: the marker bit stays
        if table is not None:
            out[start:end] = data[start:end].translate(table)
        return out
