"""The B2BUA's call model: a call, its two legs, its forks, and the actions the engine asks of
its glue. ``edge.b2bua`` drives these objects; ``edge.callmedia`` reads them for media and
call records.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Literal

from edge.cdr import EndCause, HungUpBy
from edge.responses import new_tag
from media.bridge import MediaPlan
from media.sdp import SessionDescription
from sip.dialog import Dialog
from sip.flow import Flow
from sip.message import Request, Response
from sip.session_timer import Negotiated, SessionTimer, uac_offer
from sip.transaction import ClientTransaction, Event, ServerTransaction

LegName = Literal["a", "b"]


class CallState(Enum):
    SETUP = "setup"  # INVITE received, no 2xx yet
    ANSWERED = "answered"
    ENDED = "ended"


# ---------------------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class OpenMedia:
    """Bind a relay for ``call``; then ``B2BUA.media_ready`` (or ``media_failed``)."""

    call: Call


@dataclass(frozen=True, slots=True)
class MediaTarget:
    """A leg's far end is now ``address`` (from its SDP; None: on hold at c=0.0.0.0)."""

    call: Call
    leg: LegName
    address: tuple[str, int] | None
    relatch: bool


@dataclass(frozen=True, slots=True)
class MediaPlanned:
    """New payload maps and DTMF-to-INFO legs for the call's relay (``media.bridge``)."""

    call: Call
    plan: MediaPlan


@dataclass(frozen=True, slots=True)
class CallEnded:
    """The call is over: close its relay, write its record."""

    call: Call


Action = Event | OpenMedia | MediaTarget | MediaPlanned | CallEnded


# ---------------------------------------------------------------------------- the model


class Leg:
    """One side of a call: its dialog, its flow and the SDP the edge last sent it."""

    __slots__ = (
        "codec",
        "dialog",
        "flow",
        "media_address",
        "name",
        "offering",
        "remote_sdp",
        "role",
        "sdp_id",
        "sdp_sent",
        "sdp_version",
        "session",
        "session_fire",
        "unacked",
        "uri",
    )

    def __init__(self, name: LegName, flow: Flow, uri: str) -> None:
        self.name: LegName = name
        self.role: HungUpBy = "caller" if name == "a" else "callee"
        self.flow = flow
        self.uri = uri  # the user's AOR, for the record
        self.dialog: Dialog | None = None
        self.codec: str | None = None  # the audio codec this leg's phone sends and receives
        self.sdp_id = secrets.randbelow(2**62)
        self.sdp_version = 1
        self.sdp_sent: bytes | None = None
        self.media_address: tuple[str, int] | None = None  # from the leg's own SDP
        self.remote_sdp: SessionDescription | None = None  # the leg's phone's latest SDP
        self.offering = False  # an INVITE/UPDATE with an offer is pending on this leg (§14.2)
        self.unacked: Unacked | None = None  # a 2xx we sent this leg and retransmit (§13.3.1.4)
        self.session = SessionTimer()  # RFC 4028, run per leg: the edge ends each leg's timer
        self.session_fire: CallTimer | None = None


class Branch:
    """One fork of the callee INVITE, to one registered contact."""

    __slots__ = (
        "ack",
        "ack_deferred",
        "cancel",
        "done",
        "flow",
        "provisional",
        "request",
        "status",
        "timer_offer",
    )

    def __init__(self, request: Request, flow: Flow) -> None:
        self.request = request
        self.flow = flow
        self.provisional = False  # a 1xx came: it may be CANCELled now (§9.1)
        self.cancel = False  # cancel as soon as a 1xx allows it
        self.done = False
        self.status = 0  # its final response
        self.ack: bytes = b""  # the ACK for its 2xx, re-sent when the 2xx is
        self.ack_deferred = False  # delayed offer: ACK waits for the caller's answer
        self.timer_offer = uac_offer()  # its session-timer request (RFC 4028 §7.1)


