"""RFC 3264 offer/answer and the relay rewrite (media/offer_answer.py)."""

from __future__ import annotations

import copy

import pytest

from media.offer_answer import (
    G722,
    OPUS,
    PCMA,
    PCMU,
    TELEPHONE_EVENT,
    Codec,
    answer,
    answer_media,
    is_hold,
    offer,
    rewrite_for_relay,
)
from media.sdp import Connection, MediaDescription, RtpMap, parse_sdp
from tests.unit.sdp_examples import RFC3264_10_2_OFFER, WIRE, sdp

G723 = Codec("G723", 8000, static_pt=4)
ILBC = Codec("iLBC", 8000)


def audio(*lines: str, session: tuple[str, ...] = ()) -> MediaDescription:
    head = ("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "t=0 0")
    return parse_sdp(sdp(*head, *session, *lines)).media[0]


ALICE = ("o=alice 2890844526 2890844526 IN IP4 host.atlanta.example.com", "s= ")
ATLANTA = ("c=IN IP4 host.atlanta.example.com", "t=0 0")
# RFC 4317 §2.1 / §2.3 offer: three audio codecs, two video codecs.
RFC4317_2_1_OFFER = sdp(
    "v=0",
    *ALICE,
    *ATLANTA,
    "m=audio 49170 RTP/AVP 0 8 97",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:97 iLBC/8000",
    "m=video 51372 RTP/AVP 31 32",
    "a=rtpmap:31 H261/90000",
    "a=rtpmap:32 MPV/90000",
)
# RFC 4317 §2.4: a second, send-only stream of telephone-event only.
RFC4317_2_4_OFFER = sdp(
    "v=0",
    *ALICE,
    *ATLANTA,
    "m=audio 49170 RTP/AVP 0 97",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:97 iLBC/8000",
    "m=audio 49172 RTP/AVP 98",
    "a=rtpmap:98 telephone-event/8000",
    "a=sendonly",
)
# RFC 3264 §10.1, Bob's second offer: a rejected video stream and a telephone-events stream.
RFC3264_10_1_REOFFER = sdp(
    "v=0",
    "o=bob 2890844730 2890844731 IN IP4 host.example.com",
    "s=",
    "c=IN IP4 host.example.com",
    "t=0 0",
    "m=audio 65422 RTP/AVP 0",
    "a=rtpmap:0 PCMU/8000",
    "m=video 0 RTP/AVP 31",
    "m=video 53000 RTP/AVP 32",
    "a=rtpmap:32 MPV/90000",
    "m=audio 51434 RTP/AVP 110",
    "a=rtpmap:110 telephone-events/8000",
    "a=recvonly",
)


def edge_answer(body: bytes, codecs: list[Codec], address: str = "203.0.113.5") -> bytes:
    offered = parse_sdp(body)
    ports = [20000 + 2 * i for i in range(len(offered.media))]
    return answer(
        offered, codecs, address=address, ports=ports, session_id=7, session_version=1
    ).to_bytes()


def test_rfc3264_10_2_answer_keeps_offer_order_and_inactive() -> None:
    assert edge_answer(RFC3264_10_2_OFFER, [G723, PCMU]) == sdp(
        "v=0",
        "o=voxedge 7 1 IN IP4 203.0.113.5",
        "s=-",
        "c=IN IP4 203.0.113.5",
        "t=0 0",
        "m=audio 20000 RTP/AVP 0 4",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:4 G723/8000",
        "a=inactive",
    )


def test_rfc4317_2_1_audio_accepted_video_rejected_with_offered_formats() -> None:
    assert edge_answer(RFC4317_2_1_OFFER, [PCMA, PCMU], address="2001:db8::5") == sdp(
        "v=0",
        "o=voxedge 7 1 IN IP6 2001:db8::5",
        "s=-",
        "c=IN IP6 2001:db8::5",
        "t=0 0",
        "m=audio 20000 RTP/AVP 0 8",  # the offerer's order, not ours (RFC 3264 §6.1)
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=sendrecv",
        "m=video 0 RTP/AVP 31 32",  # RFC 3264 §6: rejected, formats kept
    )


def test_rfc4317_2_3_dynamic_payload_type_answered_with_offerers_number() -> None:
    answered = parse_sdp(edge_answer(RFC4317_2_1_OFFER, [ILBC]))
    assert answered.media[0].formats == ["97"]
    assert answered.media[0].rtpmap() == {"97": RtpMap(97, "iLBC", 8000)}


def test_rfc4317_2_4_telephone_event_only_stream_is_declined() -> None:
    answered = parse_sdp(edge_answer(RFC4317_2_4_OFFER, [PCMU, TELEPHONE_EVENT]))
    assert [(m.port, m.formats) for m in answered.media] == [(20000, ["0"]), (0, ["98"])]


def test_rfc3264_10_1_reoffer_one_answer_line_per_offer_line() -> None:
    answered = parse_sdp(edge_answer(RFC3264_10_1_REOFFER, [PCMU, TELEPHONE_EVENT]))
    assert [(m.media, m.port, m.formats) for m in answered.media] == [
        ("audio", 20000, ["0"]),
        ("video", 0, ["31"]),
        ("video", 0, ["32"]),
        ("audio", 0, ["110"]),  # "telephone-events" (sic) is no codec of ours
    ]


def test_answer_round_trips_and_copies_offer_timing() -> None:
    offered = parse_sdp(
        sdp("v=0", *ALICE, *ATLANTA[:1], "t=3034423619 3042462419", "m=audio 1 RTP/AVP 0")
    )
    answered = answer(
        offered, [PCMU], address="192.0.2.9", ports=[4000], session_id=1, session_version=2
    )
    assert answered.timing == ["t=3034423619 3042462419"]  # RFC 3264 §6
    assert parse_sdp(answered.to_bytes()) == answered


def test_answer_needs_one_port_per_stream_and_an_ip_literal() -> None:
    offered = parse_sdp(RFC4317_2_1_OFFER)
    with pytest.raises(ValueError, match="1 ports for 2 m= lines"):
        answer(offered, [PCMU], address="192.0.2.9", ports=[4000], session_id=1, session_version=1)
    with pytest.raises(ValueError, match="IP literal"):
        answer(
            offered, [PCMU], address="edge.example", ports=[1, 2], session_id=1, session_version=1
        )


def test_static_payload_types_match_by_number_without_rtpmap() -> None:
    answered = answer_media(audio("m=audio 5000 RTP/AVP 18 9 0"), [PCMU, G722], port=4000)
    assert answered.formats == ["9", "0"]
    assert answered.rtpmap() == {"9": RtpMap(9, "G722", 8000), "0": RtpMap(0, "PCMU", 8000)}


def test_codec_names_are_case_insensitive_and_opus_needs_two_channels() -> None:
    offered = audio(
        "m=audio 5000 RTP/AVP 111 112", "a=rtpmap:111 OPUS/48000/2", "a=rtpmap:112 pcma/8000"
    )
    answered = answer_media(offered, [PCMA, OPUS], port=4000)
    assert answered.formats == ["111", "112"]
    assert answered.attribute_values("rtpmap") == ["111 OPUS/48000/2", "112 pcma/8000"]
    mono = audio("m=audio 5000 RTP/AVP 111", "a=rtpmap:111 opus/48000")
    assert answer_media(mono, [OPUS], port=4000).port == 0


def test_no_common_codec_rejects_with_port_zero_keeping_formats() -> None:
    offered = audio("m=audio 5000 RTP/AVP 18 97", "a=rtpmap:97 iLBC/8000", "a=rtcp-mux")
    answered = answer_media(offered, [PCMU, PCMA], port=4000)
    assert (answered.port, answered.formats, answered.attributes) == (0, ["18", "97"], [])
    assert answered.m_line() == "audio 0 RTP/AVP 18 97"


@pytest.mark.parametrize(
    ("proto", "allow_srtp", "accepted"),
    [
        ("RTP/AVP", False, True),
        ("RTP/AVPF", False, True),
        ("RTP/SAVP", False, False),
        ("RTP/SAVP", True, True),
        ("RTP/SAVPF", True, True),
        ("UDP/TLS/RTP/SAVPF", True, False),
    ],
)
def test_proto_support(proto: str, allow_srtp: bool, accepted: bool) -> None:
    offered = audio(f"m=audio 5000 {proto} 0")
    answered = answer_media(offered, [PCMU], port=4000, allow_srtp=allow_srtp)
    assert (answered.port != 0) is accepted
    assert answered.proto == proto


def test_non_audio_and_already_rejected_streams_are_rejected() -> None:
    video = parse_sdp(RFC4317_2_1_OFFER).media[1]
    assert answer_media(video, [PCMU], port=4000).port == 0
    assert answer_media(audio("m=audio 0 RTP/AVP 0"), [PCMU], port=4000).port == 0


@pytest.mark.parametrize(
    ("offered_fmtp", "answered_fmtp"),
    [
        (None, "0-15"),  # RFC 4733 §2.4.1: no fmtp means 0-15
        ("0-15", "0-15"),
        ("0-16", "0-16"),
        ("0-11,16,32-40", "0-11,16"),
        ("weird", "weird"),  # cannot intersect: keep the offer's
    ],
)
def test_telephone_event_fmtp_intersected(offered_fmtp: str | None, answered_fmtp: str) -> None:
    lines = ["m=audio 5000 RTP/AVP 0 101", "a=rtpmap:101 telephone-event/8000"]
    if offered_fmtp is not None:
        lines.append(f"a=fmtp:101 {offered_fmtp}")
    answered = answer_media(audio(*lines), [PCMU, TELEPHONE_EVENT], port=4000)
    assert answered.formats == ["0", "101"]
    assert answered.fmtp() == {"101": answered_fmtp}


def test_telephone_event_dropped_when_no_event_in_common_or_not_supported() -> None:
    lines = ["m=audio 5000 RTP/AVP 0 101", "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 32-40"]
    assert answer_media(audio(*lines), [PCMU, TELEPHONE_EVENT], port=4000).formats == ["0"]
    assert answer_media(audio(*lines[:2]), [PCMU], port=4000).formats == ["0"]
    wideband = ["m=audio 5000 RTP/AVP 0 101", "a=rtpmap:101 telephone-event/48000"]
    assert answer_media(audio(*wideband), [PCMU, TELEPHONE_EVENT], port=4000).formats == ["0"]


@pytest.mark.parametrize(
    ("offered", "answered"),
    [
        ("sendrecv", "sendrecv"),
        ("sendonly", "recvonly"),
        ("recvonly", "sendonly"),
        ("inactive", "inactive"),
    ],
)
def test_direction_matrix(offered: str, answered: str) -> None:
    media = answer_media(audio("m=audio 5000 RTP/AVP 0", f"a={offered}"), [PCMU], port=4000)
    assert media.direction == answered
    # the same direction given at session level applies to the stream (RFC 8866 §6.7)
    session = ("a=" + offered,)
    offered_sdp = parse_sdp(sdp("v=0", *ALICE, *ATLANTA, *session, "m=audio 5000 RTP/AVP 0"))
    full = answer(
        offered_sdp, [PCMU], address="192.0.2.9", ports=[4000], session_id=1, session_version=1
    )
    assert full.media[0].direction == answered


@pytest.mark.parametrize(
    ("offered", "answered"), [("sendrecv", "recvonly"), ("recvonly", "inactive")]
)
def test_legacy_hold_connection_0000(offered: str, answered: str) -> None:
    held = parse_sdp(
        sdp("v=0", *ALICE, "c=IN IP4 0.0.0.0", "t=0 0", "m=audio 5000 RTP/AVP 0", f"a={offered}")
    )
    full = answer(held, [PCMU], address="192.0.2.9", ports=[4000], session_id=1, session_version=1)
    assert full.media[0].direction == answered


def test_rtcp_mux_accepted_only_if_offered() -> None:
    assert answer_media(audio("m=audio 5000 RTP/AVP 0", "a=rtcp-mux"), [PCMU], port=4000).rtcp_mux
    assert not answer_media(audio("m=audio 5000 RTP/AVP 0"), [PCMU], port=4000).rtcp_mux


def test_ptime_echoed_or_chosen() -> None:
    offered = audio("m=audio 5000 RTP/AVP 0", "a=ptime:30")
    assert answer_media(offered, [PCMU], port=4000).ptime == 30
    assert answer_media(offered, [PCMU], port=4000, ptime=20).ptime == 20
    assert answer_media(audio("m=audio 5000 RTP/AVP 0"), [PCMU], port=4000).ptime is None


def test_answer_port_checked() -> None:
    with pytest.raises(ValueError, match="out of range"):
        answer_media(audio("m=audio 5000 RTP/AVP 0"), [PCMU], port=0)


def test_offer_assigns_static_and_dynamic_payload_types() -> None:
    made = offer(
        [PCMU, OPUS, G722, TELEPHONE_EVENT],
        address="192.0.2.9",
        port=30000,
        session_id=5,
        session_version=1,
    )
    assert made.to_bytes() == sdp(
        "v=0",
        "o=voxedge 5 1 IN IP4 192.0.2.9",
        "s=-",
        "c=IN IP4 192.0.2.9",
        "t=0 0",
        "m=audio 30000 RTP/AVP 0 96 9 97",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:96 opus/48000/2",
        "a=rtpmap:9 G722/8000",
        "a=rtpmap:97 telephone-event/8000",
        "a=fmtp:97 0-16",
        "a=ptime:20",
        "a=sendrecv",
    )
    assert parse_sdp(made.to_bytes()) == made


def test_offer_answered_by_itself_is_symmetric() -> None:
    made = offer(
        [OPUS, PCMU, TELEPHONE_EVENT],
        address="192.0.2.9",
        port=30000,
        session_id=5,
        session_version=1,
        direction="sendonly",
    )
    answered = answer(
        made,
        [PCMU, OPUS, TELEPHONE_EVENT],
        address="192.0.2.10",
        ports=[40000],
        session_id=9,
        session_version=1,
    )
    assert answered.media[0].formats == made.media[0].formats
    assert answered.media[0].direction == "recvonly"


def test_offer_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="at least one codec"):
        offer([], address="192.0.2.9", port=30000, session_id=5, session_version=1)
    with pytest.raises(ValueError, match="unknown direction"):
        offer(
            [PCMU], address="192.0.2.9", port=30000, session_id=5, session_version=1, direction="up"
        )


