"""Compound RTCP packets (RFC 3550 §6), sans-I/O: parse, check, build.

``parse_rtcp`` returns one object per packet of a compound datagram: ``SenderReport``,
``ReceiverReport``, ``Sdes``, ``Bye``, ``App``, or ``RtcpUnknown`` for any other type
(RFC 4585 feedback, RFC 3611 XR, ...), kept raw so a relay can pass it on. It applies the
validity checks of RFC 3550 Appendix A.2 and raises ``RtcpError`` naming the fault.

Padding (the P bit) is checked and stripped on parse and never written back: RFC 3550 §6.4.1
uses it for encryption, which SRTCP does below this layer. Every ``to_bytes`` output is
otherwise byte-exact with what ``parse_rtcp`` read, given canonical SDES/BYE padding.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "APP",
    "BYE",
    "RR",
    "SDES",
    "SDES_CNAME",
    "SR",
    "App",
    "Bye",
    "ReceiverReport",
    "ReportBlock",
    "RtcpError",
    "RtcpPacket",
    "RtcpUnknown",
    "Sdes",
    "SdesChunk",
    "SenderReport",
    "build_compound",
    "ntp_middle32",
    "parse_rtcp",
    "sdes_cname",
]

# RFC 3550 §12.1 packet types
SR = 200
RR = 201
SDES = 202
BYE = 203
APP = 204

# RFC 3550 §12.2 SDES item types
SDES_END = 0
SDES_CNAME = 1

RTCP_VERSION = 2
MAX_COUNT = 31  # the 5-bit RC/SC/subtype field

_HEADER = struct.Struct("!BBH")  # V P RC/SC | PT | length (32-bit words - 1), RFC 3550 §6.4.1
_SENDER_INFO = struct.Struct("!IQIII")  # SSRC, NTP, RTP timestamp, packets, octets (§6.4.1)
_REPORT_BLOCK = struct.Struct("!IIIIII")  # §6.4.1, fraction+cumulative share one word
_WORD = struct.Struct("!I")


class RtcpError(ValueError):
    """An RTCP packet is malformed or cannot be encoded; ``reason`` names the fault."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def ntp_middle32(ntp_timestamp: int) -> int:
    """The middle 32 bits of a 64-bit NTP timestamp: the LSR of RFC 3550 §6.4.1."""
    return (ntp_timestamp >> 16) & 0xFFFFFFFF


def _header(padding: bool, count: int, packet_type: int, body_len: int) -> bytes:
    if not 0 <= count <= MAX_COUNT:
        raise RtcpError(f"count {count} does not fit in 5 bits")
    if body_len % 4:
        raise RtcpError("RTCP packet body must be a whole number of 32-bit words")
    words = body_len // 4  # length field = total words - 1 = body words (§6.4.1)
    if words > 0xFFFF:
        raise RtcpError("RTCP packet too long for its length field")
    first = (RTCP_VERSION << 6) | (0x20 if padding else 0) | count
    return _HEADER.pack(first, packet_type, words)


def _pad4(data: bytes) -> bytes:
    return data + bytes(-len(data) % 4)


