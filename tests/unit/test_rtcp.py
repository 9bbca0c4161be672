"""Compound RTCP (media/rtcp.py): RFC 3550 §6.4-§6.7 and the Appendix A.2 validity checks."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from media.rtcp import (
    App,
    Bye,
    ReceiverReport,
    ReportBlock,
    RtcpError,
    RtcpPacket,
    RtcpUnknown,
    Sdes,
    SdesChunk,
    SenderReport,
    build_compound,
    ntp_middle32,
    parse_rtcp,
    sdes_cname,
)

FIXTURES = Path(__file__).parent / "fixtures" / "rtp"


def fixture(name: str) -> bytes:
    lines = (line.partition("#")[0] for line in (FIXTURES / name).read_text().splitlines())
    return bytes.fromhex("".join(lines))


SR_SDES = fixture("rtcp_sr_sdes.hex")
RR_BYE = fixture("rtcp_rr_bye.hex")
EMPTY_RR = bytes.fromhex("80c90001 00000000")  # RR, RC=0, SSRC 0


def test_sr_with_sdes_cname() -> None:
    sr, sdes = parse_rtcp(SR_SDES)
    assert sr == SenderReport(
        ssrc=0x12345678,
        ntp_timestamp=0xE86F5A31_40000000,
        rtp_timestamp=128000,
        packet_count=100,
        octet_count=16000,
        reports=(
            ReportBlock(
                ssrc=0xDEADBEEF,
                fraction_lost=13,
                cumulative_lost=5,
                highest_seq=0x00011F40,
                jitter=18,
                lsr=0x5A314000,
                dlsr=0x8000,
            ),
        ),
    )
    assert isinstance(sdes, Sdes)
    assert sdes.chunks[0].ssrc == 0x12345678
    assert sdes.chunks[0].cname == "alice@192.0.2.10"
    assert sdes == sdes_cname(0x12345678, "alice@192.0.2.10")


def test_rr_with_bye_reason_and_negative_cumulative_loss() -> None:
    rr, bye = parse_rtcp(RR_BYE)
    assert rr == ReceiverReport(
        ssrc=0xCAFEF00D,
        reports=(ReportBlock(0x12345678, 0, -1, 0x0002FFFF, 40, 0, 0),),
    )
    assert bye == Bye(ssrcs=(0xCAFEF00D,), reason="session ended")


@pytest.mark.parametrize("data", [SR_SDES, RR_BYE])
def test_fixtures_round_trip_byte_exact(data: bytes) -> None:
    assert build_compound(parse_rtcp(data)) == data
    assert build_compound(parse_rtcp(memoryview(bytearray(data)))) == data


def test_lsr_is_middle_32_bits_of_ntp() -> None:
    sr = parse_rtcp(SR_SDES)[0]
    assert isinstance(sr, SenderReport)
    assert ntp_middle32(sr.ntp_timestamp) == 0x5A314000


def test_every_type_round_trips() -> None:
    block = ReportBlock(1, 255, -0x800000, 0xFFFFFFFF, 0xFFFFFFFF, 7, 9)
    packets: list[RtcpPacket] = [
        SenderReport(1, 2, 3, 4, 5, (block, block), extension=b"\x01\x02\x03\x04"),
        ReceiverReport(6, (), extension=b"ext!"),
        Sdes(
            (
                SdesChunk(1, ((1, b"a@b"), (2, b"Alice"), (8, b"\x03abcxyz"))),
                SdesChunk(2, ()),  # no items: 4 null octets
                SdesChunk(3, ((1, b"ab"),)),  # ends on a boundary: 4 null octets
            )
        ),
        Bye((1, 2, 3)),
        Bye((), reason=""),
        Bye((4,), reason="x" * 255),
        App(subtype=31, ssrc=9, name=b"VOXE", data=b"12345678"),
        RtcpUnknown(packet_type=206, count=1, body=b"\x00" * 12),  # RFC 4585 PLI shape
    ]
    data = build_compound(packets)
    assert parse_rtcp(data) == packets
    assert build_compound(parse_rtcp(data)) == data


def test_empty_rr_is_valid() -> None:
    # The smallest compound packet: an RR with no report blocks (RFC 3550 §6.4.2).
    assert parse_rtcp(EMPTY_RR) == [ReceiverReport(0)]
    assert ReceiverReport(0).to_bytes() == EMPTY_RR


def test_sdes_keeps_other_items_and_decodes_bad_utf8_safely() -> None:
    chunk = SdesChunk(5, ((2, b"Al\xffce"), (1, b"\xfe@host")))
    (_, sdes) = parse_rtcp(EMPTY_RR + Sdes((chunk,)).to_bytes())
    assert isinstance(sdes, Sdes)
    assert sdes.chunks == (chunk,)
    assert sdes.chunks[0].cname == "\ufffd@host"
    assert SdesChunk(5, ((2, b"x"),)).cname is None


def test_padding_on_the_last_packet_is_stripped() -> None:
    # BYE with P set: SSRC + 4 octets of padding (count 4), length 2.
    bye = bytes.fromhex("a1cb0002cafef00d00000004")
    assert parse_rtcp(EMPTY_RR + bye) == [ReceiverReport(0), Bye((0xCAFEF00D,))]


def test_reduced_size_rtcp_needs_opting_in() -> None:
    pli = RtcpUnknown(206, 1, bytes(8)).to_bytes()
    with pytest.raises(RtcpError, match="must start with SR or RR"):
        parse_rtcp(pli)
    assert parse_rtcp(pli, allow_reduced_size=True) == [RtcpUnknown(206, 1, bytes(8))]


def _with(data: bytes, offset: int, value: bytes) -> bytes:
    return data[:offset] + value + data[offset + len(value) :]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "too short"),
        (b"\x81\xc9\x00", "too short"),
        (SR_SDES[:-1], "not whole 32-bit words"),
        (SR_SDES[:-4], "length field says"),
        (SR_SDES + b"\x81\xca\x00\x01", "length field says"),
        (_with(SR_SDES, 2, b"\x00\x20"), "length field says"),
        (_with(SR_SDES, 0, b"\x41"), "version 1"),
        (_with(SR_SDES, 52, b"\xc1"), "version 3"),  # the second packet is checked too
        (SR_SDES[52:], "must start with SR or RR"),
        (Bye((1,)).to_bytes(), "must start with SR or RR"),
        (_with(SR_SDES, 0, b"\xa1"), "padding bit set on a packet that is not the last"),
        (EMPTY_RR + bytes.fromhex("a1cb0001cafef000"), "bad RTCP padding count 0"),
        (EMPTY_RR + bytes.fromhex("a1cb0001cafef009"), "bad RTCP padding count 9"),
        (bytes.fromhex("81c90001cafef00d"), "RR with 1 report blocks truncated"),
        (bytes.fromhex("81c80001cafef00d"), "SR with 1 report blocks truncated"),
        (bytes.fromhex("80c80001cafef00d"), "SR with 0 report blocks truncated"),
        (bytes.fromhex("80c90000"), "RR with 0 report blocks truncated"),
        (EMPTY_RR + bytes.fromhex("82ca00021234567800000000"), "SDES with 2 chunks truncated"),
        (EMPTY_RR + bytes.fromhex("81ca000112345678"), "not terminated"),
        (EMPTY_RR + bytes.fromhex("81ca00021234567801056162"), "runs past the packet"),
        (EMPTY_RR + bytes.fromhex("81ca0002123456780101610001"), "not whole"),
        (EMPTY_RR + bytes.fromhex("81ca0003123456780000000001000000"), "after its chunks"),
        (EMPTY_RR + bytes.fromhex("81ca0003123456780000000000000000"), "after its chunks"),
        (EMPTY_RR + bytes.fromhex("82cb0001cafef00d"), "BYE with 2 SSRCs truncated"),
        (EMPTY_RR + bytes.fromhex("81cb0002cafef00d05616263"), "reason runs past"),
        (EMPTY_RR + bytes.fromhex("80cc0001cafef00d"), "APP packet truncated"),
    ],
)
def test_malformed_compounds_raise_rtcp_error(data: bytes, reason: str) -> None:
    with pytest.raises(RtcpError, match=reason) as info:
        parse_rtcp(data)
    assert reason in info.value.reason


def test_sdes_item_header_truncated() -> None:
    # Padding count 3 leaves the chunk ending on an item type without its length octet.
    data = EMPTY_RR + bytes.fromhex("a1ca0002123456780100" + "0003")
    with pytest.raises(RtcpError, match="item header truncated"):
        parse_rtcp(data)


@pytest.mark.parametrize(
    ("packet", "reason"),
    [
        (ReceiverReport(1, (ReportBlock(1, 256, 0, 0, 0, 0, 0),)), "fraction lost"),
        (ReceiverReport(1, (ReportBlock(1, 0, 0x800000, 0, 0, 0, 0),)), "signed 24-bit"),
        (ReceiverReport(1, (ReportBlock(1, 0, -0x800001, 0, 0, 0, 0),)), "signed 24-bit"),
        (ReceiverReport(1, (ReportBlock(1 << 32, 0, 0, 0, 0, 0, 0),)), "32-bit range"),
        (ReceiverReport(1 << 32), "32-bit range"),
        (ReceiverReport(1, (ReportBlock(1, 0, 0, 0, 0, 0, 0),) * 32), "5 bits"),
        (ReceiverReport(1, extension=b"abc"), "whole number of 32-bit words"),
        (SenderReport(1, 1 << 64, 0, 0, 0), "sender info"),
        (Sdes((SdesChunk(1, ((0, b"x"),)),)), "item type"),
        (Sdes((SdesChunk(1, ((1, b"x" * 256),)),)), "longer than 255"),
        (Bye((1 << 32,)), "32-bit range"),
        (Bye((1,), reason="é" * 128), "longer than 255"),
        (App(1, 1, b"ABC"), "4 octets"),
        (App(32, 1, b"ABCD"), "5 bits"),
        (App(1, -1, b"ABCD"), "32-bit range"),
        (RtcpUnknown(256, 0, b""), "packet type"),
        (RtcpUnknown(210, 0, bytes(4 * 65536)), "too long"),
    ],
)
def test_builders_refuse_unencodable_fields(packet: RtcpPacket, reason: str) -> None:
    with pytest.raises(RtcpError, match=reason):
        packet.to_bytes()


@given(st.binary(max_size=120))
def test_parse_rtcp_raises_only_rtcp_error(data: bytes) -> None:
    try:
        parse_rtcp(data)
        parse_rtcp(data, allow_reduced_size=True)
    except RtcpError:
        pass


@given(st.binary(max_size=100))
def test_arbitrary_bodies_after_a_valid_header_raise_only_rtcp_error(body: bytes) -> None:
    body = body[: len(body) - len(body) % 4]
    for packet_type in (200, 201, 202, 203, 204, 207):
        for first in (0x80, 0x81, 0x83, 0xA1, 0x9F):
            head = bytes((first, packet_type)) + (len(body) // 4).to_bytes(2, "big")
            with contextlib.suppress(RtcpError):
                parse_rtcp(EMPTY_RR + head + body)


report_blocks = st.builds(
    ReportBlock,
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, 255),
    st.integers(-0x800000, 0x7FFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, 0xFFFFFFFF),
)


@given(st.lists(report_blocks, max_size=31), st.integers(0, 0xFFFFFFFF))
def test_report_blocks_round_trip(blocks: list[ReportBlock], ssrc: int) -> None:
    rr = ReceiverReport(ssrc, tuple(blocks))
    assert parse_rtcp(rr.to_bytes()) == [rr]