# RFC 4317 §2.8 answer plus what a WebRTC-ish peer adds: ICE, a=rtcp, rtcp-mux, extras.
PEER = sdp(
    "v=0",
    "o=bob 2808844564 2808844564 IN IP4 host.biloxi.example.com",
    "s= ",
    "c=IN IP4 198.51.100.7",
    "t=0 0",
    "a=ice-ufrag:F7gI",
    "a=ice-pwd:x9cml/YzichV2+XlhiMu8g",
    "a=x-session:kept",
    "m=audio 49174 RTP/AVP 0 101",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:101 telephone-event/8000",
    "a=rtcp:49175 IN IP4 198.51.100.7",
    "a=candidate:1 1 UDP 2130706431 198.51.100.7 49174 typ host",
    "a=end-of-candidates",
    "a=x-custom:kept",
    "m=video 49172 RTP/AVP 32",
    "c=IN IP4 otherhost.biloxi.example.com",
    "a=rtpmap:32 MPV/90000",
    "a=rtcp:49199",
    "a=rtcp-mux",
    "a=ice-options:trickle",
    "m=audio 0 RTP/AVP 8",
    "c=IN IP4 198.51.100.99",
)


def test_rewrite_for_relay() -> None:
    original = parse_sdp(PEER)
    before = copy.deepcopy(original)
    out = rewrite_for_relay(original, "203.0.113.5", [20000, 20002, 20004])
    assert original == before  # a copy; the input is untouched
    assert out.to_bytes() == sdp(
        "v=0",
        "o=bob 2808844564 2808844564 IN IP4 host.biloxi.example.com",
        "s= ",
        "c=IN IP4 203.0.113.5",
        "t=0 0",
        "a=x-session:kept",
        "m=audio 20000 RTP/AVP 0 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=rtcp:20001 IN IP4 203.0.113.5",
        "a=x-custom:kept",
        "m=video 20002 RTP/AVP 32",
        "c=IN IP4 203.0.113.5",
        "a=rtpmap:32 MPV/90000",
        "a=rtcp-mux",
        "m=audio 0 RTP/AVP 8",
        "c=IN IP4 198.51.100.99",  # rejected stream: left alone
    )