@dataclass(slots=True, frozen=True)
class ReportBlock:
    """A reception report block (RFC 3550 §6.4.1).

    ``cumulative_lost`` is signed 24-bit (duplicates can make it negative); ``jitter`` is in
    RTP timestamp units; ``lsr`` is the middle 32 bits of the last SR's NTP timestamp and
    ``dlsr`` the delay since then in units of 1/65536 s (both 0 when no SR was received).
    """

    ssrc: int
    fraction_lost: int
    cumulative_lost: int
    highest_seq: int
    jitter: int
    lsr: int
    dlsr: int

    def to_bytes(self) -> bytes:
        if not 0 <= self.fraction_lost <= 0xFF:
            raise RtcpError(f"fraction lost {self.fraction_lost} out of range 0-255")
        if not -0x800000 <= self.cumulative_lost <= 0x7FFFFF:
            raise RtcpError(f"cumulative lost {self.cumulative_lost} not a signed 24-bit value")
        lost_word = (self.fraction_lost << 24) | (self.cumulative_lost & 0xFFFFFF)
        try:
            return _REPORT_BLOCK.pack(
                self.ssrc, lost_word, self.highest_seq, self.jitter, self.lsr, self.dlsr
            )
        except struct.error as exc:
            raise RtcpError("report block field out of 32-bit range") from exc

    @classmethod
    def _read(cls, data: memoryview, offset: int) -> ReportBlock:
        ssrc, lost_word, highest, jitter, lsr, dlsr = _REPORT_BLOCK.unpack_from(data, offset)
        cumulative = lost_word & 0xFFFFFF
        if cumulative & 0x800000:
            cumulative -= 0x1000000
        return cls(ssrc, lost_word >> 24, cumulative, highest, jitter, lsr, dlsr)


def _blocks_bytes(reports: tuple[ReportBlock, ...]) -> bytes:
    return b"".join(block.to_bytes() for block in reports)


def _read_blocks(body: memoryview, offset: int, count: int) -> tuple[ReportBlock, ...]:
    return tuple(ReportBlock._read(body, offset + 24 * i) for i in range(count))


@dataclass(slots=True, frozen=True)
class SenderReport:
    """SR (RFC 3550 §6.4.1). ``extension`` holds profile-specific octets after the blocks."""

    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()
    extension: bytes = b""

    def to_bytes(self) -> bytes:
        try:
            info = _SENDER_INFO.pack(
                self.ssrc,
                self.ntp_timestamp,
                self.rtp_timestamp,
                self.packet_count,
                self.octet_count,
            )
        except struct.error as exc:
            raise RtcpError("sender info field out of range") from exc
        body = info + _blocks_bytes(self.reports) + self.extension
        return _header(False, len(self.reports), SR, len(body)) + body


@dataclass(slots=True, frozen=True)
class ReceiverReport:
    """RR (RFC 3550 §6.4.2). ``extension`` holds profile-specific octets after the blocks."""

    ssrc: int
    reports: tuple[ReportBlock, ...] = ()
    extension: bytes = b""

    def to_bytes(self) -> bytes:
        try:
            body = _WORD.pack(self.ssrc) + _blocks_bytes(self.reports) + self.extension
        except struct.error as exc:
            raise RtcpError("SSRC out of 32-bit range") from exc
        return _header(False, len(self.reports), RR, len(body)) + body


@dataclass(slots=True, frozen=True)
class SdesChunk:
    """One SDES chunk (RFC 3550 §6.5): an SSRC/CSRC and its ``(item type, value)`` items."""

    ssrc: int
    items: tuple[tuple[int, bytes], ...]

    @property
    def cname(self) -> str | None:
        """The CNAME (RFC 3550 §6.5.1), decoded as UTF-8 with bad octets replaced."""
        for item_type, value in self.items:
            if item_type == SDES_CNAME:
                return value.decode("utf-8", "replace")
        return None

    def to_bytes(self) -> bytes:
        parts = [_WORD.pack(self.ssrc)]
        for item_type, value in self.items:
            if not 1 <= item_type <= 0xFF:
                raise RtcpError(f"SDES item type {item_type} out of range 1-255")
            if len(value) > 0xFF:
                raise RtcpError("SDES item longer than 255 octets")
            parts.append(bytes((item_type, len(value))) + value)
        raw = b"".join(parts)
        # §6.5: the item list ends with one or more null octets, up to a 32-bit boundary.
        return raw + bytes(4 - len(raw) % 4)


@dataclass(slots=True, frozen=True)
class Sdes:
    """SDES (RFC 3550 §6.5)."""

    chunks: tuple[SdesChunk, ...]

    def to_bytes(self) -> bytes:
        body = b"".join(chunk.to_bytes() for chunk in self.chunks)
        return _header(False, len(self.chunks), SDES, len(body)) + body


