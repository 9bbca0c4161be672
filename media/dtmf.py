"""RFC 4733 telephone-events in, DTMF digits out: a sans-I/O detector for the relay.

A sender reports one key press as a run of RTP packets that all carry the RTP timestamp of the
instant the event began, with the duration so far growing from packet to packet (RFC 4733
§2.3, §2.3.5), and repeats the final packet, E bit set, three times (§2.5.1.4). The receiver
knows the packets of one event by that shared timestamp within one SSRC (§2.5.2).
``DtmfDetector`` turns that stream back into one ``DtmfDigit(digit, duration_ms)`` per key
press, for SIP INFO (``application/dtmf-relay``) toward a side that did not negotiate
telephone-event. The 4-octet payload itself (event, E bit, volume, duration; RFC 4733 §2.3) is
read by ``media.rtp.parse_dtmf_event``, the one parser for it.

Rules, in order, for each packet (``feed(timestamp, payload, ssrc=...)``):

- a payload that is not 4 octets is counted in ``malformed`` and ignored (one event per
  payload: the relay does not negotiate RFC 2198 redundancy);
- the current event's SSRC and timestamp: its duration grows; the first E-bit packet reports
  it, the retransmitted end packets (§2.5.1.4) report nothing;
- a timestamp up to ``LATE_WINDOW`` units before the current event's (mod 2^32, RFC 3550 §5.1):
  a late packet of an event already handled, ignored;
- any other timestamp, or another SSRC (a new phone after a transfer or re-INVITE), starts a
  new event. If the current one never saw its end (all three end packets lost), it is reported
  now with the last duration heard: a key press is not lost while another follows it. One whose
  end was lost and that nothing follows is not reported (the detector keeps no timer).
- except that an event longer than the 16-bit duration field is sent in segments, the next one
  with a timestamp that far on and no E bit on the previous one (RFC 4733 §2.5.1.3): a packet
  of the same event code at most 0xFFFF units on, while the current segment is unfinished and
  has run past half that range (no key press does at 8000 Hz), continues the event.

Events 0-15 are reported as ``0-9 * # A-D`` (RFC 4733 §3.2, ``media.rtp.DTMF_EVENT_NAMES``);
other events (flash, tones) are tracked, so they end a digit, but not reported. Durations are
RTP timestamp units (§2.3.5) converted with ``clock_rate``, the leg's negotiated clock rate
(8000 for telephone-event/8000; 48000 beside Opus), rounded down to whole milliseconds.
"""

from __future__ import annotations

from typing import NamedTuple

from media.rtp import DTMF_EVENT_NAMES, RtpError, parse_dtmf_event

__all__ = ["DEFAULT_CLOCK_RATE", "LATE_WINDOW", "DtmfDetector", "DtmfDigit", "event_digit"]

DEFAULT_CLOCK_RATE = 8000  # telephone-event/8000, unless the SDP negotiated another rate
_SEGMENT = 0xFFFF  # RFC 4733 §2.3.5: the duration field is 16 bits; longer events are segmented
_WRAP = 1 << 32  # RFC 3550 §5.1: timestamps are 32 bits and wrap
# How far behind the current event a packet may be and still count as a late one of an earlier
# event (131 s at 8 kHz): further back, the sender's timestamps jumped and a new event begins.
LATE_WINDOW = 1 << 20
_NO_DIGITS: tuple[DtmfDigit, ...] = ()


class DtmfDigit(NamedTuple):
    """One key press: ``digit`` is one of ``0-9 * # A-D``, ``duration_ms`` how long it lasted."""

    digit: str
    duration_ms: int


def event_digit(event: int) -> str | None:
    """The DTMF digit of an RFC 4733 event code (§3.2: 0-9, 10 ``*``, 11 ``#``, 12-15 A-D)."""
    return DTMF_EVENT_NAMES[event] if 0 <= event < len(DTMF_EVENT_NAMES) else None


class DtmfDetector:
    """Reports each telephone-event of one RTP stream once (see the module docstring)."""

    __slots__ = (
        "_covered",
        "_duration",
        "_ended",
        "_event",
        "_ssrc",
        "_timestamp",
        "clock_rate",
        "malformed",
    )

    def __init__(self, clock_rate: int = DEFAULT_CLOCK_RATE) -> None:
        if clock_rate <= 0:
            raise ValueError(f"clock rate must be positive, not {clock_rate}")
        self.clock_rate = clock_rate
        self.malformed = 0  # payloads that were not one 4-octet event
        self._ssrc: int | None = None  # SSRC and RTP timestamp of the current event's segment
        self._timestamp = 0
        self._event = 0
        self._covered = 0  # timestamp units of the current event before this segment
        self._duration = 0  # longest duration heard in the current segment
        self._ended = True

    def feed(
        self, timestamp: int, payload: bytes | bytearray | memoryview, *, ssrc: int = 0
    ) -> tuple[DtmfDigit, ...]:
        """One telephone-event packet's RTP timestamp, payload and SSRC -> the key presses it
        ends (none, one, or two when it also ends one whose end packets were lost)."""
        try:
            event = parse_dtmf_event(payload)
        except RtpError:
            self.malformed += 1
            return _NO_DIGITS
        if ssrc == self._ssrc:
            delta = (timestamp - self._timestamp) % _WRAP
            if delta == 0:
                if self._ended or event.event != self._event:
                    return _NO_DIGITS  # a retransmitted end (§2.5.1.4), or nonsense
                return self._update(event.duration, event.end)
            if delta >= _WRAP - LATE_WINDOW:
                return _NO_DIGITS  # a late packet of an event already handled
            if (
                not self._ended
                and event.event == self._event
                and self._duration > _SEGMENT // 2
                and delta <= _SEGMENT
            ):
                # The next segment of a long event (RFC 4733 §2.5.1.3): same press, go on.
                self._covered += delta
                self._timestamp, self._duration = timestamp, 0
                return self._update(event.duration, event.end)
        lost_end = _NO_DIGITS if self._ended else self._report()
        self._ssrc, self._timestamp, self._event = ssrc, timestamp, event.event
        self._covered = self._duration = 0
        self._ended = False
        return lost_end + self._update(event.duration, event.end)

    def _update(self, duration: int, end: bool) -> tuple[DtmfDigit, ...]:
        # Packets may arrive out of order: the duration only grows (§2.3.5).
        self._duration = max(self._duration, duration)
        if not end:
            return _NO_DIGITS
        self._ended = True
        return self._report()

    def _report(self) -> tuple[DtmfDigit, ...]:
        digit = event_digit(self._event)
        if digit is None:
            return _NO_DIGITS
        return (DtmfDigit(digit, (self._covered + self._duration) * 1000 // self.clock_rate),)
