"""RFC 3264 offer/answer for audio, and the SDP rewrite of a media-anchoring B2BUA. Sans-I/O.

Legacy hold (RFC 3264 §8.4, from RFC 2543): an offer whose connection address is ``0.0.0.0``
cannot receive media. We read it as the offerer not receiving: sendrecv behaves as sendonly and
recvonly as inactive. :func:`answer_media` answers that direction, and
:func:`rewrite_for_relay` turns it into an explicit direction attribute on the relay address,
because the relay's address replaces 0.0.0.0 and the far side must still not send.
"""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from media.sdp import (
    DIRECTIONS,
    Connection,
    MediaDescription,
    Origin,
    RtpMap,
    SessionDescription,
    connection_for,
    effective_direction,
)


@dataclass(frozen=True, slots=True)
class Codec:
    """An audio codec we can send and receive. ``static_pt`` is its RFC 3551 number, if any."""

    name: str
    clock_rate: int
    channels: int = 1
    static_pt: int | None = None
    fmtp: str | None = None

    def matches(self, rtpmap: RtpMap) -> bool:
        # RFC 4855 §3: media subtype names are case-insensitive; no channels means one.
        return (
            rtpmap.encoding.casefold() == self.name.casefold()
            and rtpmap.clock_rate == self.clock_rate
            and (rtpmap.channels or 1) == self.channels
        )


PCMU = Codec("PCMU", 8000, static_pt=0)
PCMA = Codec("PCMA", 8000, static_pt=8)
# RFC 3551 §4.5.2: G.722 samples at 16 kHz but its RTP clock rate is 8000 (a historical error).
G722 = Codec("G722", 8000, static_pt=9)
OPUS = Codec("opus", 48000, channels=2)  # RFC 7587 §7: always opus/48000/2
TELEPHONE_EVENT = Codec("telephone-event", 8000, fmtp="0-16")  # RFC 4733 §7.1.1

# RFC 3551 §6 Table 4: static audio payload types, used when an offer has no a=rtpmap.
STATIC_PAYLOAD_TYPES: dict[int, RtpMap] = {
    pt: RtpMap(pt, name, rate, channels)
    for pt, name, rate, channels in (
        (0, "PCMU", 8000, None),
        (3, "GSM", 8000, None),
        (4, "G723", 8000, None),
        (5, "DVI4", 8000, None),
        (6, "DVI4", 16000, None),
        (7, "LPC", 8000, None),
        (8, "PCMA", 8000, None),
        (9, "G722", 8000, None),
        (10, "L16", 44100, 2),
        (11, "L16", 44100, None),
        (12, "QCELP", 8000, None),
        (13, "CN", 8000, None),
        (14, "MPA", 90000, None),
        (15, "G728", 8000, None),
        (16, "DVI4", 11025, None),
        (17, "DVI4", 22050, None),
        (18, "G729", 8000, None),
    )
}

RTP_PROTOS = frozenset(("RTP/AVP", "RTP/AVPF"))
SRTP_PROTOS = frozenset(("RTP/SAVP", "RTP/SAVPF"))
# RFC 3264 §6.1: the answer's direction mirrors the offer's.
ANSWER_DIRECTION = {
    "sendrecv": "sendrecv",
    "sendonly": "recvonly",
    "recvonly": "sendonly",
    "inactive": "inactive",
}
# RFC 3264 §8.4: with c=0.0.0.0 the offerer cannot receive.
_LEGACY_HOLD = {"sendrecv": "sendonly", "recvonly": "inactive"}
ICE_ATTRIBUTES = frozenset(("candidate", "remote-candidates", "end-of-candidates"))


def _is_ice(name: str) -> bool:
    # RFC 8839 §5: a=candidate, a=remote-candidates, a=ice-ufrag/pwd/options/lite/mismatch/pacing;
    # RFC 8840 §8.2: a=end-of-candidates.
    return name in ICE_ATTRIBUTES or name.startswith("ice-")


def addrtype_of(address: str) -> str:
    """``IP4`` or ``IP6`` for an address literal; the edge never puts a host name in c=."""
    try:
        return "IP6" if ipaddress.ip_address(address).version == 6 else "IP4"
    except ValueError:
        raise ValueError(f"media address must be an IP literal, not {address!r}") from None


def _check_port(port: int) -> int:
    if not 1 <= port <= 65535:
        raise ValueError(f"RTP port {port} out of range 1-65535")
    return port


def is_unspecified(connection: Connection | None) -> bool:
    return connection is not None and connection.address in ("0.0.0.0", "::")


def offered_direction(session: SessionDescription, media: MediaDescription) -> str:
    """The offer's direction for ``media``, with legacy c=0.0.0.0 hold applied (RFC 3264 §8.4)."""
    direction = effective_direction(session, media)
    if is_unspecified(connection_for(session, media)):
        return _LEGACY_HOLD.get(direction, direction)
    return direction


