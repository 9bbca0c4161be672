"""The relay's RTP filter (media/rtp_filter.py): payload bounds (RFC 3550 §5.1, §5.3.1),
PT renumbering and PCMU<->PCMA transcoding (RFC 3551 §4.5.14), RFC 4733 DTMF taps."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from media.g711 import ALAW_TO_ULAW_BYTES, ULAW_TO_ALAW_BYTES
from media.rtp import RtpError, RtpPacket, build_dtmf_event, parse_rtp
from media.rtp_filter import RtpFilter, payload_bounds

PCMU = RtpPacket(0, 7, 1120, 0xDEADBEEF, payload=bytes(range(160)), marker=True)
# CSRCs, an RFC 8285 header extension and 4 padding octets: all must survive a rewrite.
DRESSED = RtpPacket(
    0,
    9,
    1440,
    0x11223344,
    payload=bytes(range(96, 256)),
    csrcs=(0xAABBCCDD, 0x01020304),
    extension=(0xBEDE, bytes.fromhex("10aa0000")),
    padding=4,
)


def dtmf(timestamp: int, duration: int, *, end: bool = False, pt: int = 101) -> bytes:
    return RtpPacket(
        pt, 1, timestamp, 5, build_dtmf_event(7, end=end, volume=10, duration=duration)
    ).to_bytes()


# -- payload_bounds ---------------------------------------------------------------------------


def test_bounds_skip_csrcs_and_extension_and_stop_at_the_padding() -> None:
    data = DRESSED.to_bytes()
    start, end = payload_bounds(data)
    assert (start, end) == (12 + 8 + 8, len(data) - 4)
    assert data[start:end] == DRESSED.payload


@pytest.mark.parametrize(
    "data",
    [
        b"",
        PCMU.to_bytes()[:11],
        b"\x40" + PCMU.to_bytes()[1:],  # version 1
        b"\x81" + PCMU.to_bytes()[1:12],  # one CSRC, no room for it
        b"\x90" + PCMU.to_bytes()[1:12] + b"\xbe\xde\x00",  # extension header truncated
        b"\x90" + PCMU.to_bytes()[1:12] + b"\xbe\xde\x00\x02\x00\x00\x00\x00",  # words missing
        b"\xa0" + PCMU.to_bytes()[1:12] + b"\x00",  # padding count 0
        b"\xa0" + PCMU.to_bytes()[1:12] + b"\x05\x05",  # padding beyond the header
    ],
)
def test_bounds_refuse_what_is_not_rtp(data: bytes) -> None:
    with pytest.raises(RtpError):
        payload_bounds(data)


@given(st.binary(min_size=12, max_size=40), st.integers(0, 0xFF))
def test_bounds_agree_with_the_full_parser(tail: bytes, first: int) -> None:
    data = bytes((first,)) + tail
    try:
        expected = parse_rtp(data).payload
    except RtpError:
        with pytest.raises(RtpError):
            payload_bounds(data)
        return
    start, end = payload_bounds(data)
    assert data[start:end] == expected


# -- payload map ------------------------------------------------------------------------------


@pytest.mark.parametrize("packet", [PCMU, DRESSED], ids=["plain", "csrc-ext-padding"])
def test_pcmu_becomes_pcma_with_everything_else_kept(packet: RtpPacket) -> None:
    rtp_filter = RtpFilter()
    rtp_filter.set_payload_map({0: (8, "ulaw_to_alaw")})
    data = packet.to_bytes()
    out = rtp_filter(data)
    assert out is not None and len(out) == len(data)
    got = parse_rtp(out)
    assert got.payload_type == 8
    assert got.payload == packet.payload.translate(ULAW_TO_ALAW_BYTES)
    assert (got.marker, got.sequence, got.timestamp, got.ssrc) == (
        packet.marker,
        packet.sequence,
        packet.timestamp,
        packet.ssrc,
    )
    assert (got.csrcs, got.extension, got.padding) == (
        packet.csrcs,
        packet.extension,
        packet.padding,
    )
    assert out[len(out) - packet.padding :] == data[len(data) - packet.padding :]  # verbatim


def test_pcma_becomes_pcmu() -> None:
    rtp_filter = RtpFilter()
    rtp_filter.set_payload_map({8: (0, "alaw_to_ulaw")})
    packet = RtpPacket(8, 1, 160, 2, payload=bytes(range(256)))
    out = rtp_filter(packet.to_bytes())
    assert out is not None
    assert parse_rtp(out) == RtpPacket(
        0, 1, 160, 2, payload=bytes(range(256)).translate(ALAW_TO_ULAW_BYTES)
    )


def test_renumbering_changes_only_the_payload_type_bits() -> None:
    rtp_filter = RtpFilter()
    rtp_filter.set_payload_map({101: (96, None)})
    data = dtmf(800, 160)
    data = data[:1] + bytes((0x80 | 101,)) + data[2:]  # marker set
    out = rtp_filter(data)
    assert out == data[:1] + bytes((0x80 | 96,)) + data[2:]


def test_payload_types_not_in_the_map_pass_as_the_same_object() -> None:
    rtp_filter = RtpFilter()
    rtp_filter.set_payload_map({0: (8, "ulaw_to_alaw")})
    data = RtpPacket(18, 1, 160, 2, payload=b"g729").to_bytes()
    assert rtp_filter(data) is data


def test_malformed_rtp_raises_for_the_relay_to_count() -> None:
    rtp_filter = RtpFilter()
    rtp_filter.set_payload_map({0: (8, "ulaw_to_alaw")})
    with pytest.raises(RtpError):
        rtp_filter(b"\x80\x00short")


@pytest.mark.parametrize(
    "mapping",
    [{128: (8, None)}, {0: (-1, None)}, {0: (8, "g722_to_opus")}],
    ids=["pt", "new-pt", "converter"],
)
def test_a_bad_mapping_is_refused_and_the_old_one_kept(
    mapping: dict[int, tuple[int, str | None]],
) -> None:
    rtp_filter = RtpFilter()
    rtp_filter.set_payload_map({0: (8, "ulaw_to_alaw")})
    with pytest.raises(ValueError):
        rtp_filter.set_payload_map(mapping)
    assert rtp_filter.active
    assert parse_rtp(rtp_filter(PCMU.to_bytes()) or b"").payload_type == 8


def test_active_only_while_a_map_or_dtmf_is_set() -> None:
    rtp_filter = RtpFilter()
    assert not rtp_filter.active
    rtp_filter.set_payload_map({0: (8, None)})
    assert rtp_filter.active
    rtp_filter.set_payload_map({})
    assert not rtp_filter.active
    rtp_filter.set_dtmf(101, None, forward=True)
    assert rtp_filter.active
    rtp_filter.set_dtmf(None, None, forward=True)
    assert not rtp_filter.active


# -- DTMF -------------------------------------------------------------------------------------


def test_dtmf_is_reported_once_and_consumed_when_not_forwarded() -> None:
    digits: list[tuple[str, int]] = []
    rtp_filter = RtpFilter()
    rtp_filter.set_dtmf(101, lambda d, ms: digits.append((d, ms)), forward=False)
    packets = [dtmf(800, 400), dtmf(800, 800)] + [dtmf(800, 1200, end=True)] * 3
    assert [rtp_filter(p) for p in packets] == [None] * 5
    assert digits == [("7", 150)]
    audio = PCMU.to_bytes()
    assert rtp_filter(audio) is audio


def test_forwarded_dtmf_goes_through_the_payload_map() -> None:
    digits: list[tuple[str, int]] = []
    rtp_filter = RtpFilter()
    rtp_filter.set_payload_map({0: (8, "ulaw_to_alaw"), 101: (96, None)})
    rtp_filter.set_dtmf(101, lambda d, ms: digits.append((d, ms)), forward=True, clock_rate=16000)
    out = rtp_filter(dtmf(800, 1600, end=True))
    assert out is not None and parse_rtp(out).payload_type == 96
    assert digits == [("7", 100)]


def test_a_bad_dtmf_payload_type_is_refused() -> None:
    with pytest.raises(ValueError):
        RtpFilter().set_dtmf(200, None, forward=True)
