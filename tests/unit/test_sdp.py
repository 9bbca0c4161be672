"""SDP parse/serialize (media/sdp.py) against RFC bodies, each SdpError, and round trips."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media.sdp import (
    MAX_SDP_BYTES,
    Connection,
    MediaDescription,
    RtpMap,
    SdpError,
    connection_for,
    effective_direction,
    parse_sdp,
)
from tests.unit.sdp_examples import RFC3264_10_2_OFFER, WIRE, sdp

HEAD = ("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "t=0 0")

# RFC 3264 §10.1, Alice's offer (s= is empty in that RFC).
RFC3264_10_1_OFFER = sdp(
    "v=0",
    "o=alice 2890844526 2890844526 IN IP4 host.anywhere.com",
    "s=",
    "c=IN IP4 host.anywhere.com",
    "t=0 0",
    "m=audio 49170 RTP/AVP 0",
    "a=rtpmap:0 PCMU/8000",
    "m=video 51372 RTP/AVP 31",
    "a=rtpmap:31 H261/90000",
    "m=video 53000 RTP/AVP 32",
    "a=rtpmap:32 MPV/90000",
)
# RFC 4317 §2.8 answer: media-level c= for video (s= is a single space there).
RFC4317_2_8_ANSWER = sdp(
    "v=0",
    "o=bob 2808844564 2808844564 IN IP4 host.biloxi.example.com",
    "s= ",
    "c=IN IP4 host.biloxi.example.com",
    "t=0 0",
    "m=audio 49174 RTP/AVP 0",
    "a=rtpmap:0 PCMU/8000",
    "m=video 49172 RTP/AVP 32",
    "c=IN IP4 otherhost.biloxi.example.com",
    "a=rtpmap:32 MPV/90000",
)
# RFC 8866 §5 example: every session-level field in order, a multicast c=.
RFC8866_EXAMPLE = sdp(
    "v=0",
    "o=jdoe 3724394400 3724394405 IN IP4 198.51.100.1",
    "s=Call to John Smith",
    "i=SDP Offer #1",
    "u=http://www.jdoe.example.com/home.html",
    "e=Jane Doe <jane@jdoe.example.com>",
    "p=+1 617 555-6011",
    "c=IN IP4 198.51.100.1",
    "t=0 0",
    "m=audio 49170 RTP/AVP 0",
    "m=audio 49180 RTP/AVP 0",
    "m=video 51372 RTP/AVP 99",
    "c=IN IP6 2001:db8::2",
    "a=rtpmap:99 h263-1998/90000",
)
EVERYTHING = sdp(
    "v=0",
    "o=- 0 0 IN IP4 edge.example.com",
    "s=session",
    "c=IN IP4 233.252.0.1/127/3",
    "b=AS:128",
    "t=2873397496 2873404696",
    "r=7d 1h 0 25h",
    "z=2882844526 -1h 2898848070 0",
    "k=prompt",
    "x=unknown session line",
    "a=recvonly",
    "a=tool:voxedge",
    "m=audio 49170/2 RTP/AVP 0 96",
    "i=the audio",
    "b=TIAS:64000",
    "k=clear:secret",
    "y=unknown media line",
    "a=rtpmap:96 opus/48000/2",
    "a=fmtp:96 useinbandfec=1",
    "a=ptime:20",
    "a=rtcp:53020 IN IP6 2001:db8::1",
    "a=x-custom:kept as is",
    "a=flag",
    "a=empty:",
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
    "a=sctp-port:5000",
)
RFC_BODIES = {
    "rfc3264-10.1": RFC3264_10_1_OFFER,
    "rfc3264-10.2": RFC3264_10_2_OFFER,
    "rfc4317-2.8": RFC4317_2_8_ANSWER,
    "rfc8866-5": RFC8866_EXAMPLE,
    "everything": EVERYTHING,
}


def wire_body(name: str) -> bytes:
    return (WIRE / name).read_bytes().split(b"\r\n\r\n", 1)[1]


@pytest.mark.parametrize("body", RFC_BODIES.values(), ids=RFC_BODIES.keys())
def test_rfc_bodies_round_trip_byte_exact(body: bytes) -> None:
    assert parse_sdp(body).to_bytes() == body


@pytest.mark.parametrize("name", ["ipv6-in-sdp", "mult-ip-in-sdp"])
def test_rfc5118_bodies_round_trip_byte_exact(name: str) -> None:
    body = wire_body(name)
    assert parse_sdp(body).to_bytes() == body


def test_parses_rfc3264_offer_fields() -> None:
    sd = parse_sdp(RFC3264_10_1_OFFER)
    assert sd.version == 0
    assert (sd.origin.username, sd.origin.session_id, sd.origin.address) == (
        "alice",
        2890844526,
        "host.anywhere.com",
    )
    assert sd.session_name == ""
    assert sd.connection == Connection("IN", "IP4", "host.anywhere.com")
    assert sd.timing == ["t=0 0"]
    assert [(m.media, m.port, m.proto, m.formats) for m in sd.media] == [
        ("audio", 49170, "RTP/AVP", ["0"]),
        ("video", 51372, "RTP/AVP", ["31"]),
        ("video", 53000, "RTP/AVP", ["32"]),
    ]
    assert sd.media[0].rtpmap() == {"0": RtpMap(0, "PCMU", 8000)}


def test_rfc5118_ipv6_in_sdp() -> None:
    sd = parse_sdp(wire_body("ipv6-in-sdp"))
    assert sd.origin.addrtype == "IP6" and sd.origin.address == "2001:db8::20"
    assert connection_for(sd, sd.media[1]) == Connection("IN", "IP6", "2001:db8::20")
    assert sd.media[0].rtpmap()["2"] == RtpMap(2, "G726-32", 8000)


def test_rfc5118_mult_ip_in_sdp_has_per_media_connections() -> None:
    sd = parse_sdp(wire_body("mult-ip-in-sdp"))
    assert sd.connection is None
    assert sd.origin.address == "host.example.com"  # FQDN kept as text
    assert connection_for(sd, sd.media[0]) == Connection("IN", "IP4", "192.0.2.1")
    assert connection_for(sd, sd.media[1]) == Connection("IN", "IP6", "2001:db8::1")


def test_multicast_suffix_and_port_count_kept() -> None:
    sd = parse_sdp(EVERYTHING)
    assert sd.connection == Connection("IN", "IP4", "233.252.0.1", "127/3")
    assert sd.media[0].port_count == 2
    assert sd.timing[1:] == ["r=7d 1h 0 25h", "z=2882844526 -1h 2898848070 0"]


def test_bare_lf_accepted_and_written_as_crlf() -> None:
    body = RFC3264_10_2_OFFER.replace(b"\r\n", b"\n")
    assert parse_sdp(body).to_bytes() == RFC3264_10_2_OFFER
    mixed = RFC3264_10_2_OFFER.replace(b"\r\n", b"\n", 3)
    assert parse_sdp(mixed) == parse_sdp(RFC3264_10_2_OFFER)


def test_missing_final_line_end_and_trailing_blank_lines_accepted() -> None:
    expected = parse_sdp(RFC3264_10_2_OFFER)
    assert parse_sdp(RFC3264_10_2_OFFER[:-2]) == expected
    assert parse_sdp(RFC3264_10_2_OFFER + b"\r\n\r\n") == expected


def test_out_of_order_lines_are_written_in_rfc8866_order() -> None:
    body = sdp("v=0", "s=-", "a=sendonly", "t=0 0", "c=IN IP4 192.0.2.1", "o=- 1 2 IN IP4 h")
    assert parse_sdp(body).to_bytes() == sdp(
        "v=0", "o=- 1 2 IN IP4 h", "s=-", "c=IN IP4 192.0.2.1", "t=0 0", "a=sendonly"
    )


def test_unknown_lines_and_attributes_preserved_in_order() -> None:
    sd = parse_sdp(EVERYTHING)
    assert sd.unknown == [("x", "unknown session line")]
    media = sd.media[0]
    assert media.unknown == [("y", "unknown media line")]
    assert media.attribute_values("x-custom") == ["kept as is"]
    assert ("flag", None) in media.attributes and ("empty", "") in media.attributes


def test_media_helpers() -> None:
    sd = parse_sdp(EVERYTHING)
    audio = sd.media[0]
    assert audio.rtpmap() == {"96": RtpMap(96, "opus", 48000, 2)}
    assert audio.fmtp() == {"96": "useinbandfec=1"}
    assert audio.ptime == 20
    assert audio.rtcp == (53020, Connection("IN", "IP6", "2001:db8::1"))
    assert not audio.rtcp_mux
    assert audio.direction == "sendrecv"  # its own: none, so the default
    assert effective_direction(sd, audio) == "recvonly"  # the session's applies (RFC 8866 §6.7)


def test_rtcp_without_address_rtcp_mux_and_decimal_ptime() -> None:
    body = sdp(*HEAD, "m=audio 5000 RTP/AVP 0", "a=rtcp:5001", "a=rtcp-mux", "a=ptime:22.5")
    media = parse_sdp(body).media[0]
    assert media.rtcp == (5001, None)
    assert media.rtcp_mux
    assert media.ptime == 22  # RFC 8866 §6.4 allows a decimal; rounded to whole ms


def test_media_direction_overrides_session_direction() -> None:
    sd = parse_sdp(sdp(*HEAD, "a=sendonly", "m=audio 5000 RTP/AVP 0", "a=inactive"))
    assert effective_direction(sd, sd.media[0]) == "inactive"


def test_set_replace_remove_attributes() -> None:
    media = MediaDescription("audio", 5000, "RTP/AVP", ["0"])
    media.add_attribute("rtpmap", "0 PCMU/8000")
    media.add_attribute("ptime", "20")
    media.add_attribute("x", "1")
    media.add_attribute("ptime", "30")
    media.set_attribute("ptime", "40")  # replaces the first in place, drops the rest
    assert media.attributes == [("rtpmap", "0 PCMU/8000"), ("ptime", "40"), ("x", "1")]
    media.set_attribute("rtcp-mux")
    assert media.rtcp_mux
    assert media.remove_attribute("x") == 1 and not media.has_attribute("x")
    media.set_direction("sendonly")
    media.set_direction("inactive")
    assert media.attribute_values("inactive") == [None] and media.direction == "inactive"
    with pytest.raises(ValueError, match="unknown direction"):
        media.set_direction("sideways")


def test_to_bytes_refuses_line_injection() -> None:
    sd = parse_sdp(RFC3264_10_2_OFFER)
    sd.media[0].add_attribute("x", "1\r\nc=IN IP4 203.0.113.66")
    with pytest.raises(SdpError, match="CR, LF or NUL"):
        sd.to_bytes()


BAD = [
    (b"", None, "empty SDP"),
    (b"\r\n\r\n", None, "empty SDP"),
    (sdp("o=- 1 1 IN IP4 h", "v=0", "s=-"), 1, "must start with a v= line"),
    (sdp("v=1", "o=- 1 1 IN IP4 h", "s=-"), 1, "unsupported SDP version"),
    (sdp("v=0", "o=- 1 1 IN IP4 h", "s=-", "v=0"), 4, "more than one v= line"),
    (sdp("v=0", "o=- 1 IN IP4 h", "s=-"), 2, "malformed o= line"),
    (sdp("v=0", "o=- x 1 IN IP4 h", "s=-"), 2, "malformed o= line"),
    (sdp("v=0", "o=- 1 18446744073709551616 IN IP4 h", "s=-"), 2, "64-bit"),
    (sdp("v=0", "o=- 1 1 IN IP4 300.1.1.1", "s=-"), 2, "invalid IPv4 origin address"),
    (sdp("v=0", "o=- 1 1 IN IP4 h", "o=- 1 1 IN IP4 h", "s=-"), 3, "more than one o= line"),
    (sdp("v=0", "s=-", "t=0 0"), None, "missing o= line"),
    (sdp("v=0", "o=- 1 1 IN IP4 h"), None, "missing s= line"),
    (sdp(*HEAD, "garbage"), 6, "expected <type>=<value>"),
    (sdp(*HEAD, "a =x"), 6, "expected <type>=<value>"),
    (sdp(*HEAD, "a=x\ry"), 6, "stray CR or NUL"),
    (sdp(*HEAD[:3], "c=IN IP4"), 4, "malformed c= line"),
    (sdp(*HEAD[:3], "c=IN IP6 2001:db8:::1"), 4, "invalid IPv6 connection address"),
    (sdp(*HEAD[:3], "c=IN IP4 host_name"), 4, "invalid connection address"),
    (sdp(*HEAD[:3], "c=IN IP4 233.252.0.1/x"), 4, "bad multicast suffix"),
    (sdp(*HEAD, "c=IN IP4 192.0.2.2"), 6, "more than one c= line in session"),
    (sdp(*HEAD, "b=AS"), 6, "malformed b= line"),
    (sdp(*HEAD[:3], "t=now"), 4, "malformed t= line"),
    (sdp(*HEAD[:3], "r=7d 1h 0 25h"), 4, "r= line before any t= line"),
    (sdp(*HEAD, "m=audio 70000 RTP/AVP 0"), 6, "m= port 70000 out of range 0-65535"),
    (sdp(*HEAD, "m=audio 5000/0 RTP/AVP 0"), 6, "m= port count 0 out of range"),
    (sdp(*HEAD, "m=audio x RTP/AVP 0"), 6, "m= port is not a number"),
    (sdp(*HEAD, "m=audio 5000 RTP/AVP 128"), 6, "payload type 128 out of range 0-127"),
    (sdp(*HEAD, "m=audio 5000 RTP/AVP"), 6, "m= line has no formats"),
    (sdp(*HEAD, "m=audio 5000  RTP/AVP 0"), 6, "malformed m= line"),
    (sdp(*HEAD, "m=audio 5000"), 6, "malformed m= line"),
    (sdp(*HEAD, "m=audio 0 RTP/AVP 0", "c=IN IP4 h", "c=IN IP4 h"), 8, "in media description"),
    (sdp(*HEAD, "m=audio 0 RTP/AVP 0", "t=0 0"), 7, "t= line inside a media description"),
    (sdp(*HEAD, "a=:x"), 6, "bad attribute name"),
    (sdp(*HEAD, "m=audio 0 RTP/AVP 0", "a=rtpmap:0 PCMU"), 7, "malformed a=rtpmap"),
    (sdp(*HEAD, "m=audio 0 RTP/AVP 0", "a=rtpmap:200 X/8000"), 7, "payload type 200 out of"),
    (sdp(*HEAD, "m=audio 0 RTP/AVP 0", "a=rtpmap:0 PCMU/0"), 7, "clock rate 0 out of range"),
    (sdp(*HEAD, "m=audio 0 RTP/AVP 0", "a=rtpmap:0 PCMU/8000/0"), 7, "rtpmap channels 0"),
    (sdp(*HEAD, "m=audio 0 RTP/AVP 0", "a=fmtp: 0-15"), 7, "malformed a=fmtp"),
    (sdp(*HEAD, "m=audio 0 RTP/AVP 0", "a=ptime:0"), 7, "malformed a=ptime"),
    (sdp(*HEAD, "m=audio 0 RTP/AVP 0", "a=ptime:abc"), 7, "malformed a=ptime"),
    (sdp(*HEAD, "m=audio 0 RTP/AVP 0", "a=rtcp:99999"), 7, "a=rtcp port 99999 out of range"),
    (sdp(*HEAD, "m=audio 0 RTP/AVP 0", "a=rtcp:5001 IN IP4"), 7, "malformed a=rtcp address"),
    (sdp(*HEAD, "m=audio 0 RTP/AVP 0", "a=sendonly:x"), 7, "a=sendonly takes no value"),
    (sdp(*HEAD, "a=sendonly", "a=recvonly"), 7, "conflicting direction attributes"),
    (sdp(*HEAD, "m=audio 0 RTP/AVP 0", "a=rtcp-mux:1"), 7, "a=rtcp-mux takes no value"),
    (sdp(*HEAD[:2]) + "s=caf\xe9\r\n".encode("latin-1"), 3, "not UTF-8"),
]


@pytest.mark.parametrize(("body", "line", "fault"), BAD, ids=[b[2] for b in BAD])
def test_sdp_error_names_line_and_fault(body: bytes, line: int | None, fault: str) -> None:
    with pytest.raises(SdpError) as caught:
        parse_sdp(body)
    assert caught.value.line == line
    assert fault in str(caught.value)
    if line is not None:
        assert str(caught.value).startswith(f"line {line}: ")


def test_size_limit() -> None:
    body = sdp(*HEAD, "a=x:" + "y" * MAX_SDP_BYTES)
    with pytest.raises(SdpError, match="larger than 65536 bytes"):
        parse_sdp(body)


def test_line_limit() -> None:
    body = sdp(*HEAD, *["a=x"] * 1000)
    with pytest.raises(SdpError, match="more than 1000 lines"):
        parse_sdp(body)


def test_media_section_limit() -> None:
    assert len(parse_sdp(sdp(*HEAD, *["m=audio 0 RTP/AVP 0"] * 64)).media) == 64
    with pytest.raises(SdpError, match="line 70: more than 64 m= sections"):
        parse_sdp(sdp(*HEAD, *["m=audio 0 RTP/AVP 0"] * 65))


def test_rejected_stream_without_formats_tolerated() -> None:
    media = parse_sdp(sdp(*HEAD, "m=audio 0 RTP/AVP")).media[0]
    assert media.port == 0 and media.formats == []


@settings(max_examples=300)
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_raise_only_sdp_error(data: bytes) -> None:
    with contextlib.suppress(SdpError):
        parse_sdp(data)


_HEADS = [
    ("o=- 1 2 IN IP4 192.0.2.1", "s=-"),
    ("o=alice 2890844526 2890844526 IN IP6 2001:db8::1", "s="),
    ("o=bob 0 0 IN IP4 host.example.com", "s= "),
]
_LINES = [
    "i=info",
    "u=http://example.com/",
    "e=a@example.com",
    "p=+1 555",
    "c=IN IP4 192.0.2.1",
    "c=IN IP6 2001:db8::2",
    "c=IN IP4 233.252.0.1/127",
    "b=AS:64",
    "t=0 0",
    "r=1 2 3",
    "z=1 -1h",
    "k=clear:x",
    "x=whatever",
    "m=audio 49170 RTP/AVP 0 8 96",
    "m=audio 0 RTP/AVP 0",
    "m=video 5000/2 RTP/AVPF 97",
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
    "a=rtpmap:96 opus/48000/2",
    "a=rtpmap:0 PCMU/8000",
    "a=fmtp:96 minptime=10",
    "a=ptime:20",
    "a=rtcp:5001 IN IP4 192.0.2.9",
    "a=rtcp-mux",
    "a=sendonly",
    "a=recvonly",
    "a=candidate:1 1 UDP 2130706431 192.0.2.1 5000 typ host",
    "a=empty:",
]
# A known line, or a line of a sampled type with a fuzzed value (no line breaks).
_FUZZED = st.builds(
    "{}={}".format,
    st.sampled_from("abcikmrtxz"),
    st.text(st.characters(blacklist_characters="\r\n", codec="utf-8"), max_size=20),
)
_SDPISH = st.builds(
    lambda head, body: sdp("v=0", *head, *body),
    st.sampled_from(_HEADS),
    st.lists(st.sampled_from(_LINES) | st.sampled_from(_LINES) | _FUZZED, max_size=30),
)


@settings(max_examples=500)
@given(_SDPISH)
def test_parse_serialize_round_trip(data: bytes) -> None:
    try:
        sd = parse_sdp(data)
    except SdpError:
        return
    out = sd.to_bytes()
    assert parse_sdp(out) == sd
    assert parse_sdp(out).to_bytes() == out
