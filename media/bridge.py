"""Joining two legs whose codecs differ, sans-I/O: the widened offer and the relay's plan.

A B2BUA that anchors media can do better than pass an offer through: it adds to the offer it
forwards the G.711 law the offerer lacks and telephone-event (RFC 4733), so the answerer may pick
what it likes, then bridges the gap itself (DESIGN.md, media: transcode only when needed):

- the answerer chose PCMA and the offerer only has PCMU (or the reverse): the relay converts
  both ways (``media.g711``) and renumbers the payload type;
- one side has telephone-event and the other has not: the relay detects the events of the side
  that has it and the B2BUA sends them as SIP INFO (``application/dtmf-relay``) to the other.

``plan`` reads the offer as the offerer sent it and the answer as the answerer sent it, and gives
the relay's payload maps, the legs whose events become INFO, and the answer for the offerer:
the answer trimmed to what the offerer offered (RFC 3264 §6.1: an answer only names offered
formats), with the offerer's own payload numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from media.offer_answer import codec_map
from media.sdp import MediaDescription, RtpMap, SessionDescription

LegName = Literal["a", "b"]
PayloadMap = dict[int, tuple[int, str | None]]

_LAWS = {"pcmu": 0, "pcma": 8}  # RFC 3551 §6 static payload types
_CONVERTER = {("pcmu", "pcma"): "ulaw_to_alaw", ("pcma", "pcmu"): "alaw_to_ulaw"}
_EVENT = "telephone-event"
_EVENT_PT = 101  # the customary dynamic number; the next free one when taken


@dataclass(frozen=True, slots=True)
class MediaPlan:
    """What the relay does to packets received on each leg, and who needs DTMF as INFO."""

    payload_maps: dict[LegName, PayloadMap] = field(default_factory=dict)
    dtmf_to_info: dict[LegName, int] = field(default_factory=dict)  # leg -> its event PT
    codec: str | None = None  # the audio codec of the answer, as the answerer sent it
    compatible: bool = True  # False: the answer's codec is none the offerer can be given
    offerer_codec: str | None = None  # the audio codec the offerer gets (differs: transcoding)

    @property
    def transcodes(self) -> bool:
        return any(conv for m in self.payload_maps.values() for _, conv in m.values())


def widen_offer(sdp: SessionDescription, stream: int) -> SessionDescription:
    """A copy of ``sdp`` whose stream ``stream`` also offers the G.711 law missing beside the
    other one, and telephone-event/8000 when it has none."""
    out = sdp.copy()
    if stream >= len(out.media) or out.media[stream].port == 0:
        return out
    media = out.media[stream]
    names = {rtpmap.encoding.lower(): fmt for fmt, rtpmap in codec_map(media).items()}
    for law, other in (("pcmu", "pcma"), ("pcma", "pcmu")):
        if law in names and other not in names and str(_LAWS[other]) not in media.formats:
            _append(media, _LAWS[other], other.upper(), None)
    if _EVENT not in names:
        taken = {int(fmt) for fmt in media.formats if fmt.isdigit()}
        free = [n for n in (*range(_EVENT_PT, 128), *range(96, _EVENT_PT)) if n not in taken]
        if free:
            _append(media, free[0], _EVENT, "0-15")
    return out


def plan(
    offer: SessionDescription,
    answer: SessionDescription,
    stream: int,
    offerer: LegName,
) -> tuple[MediaPlan, SessionDescription]:
    """The relay plan for ``answer`` to the widened ``offer`` (``offer`` as the offerer sent it,
    from leg ``offerer``), and a copy of ``answer`` fit to send the offerer."""
    answerer: LegName = "b" if offerer == "a" else "a"
    fit = answer.copy()
    if stream >= len(offer.media) or stream >= len(answer.media):
        return MediaPlan(), fit
    offered = codec_map(offer.media[stream])
    answered_media = fit.media[stream]
    answered = codec_map(answered_media)
    if answered_media.port == 0:
        return MediaPlan(), fit
    by_name = {_key(rtpmap): fmt for fmt, rtpmap in offered.items()}
    maps: dict[LegName, PayloadMap] = {}
    dtmf: dict[LegName, int] = {}
    audio = next(
        (fmt for fmt in answered_media.formats if _name(answered.get(fmt)) not in ("", _EVENT)),
        None,
    )
    codec = answered[audio].encoding if audio is not None and audio in answered else None
    keep: list[str] = []
    if audio is not None:
        rtpmap = answered[audio]
        mine = by_name.get(_key(rtpmap))
        if mine is not None:
            keep.append(mine)
            if mine != audio:  # the same codec under another number: renumber only
                maps.setdefault(answerer, {})[int(audio)] = (int(mine), None)
                maps.setdefault(offerer, {})[int(mine)] = (int(audio), None)
        else:
            law = rtpmap.encoding.lower()
            other = "pcma" if law == "pcmu" else "pcmu"
            theirs = by_name.get((other, 8000))
            if law in _LAWS and theirs is not None:
                # Transcode (DESIGN.md media: only when the legs share no codec).
                maps.setdefault(answerer, {})[int(audio)] = (int(theirs), _CONVERTER[law, other])
                maps.setdefault(offerer, {})[int(theirs)] = (int(audio), _CONVERTER[other, law])
                keep.append(theirs)
    offer_event = by_name.get((_EVENT, 8000))
    answer_event = next(
        (f for f in answered_media.formats if _name(answered.get(f)) == _EVENT), None
    )
    if offer_event is not None and answer_event is not None:
        keep.append(offer_event)
        if offer_event != answer_event:
            maps.setdefault(answerer, {})[int(answer_event)] = (int(offer_event), None)
            maps.setdefault(offerer, {})[int(offer_event)] = (int(answer_event), None)
    elif offer_event is not None:
        keep.append(offer_event)  # the offerer sends events; INFO carries them on
        dtmf[offerer] = int(offer_event)
    elif answer_event is not None:
        dtmf[answerer] = int(answer_event)
    _restrict(answered_media, keep, offered, offer.media[stream])
    compatible = audio is None or (bool(keep) and keep[0] != offer_event)
    offerer_codec = offered[keep[0]].encoding if compatible and keep and audio else None
    return MediaPlan(maps, dtmf, codec, compatible, offerer_codec), fit


def _key(rtpmap: RtpMap) -> tuple[str, int]:
    return rtpmap.encoding.lower(), rtpmap.clock_rate


def _name(rtpmap: RtpMap | None) -> str:
    return "" if rtpmap is None else rtpmap.encoding.lower()


def _append(media: MediaDescription, pt: int, encoding: str, fmtp: str | None) -> None:
    media.formats.append(str(pt))
    media.add_attribute("rtpmap", f"{pt} {encoding}/8000")
    if fmtp is not None:
        media.add_attribute("fmtp", f"{pt} {fmtp}")


def _restrict(
    media: MediaDescription,
    keep: list[str],
    offered: dict[str, RtpMap],
    offer_media: MediaDescription,
) -> None:
    """Make ``media`` (an answer) name just ``keep``, with the offer's rtpmap/fmtp lines."""
    if not keep:
        return  # nothing usable: the answer goes as it is, the offerer will see the mismatch
    offer_fmtp = offer_media.fmtp()
    media.formats = list(keep)
    media.attributes[:] = [a for a in media.attributes if a[0] not in ("rtpmap", "fmtp")]
    for fmt in keep:
        rtpmap = offered[fmt]
        channels = f"/{rtpmap.channels}" if rtpmap.channels else ""
        media.add_attribute("rtpmap", f"{fmt} {rtpmap.encoding}/{rtpmap.clock_rate}{channels}")
        if fmt in offer_fmtp:
            media.add_attribute("fmtp", f"{fmt} {offer_fmtp[fmt]}")