def is_hold(sdp: SessionDescription) -> bool:
    """True when every accepted stream is on hold: sendonly or inactive (RFC 3264 §8.4), or the
    legacy ``c=0.0.0.0`` form. A description with no accepted stream is not a hold."""
    active = [m for m in sdp.media if m.port != 0]
    return bool(active) and all(
        offered_direction(sdp, m) in ("sendonly", "inactive") for m in active
    )


def codec_map(media: MediaDescription) -> dict[str, RtpMap]:
    """Format → codec: a=rtpmap, else the RFC 3551 static table for numbers below 96."""
    rtpmaps = media.rtpmap()
    out: dict[str, RtpMap] = {}
    for fmt in media.formats:
        if fmt in rtpmaps:
            out[fmt] = rtpmaps[fmt]
        elif fmt.isdigit() and int(fmt) in STATIC_PAYLOAD_TYPES:
            out[fmt] = STATIC_PAYLOAD_TYPES[int(fmt)]
    return out


def _events(text: str) -> set[int] | None:
    """RFC 4733 §2.4.1 event list ("0-15,66") → set; None if malformed."""
    events: set[int] = set()
    for part in text.split(","):
        low, dash, high = part.strip().partition("-")
        if not low.isdigit() or (dash and not high.isdigit()):
            return None
        first, last = int(low), int(high) if dash else int(low)
        if not first <= last <= 255:
            return None
        events.update(range(first, last + 1))
    return events


def _event_text(events: set[int]) -> str:
    ranges: list[str] = []
    for event in sorted(events):
        if ranges and event - 1 in events:
            continue
        last = event
        while last + 1 in events:
            last += 1
        ranges.append(str(event) if last == event else f"{event}-{last}")
    return ",".join(ranges)


def _event_fmtp(offered: str | None, ours: str | None) -> str | None:
    """The telephone-event fmtp to answer; "" when no event is common (drop the codec)."""
    offer_events = _events(offered if offered is not None else "0-15")  # RFC 4733 §2.4.1 default
    our_events = _events(ours) if ours is not None else None
    if offer_events is None or our_events is None:
        return offered  # cannot intersect: keep the offer's
    return _event_text(offer_events & our_events)


def rejected(offer_media: MediaDescription) -> MediaDescription:
    """RFC 3264 §6: a declined stream has port 0 and keeps the offered formats."""
    return MediaDescription(offer_media.media, 0, offer_media.proto, list(offer_media.formats))


def answer_media(
    offer_media: MediaDescription,
    supported: Sequence[Codec],
    *,
    port: int,
    ptime: int | None = None,
    allow_srtp: bool = False,
    direction: str | None = None,
) -> MediaDescription:
    """Answer one offered stream (RFC 3264 §6.1). ``direction`` is the offer's effective
    direction when the caller knows it (see :func:`offered_direction`), else the stream's own.
    An SRTP proto is only accepted with ``allow_srtp``; the caller then adds its a=crypto."""
    protos = RTP_PROTOS | SRTP_PROTOS if allow_srtp else RTP_PROTOS
    if offer_media.media != "audio" or offer_media.proto not in protos or offer_media.port == 0:
        return rejected(offer_media)
    offer_fmtp = offer_media.fmtp()
    chosen: list[tuple[str, RtpMap, str | None]] = []
    used: set[Codec] = set()
    # RFC 3264 §6.1: keep the offerer's order and its payload type numbers.
    for fmt, rtpmap in codec_map(offer_media).items():
        codec = next((c for c in supported if c not in used and c.matches(rtpmap)), None)
        if codec is None:
            continue
        fmtp = codec.fmtp
        if codec.name.casefold() == "telephone-event":
            fmtp = _event_fmtp(offer_fmtp.get(fmt), codec.fmtp)
            if fmtp == "":
                continue
        used.add(codec)
        chosen.append((fmt, rtpmap, fmtp))
    # telephone-event alone carries no audio: nothing usable was offered.
    if all(rtpmap.encoding.casefold() == "telephone-event" for _, rtpmap, _ in chosen):
        return rejected(offer_media)
    answer = MediaDescription("audio", _check_port(port), offer_media.proto, [])
    for fmt, rtpmap, fmtp in chosen:
        answer.formats.append(fmt)
        answer.add_attribute("rtpmap", f"{fmt} {str(rtpmap).partition(' ')[2]}")
        if fmtp is not None:
            answer.add_attribute("fmtp", f"{fmt} {fmtp}")
    chosen_ptime = ptime if ptime is not None else offer_media.ptime
    if chosen_ptime is not None:
        answer.add_attribute("ptime", str(chosen_ptime))
    answer.set_direction(ANSWER_DIRECTION[direction or offer_media.direction])
    if offer_media.rtcp_mux:
        answer.add_attribute("rtcp-mux")  # RFC 5761 §5.1.1: accept what was offered
    return answer