class Call:
    __slots__ = (
        "a",
        "a_session",
        "a_tag",
        "answered",
        "b",
        "codec",
        "departed",
        "end_cause",
        "ended",
        "forks",
        "held",
        "hung_up_by",
        "id",
        "invite",
        "invite_txn",
        "media_ports",
        "media_since",
        "no_answer",
        "offer",
        "sip_code",
        "started",
        "state",
        "stream",
        "timer_headers",
        "timers",
        "transfer",
    )

    def __init__(
        self, invite: Request, txn: ServerTransaction, a: Leg, b: Leg, started: float
    ) -> None:
        self.id = secrets.token_hex(8)
        self.invite = invite
        self.invite_txn = txn
        self.a = a
        self.b = b
        self.state = CallState.SETUP
        self.forks = Forks()  # the INVITEs to the callee's contacts
        self.offer: SessionDescription | None = None  # the caller's initial offer
        self.stream = 0  # index of the relayed m= line
        self.media_ports: dict[LegName, int] = {}  # relay RTP port per leg, set by the glue
        self.held = False
        self.codec: str | None = None
        self.started = started  # wall clock
        self.answered: float | None = None  # wall clock
        self.media_since: float | None = None  # monotonic: answer or last offer (media timeout)
        self.ended: float | None = None
        self.end_cause: EndCause = "normal"
        self.sip_code = 0
        self.hung_up_by: HungUpBy | None = None
        self.timers: list[CallTimer] = []  # every timer of the call, cancelled when it ends
        self.no_answer: CallTimer | None = None
        self.a_tag = new_tag()  # the caller's dialog: one To tag whatever the forks do
        self.timer_headers: tuple[tuple[str, str], ...] = ()  # RFC 4028 §9, for the caller's 2xx
        self.a_session: Negotiated | None = None
        self.transfer: Transfer | None = None
        self.departed: list[Leg] = []  # transferors, until their BYE

    def other(self, leg: Leg) -> Leg:
        return self.b if leg is self.a else self.a

    def leg(self, name: LegName) -> Leg:
        return self.a if name == "a" else self.b

    def __repr__(self) -> str:
        return f"<Call {self.id} {self.state.value}>"


@dataclass(slots=True)
class Unacked:
    txn: ServerTransaction
    response: Response
    cseq: int
    interval: float
    given_up_at: float
    timer: CallTimer | None = None


@dataclass(slots=True)
class Relayed:
    """An in-dialog request carried from leg ``src`` to leg ``dst``."""

    call: Call
    src: Leg
    dst: Leg
    txn: ServerTransaction
    request: Request
    offer: SessionDescription | None = None  # the offer it carried, as ``src`` wrote it


@dataclass(slots=True, eq=False)
class Forks:
    """The parallel INVITEs of one attempt: to the callee, or to a transfer's target."""

    transfer: Transfer | None = None
    branches: dict[ClientTransaction, Branch] = field(default_factory=dict)
    winner: Branch | None = None


@dataclass(slots=True)
class Forked:
    call: Call
    branch: Branch
    forks: Forks


@dataclass(slots=True)
class Transfer:
    """A blind transfer (RFC 3515): ``transferor`` asked the edge to call ``target`` in its
    place; NOTIFYs tell it how that goes (§2.4.4)."""

    transferor: Leg
    target: Leg


OnAnswer = Callable[[int, float, list["Action"]], None]


@dataclass(slots=True)
class Refresh:
    """A re-INVITE the edge sent to ``leg``: a session refresh (RFC 4028 §7.4) or a new offer
    (transfer); ``on_answer`` hears its final status."""

    call: Call
    leg: Leg
    on_answer: OnAnswer | None = None


class CallTimer:
    __slots__ = ("cancelled", "fire")

    def __init__(self, fire: Callable[[float, list[Action]], None]) -> None:
        self.fire = fire
        self.cancelled = False


class Ignore:
    """Context of a request whose answer does not matter (BYE, CANCEL of a fork)."""


IGNORE = Ignore()
