"""The SDP bodies of a call's messages, as the B2BUA reads them (RFC 3261 §21.4.13, RFC 3264)."""

from __future__ import annotations

from media.sdp import SdpError, SessionDescription, parse_sdp
from sip.message import Request, Response

SDP = "application/sdp"


class BadBody(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def sdp_of(message: Request | Response) -> SessionDescription:
    """The SDP body of ``message``; ``BadBody`` (415 or 400) when it is not usable."""
    content_type = (message.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if content_type != SDP:
        raise BadBody(415, f"Unsupported body type {content_type or 'none'}"[:80])
    try:
        return parse_sdp(message.body)
    except SdpError as exc:
        raise BadBody(400, f"Bad SDP: {exc}"[:120]) from None


def accepts_sdp(request: Request) -> bool:
    """Whether an answer in SDP is acceptable: no Accept means application/sdp (§20.1)."""
    values = request.headers.values("Accept")
    if not values:
        return True
    kinds = {value.split(";")[0].strip().lower() for value in values}
    return bool(kinds & {SDP, "application/*", "*/*"})


def audio_stream(sdp: SessionDescription) -> int | None:
    """The first accepted audio stream: the one the relay carries."""
    for index, media in enumerate(sdp.media):
        if media.media == "audio" and media.port != 0:
            return index
    return None


def sendrecv(sdp: SessionDescription) -> SessionDescription:
    """A copy of ``sdp`` offering two-way media: a transfer target is not put on hold."""
    out = sdp.copy()
    for media in out.media:
        if media.port != 0:
            media.set_direction("sendrecv")
    return out