def test_rewrite_for_relay_ipv6_per_media_connection() -> None:
    body = WIRE.joinpath("mult-ip-in-sdp").read_bytes().split(b"\r\n\r\n", 1)[1]
    out = rewrite_for_relay(parse_sdp(body), "2001:db8::5", [20000, 20002])
    assert out.connection is None
    assert [m.connection for m in out.media] == [Connection("IN", "IP6", "2001:db8::5")] * 2
    assert [m.port for m in out.media] == [20000, 20002]


def test_rewrite_keeps_hold_direction_and_converts_legacy_hold() -> None:
    held = parse_sdp(sdp("v=0", *ALICE, *ATLANTA, "m=audio 5000 RTP/AVP 0", "a=sendonly"))
    assert rewrite_for_relay(held, "203.0.113.5", [20000]).media[0].direction == "sendonly"
    legacy = parse_sdp(sdp("v=0", *ALICE, "c=IN IP4 0.0.0.0", "t=0 0", "m=audio 5000 RTP/AVP 0"))
    out = rewrite_for_relay(legacy, "203.0.113.5", [20000])
    assert out.connection == Connection("IN", "IP4", "203.0.113.5")
    assert out.media[0].attribute_values("sendonly") == [None]
    assert is_hold(legacy) and is_hold(out)