def sdes_cname(ssrc: int, cname: str) -> Sdes:
    """An SDES packet carrying one chunk with only a CNAME (RFC 3550 §6.5.1)."""
    return Sdes((SdesChunk(ssrc, ((SDES_CNAME, cname.encode()),)),))


@dataclass(slots=True, frozen=True)
class Bye:
    """BYE (RFC 3550 §6.6); ``reason`` is the optional UTF-8 reason for leaving."""

    ssrcs: tuple[int, ...]
    reason: str | None = None

    def to_bytes(self) -> bytes:
        try:
            body = b"".join(_WORD.pack(ssrc) for ssrc in self.ssrcs)
        except struct.error as exc:
            raise RtcpError("SSRC out of 32-bit range") from exc
        if self.reason is not None:
            text = self.reason.encode()
            if len(text) > 0xFF:
                raise RtcpError("BYE reason longer than 255 octets")
            body += _pad4(bytes((len(text),)) + text)
        return _header(False, len(self.ssrcs), BYE, len(body)) + body


@dataclass(slots=True, frozen=True)
class App:
    """APP (RFC 3550 §6.7): ``name`` is 4 ASCII octets, ``data`` whole 32-bit words."""

    subtype: int
    ssrc: int
    name: bytes
    data: bytes = b""

    def to_bytes(self) -> bytes:
        if len(self.name) != 4:
            raise RtcpError("APP name must be 4 octets")
        try:
            body = _WORD.pack(self.ssrc) + self.name + self.data
        except struct.error as exc:
            raise RtcpError("SSRC out of 32-bit range") from exc
        return _header(False, self.subtype, APP, len(body)) + body


@dataclass(slots=True, frozen=True)
class RtcpUnknown:
    """Any other packet type, kept raw: ``count`` is the 5-bit field, ``body`` follows the
    4-octet header (padding removed)."""

    packet_type: int
    count: int
    body: bytes

    def to_bytes(self) -> bytes:
        if not 0 <= self.packet_type <= 0xFF:
            raise RtcpError(f"packet type {self.packet_type} out of range")
        return _header(False, self.count, self.packet_type, len(self.body)) + self.body


RtcpPacket = SenderReport | ReceiverReport | Sdes | Bye | App | RtcpUnknown


def build_compound(packets: Iterable[RtcpPacket]) -> bytes:
    """Concatenate packets into one compound datagram (RFC 3550 §6.1).

    The order is the caller's: RFC 3550 §6.1 wants an SR or RR first and an SDES with a
    CNAME in every compound packet; ``parse_rtcp`` checks the first rule on the way in.
    """
    return b"".join(packet.to_bytes() for packet in packets)


def parse_rtcp(
    data: bytes | bytearray | memoryview, *, allow_reduced_size: bool = False
) -> list[RtcpPacket]:
    """Parse a compound RTCP datagram with the checks of RFC 3550 Appendix A.2.

    Every packet must be version 2 and exactly fill the datagram through its length fields;
    the first must be an SR or RR (unless ``allow_reduced_size``, RFC 5506 §3.1); only the
    last may carry padding.
    """
    view = memoryview(data)
    size = len(view)
    if size < 4:
        raise RtcpError(f"RTCP datagram too short: {size} octets")
    if size % 4:
        raise RtcpError(f"RTCP datagram of {size} octets is not whole 32-bit words")
    packets: list[RtcpPacket] = []
    offset = 0
    while offset < size:
        first, packet_type, words = _HEADER.unpack_from(view, offset)
        if first >> 6 != RTCP_VERSION:
            raise RtcpError(f"RTCP version {first >> 6}, expected 2")
        end = offset + 4 + 4 * words
        if end > size:
            raise RtcpError(
                f"RTCP length field says {4 + 4 * words} octets, {size - offset} remain"
            )
        if not packets and not allow_reduced_size and packet_type not in (SR, RR):
            # RFC 3550 Appendix A.2: a compound packet starts with an SR or RR.
            raise RtcpError(f"compound RTCP must start with SR or RR, not type {packet_type}")
        body_end = end
        if first & 0x20:
            # Appendix A.2 / §6.4.1: padding only on the last packet of the compound.
            if end != size:
                raise RtcpError("padding bit set on a packet that is not the last")
            pad = view[end - 1]
            if pad == 0 or pad > 4 * words:
                raise RtcpError(f"bad RTCP padding count {pad}")
            body_end = end - pad
        body = view[offset + 4 : body_end]
        packets.append(_parse_one(packet_type, first & 0x1F, body))
        offset = end
    return packets