def _session(
    address: str, session_id: int, session_version: int, username: str
) -> SessionDescription:
    addrtype = addrtype_of(address)
    origin = Origin(username, session_id, session_version, "IN", addrtype, address)
    return SessionDescription(
        origin, "-", connection=Connection("IN", addrtype, address), timing=["t=0 0"]
    )


def answer(
    offer: SessionDescription,
    supported: Sequence[Codec],
    *,
    address: str,
    ports: Sequence[int],
    session_id: int,
    session_version: int,
    username: str = "voxedge",
    ptime: int | None = None,
    allow_srtp: bool = False,
) -> SessionDescription:
    """The edge's answer: one m= per offered m=, same order (RFC 3264 §6); ``ports[i]`` is used
    for the i-th stream if it is accepted."""
    if len(ports) != len(offer.media):
        raise ValueError(f"{len(ports)} ports for {len(offer.media)} m= lines")
    sdp = _session(address, session_id, session_version, username)
    if offer.timing:
        sdp.timing = list(offer.timing)  # RFC 3264 §6: t= in the answer equals the offer's
    for offer_media, port in zip(offer.media, ports, strict=True):
        sdp.media.append(
            answer_media(
                offer_media,
                supported,
                port=port,
                ptime=ptime,
                allow_srtp=allow_srtp,
                direction=offered_direction(offer, offer_media),
            )
        )
    return sdp


def offer(
    codecs: Sequence[Codec],
    *,
    address: str,
    port: int,
    session_id: int,
    session_version: int,
    ptime: int | None = 20,
    direction: str = "sendrecv",
    username: str = "voxedge",
) -> SessionDescription:
    """The edge's own offer: one RTP/AVP audio stream. Dynamic codecs get 96, 97, … in order,
    skipping numbers already taken (RFC 3551 §3)."""
    if not codecs:
        raise ValueError("an offer needs at least one codec")
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}")
    sdp = _session(address, session_id, session_version, username)
    media = MediaDescription("audio", _check_port(port), "RTP/AVP", [])
    taken = {c.static_pt for c in codecs if c.static_pt is not None}
    dynamic = (pt for pt in range(96, 128) if pt not in taken)
    for codec in codecs:
        pt = codec.static_pt if codec.static_pt is not None else next(dynamic, None)
        if pt is None:
            raise ValueError("more codecs than dynamic payload types")
        channels = f"/{codec.channels}" if codec.channels != 1 else ""
        media.formats.append(str(pt))
        media.add_attribute("rtpmap", f"{pt} {codec.name}/{codec.clock_rate}{channels}")
        if codec.fmtp is not None:
            media.add_attribute("fmtp", f"{pt} {codec.fmtp}")
    if ptime is not None:
        media.add_attribute("ptime", str(ptime))
    media.set_direction(direction)
    sdp.media.append(media)
    return sdp


def rewrite_for_relay(
    sdp: SessionDescription, address: str, ports: Sequence[int]
) -> SessionDescription:
    """A copy of ``sdp`` whose accepted streams (port ≠ 0) point at the relay: c= → address,
    m= port → ports[i], a=rtcp → ports[i]+1 (dropped under rtcp-mux), ICE attributes removed
    (the relay does not do ICE for this leg). Rejected streams, o= and everything else are kept;
    the caller owns o= versioning per leg. Legacy c=0.0.0.0 hold becomes a direction attribute.
    """
    if len(ports) != len(sdp.media):
        raise ValueError(f"{len(ports)} ports for {len(sdp.media)} m= lines")
    relay = Connection("IN", addrtype_of(address), address)
    out = sdp.copy()
    out.attributes[:] = [a for a in out.attributes if not _is_ice(a[0])]
    for media, port in zip(out.media, ports, strict=True):
        if media.port == 0:
            continue
        if is_unspecified(connection_for(sdp, media)):
            media.set_direction(offered_direction(sdp, media))
        media.port, media.port_count = _check_port(port), None
        if media.connection is not None or sdp.connection is None:
            media.connection = copy.copy(relay)
        media.attributes[:] = [a for a in media.attributes if not _is_ice(a[0])]
        if media.rtcp_mux:
            media.remove_attribute("rtcp")  # RFC 5761 §5.1.3: RTCP rides on the RTP port
        elif media.has_attribute("rtcp"):
            media.set_attribute("rtcp", f"{_check_port(port + 1)} {relay}")  # RFC 3605 §2.1
    if out.connection is not None:
        out.connection = copy.copy(relay)
    return out