def test_rewrite_checks_ports() -> None:
    with pytest.raises(ValueError, match="1 ports for 3 m= lines"):
        rewrite_for_relay(parse_sdp(PEER), "203.0.113.5", [20000])
    with pytest.raises(ValueError, match="out of range"):
        rewrite_for_relay(parse_sdp(PEER), "203.0.113.5", [65535, 20002, 0])


@pytest.mark.parametrize(
    ("lines", "held"),
    [
        (("c=IN IP4 192.0.2.1", "m=audio 5000 RTP/AVP 0"), False),
        (("c=IN IP4 192.0.2.1", "m=audio 5000 RTP/AVP 0", "a=sendonly"), True),
        (("c=IN IP4 192.0.2.1", "m=audio 5000 RTP/AVP 0", "a=inactive"), True),
        (("c=IN IP4 192.0.2.1", "m=audio 5000 RTP/AVP 0", "a=recvonly"), False),
        (("c=IN IP4 192.0.2.1", "a=sendonly", "m=audio 5000 RTP/AVP 0"), True),
        (("c=IN IP4 0.0.0.0", "m=audio 5000 RTP/AVP 0"), True),
        (("c=IN IP4 0.0.0.0", "m=audio 5000 RTP/AVP 0", "a=recvonly"), True),  # → inactive
        (("c=IN IP4 192.0.2.1", "m=audio 0 RTP/AVP 0", "a=sendonly"), False),
        (
            (
                "c=IN IP4 192.0.2.1",
                "m=audio 5000 RTP/AVP 0",
                "a=sendonly",
                "m=audio 5002 RTP/AVP 0",
            ),
            False,
        ),
    ],
)
def test_is_hold(lines: tuple[str, ...], held: bool) -> None:
    assert is_hold(parse_sdp(sdp("v=0", *ALICE, *lines[:1], "t=0 0", *lines[1:]))) is held