def _parse_one(packet_type: int, count: int, body: memoryview) -> RtcpPacket:
    if packet_type == SR:
        need = _SENDER_INFO.size + 24 * count
        if len(body) < need:
            raise RtcpError(f"SR with {count} report blocks truncated")
        ssrc, ntp, rtp_ts, packets, octets = _SENDER_INFO.unpack_from(body)
        return SenderReport(
            ssrc,
            ntp,
            rtp_ts,
            packets,
            octets,
            _read_blocks(body, _SENDER_INFO.size, count),
            bytes(body[need:]),
        )
    if packet_type == RR:
        need = 4 + 24 * count
        if len(body) < need:
            raise RtcpError(f"RR with {count} report blocks truncated")
        (ssrc,) = _WORD.unpack_from(body)
        return ReceiverReport(ssrc, _read_blocks(body, 4, count), bytes(body[need:]))
    if packet_type == SDES:
        return _parse_sdes(count, body)
    if packet_type == BYE:
        return _parse_bye(count, body)
    if packet_type == APP:
        if len(body) < 8:
            raise RtcpError("APP packet truncated")
        (ssrc,) = _WORD.unpack_from(body)
        return App(count, ssrc, bytes(body[4:8]), bytes(body[8:]))
    return RtcpUnknown(packet_type, count, bytes(body))


def _parse_sdes(count: int, body: memoryview) -> Sdes:
    chunks: list[SdesChunk] = []
    offset = 0
    size = len(body)
    for _ in range(count):
        if offset + 4 > size:
            raise RtcpError(f"SDES with {count} chunks truncated")
        (ssrc,) = _WORD.unpack_from(body, offset)
        offset += 4
        items: list[tuple[int, bytes]] = []
        while True:
            if offset >= size:
                raise RtcpError("SDES chunk not terminated by a null octet")
            item_type = body[offset]
            if item_type == SDES_END:
                # §6.5: null octets up to the next 32-bit boundary end the chunk.
                offset = (offset + 4) & ~3
                if offset > size:
                    raise RtcpError("SDES chunk padding truncated")
                break
            if offset + 2 > size:
                raise RtcpError("SDES item header truncated")
            length = body[offset + 1]
            if offset + 2 + length > size:
                raise RtcpError("SDES item runs past the packet")
            items.append((item_type, bytes(body[offset + 2 : offset + 2 + length])))
            offset += 2 + length
        chunks.append(SdesChunk(ssrc, tuple(items)))
    if offset != size:
        raise RtcpError("SDES has octets after its chunks")
    return Sdes(tuple(chunks))


def _parse_bye(count: int, body: memoryview) -> Bye:
    need = 4 * count
    if len(body) < need:
        raise RtcpError(f"BYE with {count} SSRCs truncated")
    ssrcs = struct.unpack_from(f"!{count}I", body) if count else ()
    reason: str | None = None
    if len(body) > need:
        length = body[need]
        if need + 1 + length > len(body):
            raise RtcpError("BYE reason runs past the packet")
        reason = bytes(body[need + 1 : need + 1 + length]).decode("utf-8", "replace")
    return Bye(tuple(ssrcs), reason)
