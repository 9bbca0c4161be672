"""Offer widening and the relay plan for legs whose codecs differ (media.bridge)."""

from __future__ import annotations

from media.bridge import plan, widen_offer
from media.sdp import SessionDescription, parse_sdp


def sdp(formats: str, extra: str = "", port: int = 4000) -> SessionDescription:
    lines = [
        "v=0", "o=x 1 1 IN IP4 10.0.0.1", "s=-", "c=IN IP4 10.0.0.1", "t=0 0",
        f"m=audio {port} RTP/AVP {formats}",
    ]  # fmt: skip
    for fmt in formats.split():
        if fmt == "101":
            lines += ["a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15"]
        elif fmt == "96":
            lines += ["a=rtpmap:96 opus/48000/2"]
    if extra:
        lines.append(extra)
    return parse_sdp(("\r\n".join(lines) + "\r\n").encode())


def test_widen_adds_the_missing_law_and_telephone_event() -> None:
    widened = widen_offer(sdp("8"), 0)
    assert widened.media[0].formats == ["8", "0", "101"]
    assert "101 telephone-event/8000" in widened.media[0].attribute_values("rtpmap")


def test_widen_leaves_a_full_offer_alone() -> None:
    assert widen_offer(sdp("0 8 101"), 0).media[0].formats == ["0", "8", "101"]


def test_widen_without_g711_adds_only_events_on_a_free_number() -> None:
    offer = sdp("96", "a=rtpmap:101 opus/48000/2")
    offer.media[0].formats.append("101")
    widened = widen_offer(offer, 0)
    assert widened.media[0].formats == ["96", "101", "102"]


def test_widen_does_not_touch_the_original() -> None:
    offer = sdp("0")
    widen_offer(offer, 0)
    assert offer.media[0].formats == ["0"]


def test_answer_in_the_other_law_is_transcoded_both_ways() -> None:
    result, fit = plan(sdp("8 101"), sdp("0 101"), 0, "a")
    assert result.payload_maps == {"b": {0: (8, "ulaw_to_alaw")}, "a": {8: (0, "alaw_to_ulaw")}}
    assert result.transcodes and result.codec == "PCMU" and result.dtmf_to_info == {}
    assert fit.media[0].formats == ["8", "101"]  # the offerer hears its own codec


def test_caller_events_become_info_when_the_callee_has_none() -> None:
    result, fit = plan(sdp("0 101"), sdp("0"), 0, "a")
    assert result.dtmf_to_info == {"a": 101} and result.payload_maps == {}
    assert fit.media[0].formats == ["0", "101"]  # so the caller still sends them


def test_callee_events_become_info_when_the_caller_has_none() -> None:
    result, fit = plan(sdp("0"), sdp("0 101"), 0, "a")
    assert result.dtmf_to_info == {"b": 101}
    assert fit.media[0].formats == ["0"]  # never an unoffered format (RFC 3264 §6.1)


def test_matching_codecs_need_no_plan() -> None:
    result, fit = plan(sdp("0 8 101"), sdp("0 101"), 0, "b")
    assert result.payload_maps == {} and result.dtmf_to_info == {} and not result.transcodes
    assert fit.media[0].formats == ["0", "101"]


def test_rejected_answer_gives_no_plan() -> None:
    result, fit = plan(sdp("0"), sdp("0", port=0), 0, "a")
    assert result.payload_maps == {} and fit.media[0].port == 0


def test_an_answer_in_no_offered_or_bridgeable_codec_is_incompatible() -> None:
    result, _ = plan(sdp("0 101"), sdp("18"), 0, "a")  # G.729: not offered, not G.711
    assert not result.compatible
    assert plan(sdp("8"), sdp("0"), 0, "a")[0].compatible  # transcodable
