"""RTP packets and hot-path helpers (media/rtp.py): RFC 3550 §5, RFC 5761 §4, RFC 4733 §2.3."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from media.rtp import (
    DTMF_EVENT_NAMES,
    DtmfEvent,
    RtpError,
    RtpPacket,
    build_dtmf_event,
    is_rtcp,
    parse_dtmf_event,
    parse_rtp,
    rtp_header_fields,
    set_payload_type,
    set_ssrc,
)

FIXTURES = Path(__file__).parent / "fixtures" / "rtp"


def fixture(name: str) -> bytes:
    lines = (line.partition("#")[0] for line in (FIXTURES / name).read_text().splitlines())
    return bytes.fromhex("".join(lines))


PCMU = fixture("pcmu.hex")
CSRC_EXT = fixture("csrc_ext.hex")
PADDED = fixture("padding.hex")
DTMF = fixture("dtmf.hex")


def test_pcmu_packet_fields() -> None:
    packet = parse_rtp(PCMU)
    assert packet.version == 2
    assert packet.marker is True
    assert packet.payload_type == 0
    assert packet.sequence == 8000
    assert packet.timestamp == 128000
    assert packet.ssrc == 0xDEADBEEF
    assert packet.csrcs == ()
    assert packet.extension is None
    assert packet.padding == 0
    assert len(packet.payload) == 160
    assert packet.payload[:8] == bytes.fromhex("fffefdfeff7e7d7e")


def test_csrcs_and_one_byte_header_extension() -> None:
    packet = parse_rtp(CSRC_EXT)
    assert packet.payload_type == 111
    assert packet.marker is False
    assert packet.sequence == 0x1234
    assert packet.timestamp == 16000
    assert packet.ssrc == 0x11223344
    assert packet.csrcs == (0xAABBCCDD, 0x01020304)
    # RFC 8285 §4.2: profile 0xBEDE; element ID 1, L=0 (one octet), then padding octets.
    assert packet.extension == (0xBEDE, bytes.fromhex("10aa0000"))
    assert packet.payload == bytes.fromhex("780be4c136ecc58d")


def test_padding_is_stripped_from_payload() -> None:
    packet = parse_rtp(PADDED)
    assert packet.payload_type == 8
    assert packet.sequence == 1
    assert packet.timestamp == 160
    assert packet.ssrc == 0x0BADCAFE
    assert packet.padding == 4
    assert packet.payload == b"\xd5" * 20


def test_dtmf_packet_payload() -> None:
    packet = parse_rtp(DTMF)
    assert (packet.marker, packet.payload_type, packet.sequence) == (True, 101, 1000)
    event = parse_dtmf_event(packet.payload)
    assert event == DtmfEvent(event=5, end=False, volume=10, duration=160)
    assert DTMF_EVENT_NAMES[event.event] == "5"


@pytest.mark.parametrize("name", ["pcmu.hex", "csrc_ext.hex", "padding.hex", "dtmf.hex"])
def test_fixtures_round_trip_byte_exact(name: str) -> None:
    data = fixture(name)
    assert parse_rtp(data).to_bytes() == data
    assert parse_rtp(bytearray(data)).to_bytes() == data
    assert parse_rtp(memoryview(data)).to_bytes() == data


def test_build_matches_fixture() -> None:
    packet = RtpPacket(
        payload_type=111,
        sequence=0x1234,
        timestamp=16000,
        ssrc=0x11223344,
        payload=bytes.fromhex("780be4c136ecc58d"),
        csrcs=(0xAABBCCDD, 0x01020304),
        extension=(0xBEDE, bytes.fromhex("10aa0000")),
    )
    assert packet.to_bytes() == CSRC_EXT


def test_empty_extension_and_payload_round_trip() -> None:
    packet = RtpPacket(payload_type=0, sequence=0, timestamp=0, ssrc=0, extension=(0x1000, b""))
    assert parse_rtp(packet.to_bytes()) == packet


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "too short"),
        (PCMU[:11], "too short"),
        (b"\x40" + PCMU[1:], "version 1"),
        (b"\x00" + PCMU[1:], "version 0"),
        (b"\xc0" + PCMU[1:], "version 3"),
        (b"\x81" + PCMU[1:12], "CSRC list truncated"),
        (CSRC_EXT[:18], "CSRC list truncated"),
        (CSRC_EXT[:22], "no room"),
        (CSRC_EXT[:27], "words do not fit"),
        (b"\x90" + PCMU[1:12] + b"\xbe\xde\x00", "no room"),
        (b"\x90" + PCMU[1:12] + b"\xbe\xde\x00\x02\x00\x00\x00\x00", "words do not fit"),
        (b"\xa0" + PCMU[1:12] + b"\x00", "padding count is 0"),
        (b"\xa0" + PCMU[1:12] + b"\x05\x05", "exceeds"),
        (b"\xa0" + PCMU[1:12], "padding count"),  # the count octet would be in the header
    ],
)
def test_malformed_packets_raise_rtp_error(data: bytes, reason: str) -> None:
    with pytest.raises(RtpError, match=reason) as info:
        parse_rtp(data)
    assert reason in info.value.reason


def test_padding_may_consume_the_whole_payload() -> None:
    packet = parse_rtp(b"\xa0" + PCMU[1:12] + b"\x00\x00\x03")
    assert (packet.payload, packet.padding) == (b"", 3)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"payload_type": 128}, "payload type"),
        ({"sequence": 65536}, "sequence"),
        ({"timestamp": -1}, "timestamp"),
        ({"ssrc": 1 << 32}, "SSRC"),
        ({"csrcs": tuple(range(16))}, "CSRC"),
        ({"csrcs": (-1,)}, "CSRC"),
        ({"padding": 256}, "padding"),
        ({"extension": (0x10000, b"")}, "profile"),
        ({"extension": (0xBEDE, b"\x10")}, "32-bit words"),
        ({"version": 1}, "version"),
    ],
)
def test_to_bytes_refuses_unencodable_fields(fields: dict[str, object], reason: str) -> None:
    base: dict[str, object] = {"payload_type": 0, "sequence": 0, "timestamp": 0, "ssrc": 0}
    base.update(fields)
    with pytest.raises(RtpError, match=reason):
        RtpPacket(**base).to_bytes()  # type: ignore[arg-type]


@given(st.binary(max_size=80))
def test_parse_rtp_raises_only_rtp_error(data: bytes) -> None:
    try:
        packet = parse_rtp(data)
    except RtpError:
        return
    # Whatever parses re-serialises to the same length (padding contents aside).
    assert len(packet.to_bytes()) == len(data)


@given(
    pt=st.integers(0, 127),
    seq=st.integers(0, 0xFFFF),
    ts=st.integers(0, 0xFFFFFFFF),
    ssrc=st.integers(0, 0xFFFFFFFF),
    marker=st.booleans(),
    csrcs=st.lists(st.integers(0, 0xFFFFFFFF), max_size=15).map(tuple),
    ext=st.none() | st.tuples(st.integers(0, 0xFFFF), st.binary(max_size=12).map(lambda b: b * 4)),
    payload=st.binary(max_size=40),
    padding=st.integers(0, 255),
)
def test_build_parse_round_trip(
    pt: int,
    seq: int,
    ts: int,
    ssrc: int,
    marker: bool,
    csrcs: tuple[int, ...],
    ext: tuple[int, bytes] | None,
    payload: bytes,
    padding: int,
) -> None:
    packet = RtpPacket(pt, seq, ts, ssrc, payload, marker, csrcs, ext, padding)
    data = packet.to_bytes()
    assert parse_rtp(data) == packet
    assert rtp_header_fields(data) == (pt, seq, ts, ssrc)


# --- hot path ------------------------------------------------------------------------------


def test_rtp_header_fields_reads_any_buffer_type() -> None:
    expected = (0, 8000, 128000, 0xDEADBEEF)
    assert rtp_header_fields(PCMU) == expected
    assert rtp_header_fields(bytearray(PCMU)) == expected
    assert rtp_header_fields(memoryview(PCMU)) == expected
    assert rtp_header_fields(DTMF) == (101, 1000, 15000, 0x12345678)  # marker masked off


@pytest.mark.parametrize("data", [b"", PCMU[:11], b"\x40" + PCMU[1:]])
def test_rtp_header_fields_rejects_short_or_wrong_version(data: bytes) -> None:
    with pytest.raises(RtpError):
        rtp_header_fields(data)


@given(st.binary(max_size=20))
def test_rtp_header_fields_raises_only_rtp_error(data: bytes) -> None:
    with contextlib.suppress(RtpError):
        rtp_header_fields(data)


def test_is_rtcp_demultiplexes_by_second_octet() -> None:
    # RFC 5761 §4: 192-223 is RTCP (SR 200, RR 201, ..., PSFB 206, XR 207).
    assert is_rtcp(fixture("rtcp_sr_sdes.hex"))
    assert is_rtcp(fixture("rtcp_rr_bye.hex"))
    assert is_rtcp(b"\x80\xc0")
    assert is_rtcp(b"\x80\xdf")
    assert not is_rtcp(b"\x80\xbf")
    assert not is_rtcp(b"\x80\xe0")
    assert not is_rtcp(PCMU)
    assert not is_rtcp(DTMF)  # PT 101 with marker is 0xe5: RTP
    assert not is_rtcp(b"\x80")
    assert not is_rtcp(b"")
    assert is_rtcp(memoryview(fixture("rtcp_rr_bye.hex")))


def test_set_ssrc_and_payload_type_in_place() -> None:
    buf = bytearray(DTMF)
    set_ssrc(buf, 0xCAFEBABE)
    set_payload_type(buf, 96)
    packet = parse_rtp(buf)
    assert packet.ssrc == 0xCAFEBABE
    assert packet.payload_type == 96
    assert packet.marker is True  # kept
    assert buf[12:] == DTMF[12:]
    assert (packet.sequence, packet.timestamp) == (1000, 15000)


def test_set_helpers_work_on_a_memoryview_slice() -> None:
    datagram = bytearray(b"xx" + PCMU)
    view = memoryview(datagram)[2:]
    set_ssrc(view, 1)
    set_payload_type(view, 8)
    assert rtp_header_fields(view) == (8, 8000, 128000, 1)
    assert datagram[:2] == b"xx"


@pytest.mark.parametrize(
    ("call", "reason"),
    [
        (lambda: set_ssrc(bytearray(11), 1), "too short"),
        (lambda: set_ssrc(bytearray(PCMU), 1 << 32), "SSRC"),
        (lambda: set_ssrc(bytearray(PCMU), -1), "SSRC"),
        (lambda: set_payload_type(bytearray(11), 1), "too short"),
        (lambda: set_payload_type(bytearray(PCMU), 128), "payload type"),
    ],
)
def test_set_helpers_refuse_bad_input(call: object, reason: str) -> None:
    assert callable(call)
    with pytest.raises(RtpError, match=reason):
        call()


# --- RFC 4733 ------------------------------------------------------------------------------


def test_dtmf_end_packet_and_reserved_bit_ignored() -> None:
    # E=1, R=1 (must be ignored on receipt), volume 10, duration 800.
    assert parse_dtmf_event(bytes.fromhex("0bca0320")) == DtmfEvent(11, True, 10, 800)
    assert DTMF_EVENT_NAMES[11] == "#"


def test_build_dtmf_event_round_trip() -> None:
    assert build_dtmf_event(5, end=False, volume=10, duration=160) == DTMF[12:]
    data = build_dtmf_event(11, end=True, volume=63, duration=0xFFFF)
    assert data == bytes.fromhex("0bbfffff")
    assert parse_dtmf_event(data) == DtmfEvent(11, True, 63, 0xFFFF)


@pytest.mark.parametrize("payload", [b"", b"\x05\x0a\x00", b"\x05\x0a\x00\xa0\x00"])
def test_dtmf_payload_of_wrong_size_raises(payload: bytes) -> None:
    with pytest.raises(RtpError, match="4 octets"):
        parse_dtmf_event(payload)


@pytest.mark.parametrize(
    ("event", "volume", "duration", "reason"),
    [(256, 0, 0, "event"), (-1, 0, 0, "event"), (1, 64, 0, "volume"), (1, 0, 65536, "duration")],
)
def test_build_dtmf_event_refuses_out_of_range(
    event: int, volume: int, duration: int, reason: str
) -> None:
    with pytest.raises(RtpError, match=reason):
        build_dtmf_event(event, end=False, volume=volume, duration=duration)
