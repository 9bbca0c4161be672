"""SIP session timers (RFC 4028) for a B2BUA that terminates the timer on each leg, sans-I/O.

Each leg negotiates on its own: as UAS toward the caller (``uas_negotiate``), as UAC toward
the callee (``UacOffer``, ``uac_process_2xx``, ``uac_retry_after_422``). What was agreed drives
one ``SessionTimer`` per leg, which says when to send a refresh or when to give up with a BYE.

The ``refresher`` parameter names the roles of the *transaction* that carried it (RFC 4028 §4):
"uac" in the 2xx to a re-INVITE the callee sent means the callee. Every ``Negotiated`` therefore
also says ``we_refresh``, which is what the caller of this module acts on.

Nothing here reads a clock: time comes in as ``now`` (seconds, any monotonic origin).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sip.errors import SipParseError
from sip.headers import parse_uint, split_params
from sip.message import Headers

Refresher = Literal["uac", "uas"]
Action = Literal["refresh", "expire"]

# RFC 4028 §4, §5: no session interval and no Min-SE may be below 90 s; 90 is also the Min-SE
# in force when the header is absent (§5).
MIN_SE_FLOOR = 90
# RFC 4028 §4: 1800 s (30 minutes) is RECOMMENDED for Session-Expires.
DEFAULT_SESSION_EXPIRES = 1800
# delta-seconds (RFC 3261 §25.1), bounded like Expires (sip.validate.MAX_EXPIRES).
MAX_DELTA_SECONDS = 2**32 - 1
# RFC 4028 §6: 422 Session Interval Too Small (not in sip.message.REASONS).
STATUS_422 = 422
REASON_422 = "Session Interval Too Small"
# RFC 4028 §7.3 lets a UAC retry after a 422; each retry must raise the interval, and a peer
# that keeps asking for more is cut off after this many retries.
MAX_422_RETRIES = 2
OPTION_TAG = "timer"  # RFC 4028 §3: the option tag for Supported / Require


# --- parsing (RFC 4028 §4, §5) -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionExpires:
    """A Session-Expires value: the session interval and, when given, who refreshes."""

    interval: int
    refresher: Refresher | None = None

    def __str__(self) -> str:
        if self.refresher is None:
            return str(self.interval)
        return f"{self.interval};refresher={self.refresher}"


def parse_session_expires(value: str) -> SessionExpires:
    """``Session-Expires`` / ``x`` (RFC 4028 §4).

    Session-Expires = ("Session-Expires" / "x") HCOLON delta-seconds *(SEMI se-params)
    se-params       = refresher-param / generic-param
    refresher-param = "refresher" EQUAL ("uas" / "uac")
    Only the syntax is checked here; whether the interval is long enough is negotiation (§9).
    """
    number, semi, param_text = value.partition(";")
    interval = parse_uint(number, "Session-Expires", MAX_DELTA_SECONDS)
    refresher: Refresher | None = None
    if semi:
        params = split_params(param_text, "Session-Expires")
        if "refresher" in params:
            raw = params["refresher"]
            # ABNF literals are case-insensitive (RFC 5234 §2.3).
            token = raw.lower() if raw is not None else None
            if token == "uac":
                refresher = "uac"
            elif token == "uas":
                refresher = "uas"
            else:
                raise SipParseError("Malformed Session-Expires refresher")
    return SessionExpires(interval, refresher)


def parse_min_se(value: str) -> int:
    """``Min-SE`` (RFC 4028 §5): Min-SE = "Min-SE" HCOLON delta-seconds *(SEMI generic-param)."""
    number, semi, param_text = value.partition(";")
    seconds = parse_uint(number, "Min-SE", MAX_DELTA_SECONDS)
    if semi:
        split_params(param_text, "Min-SE")  # checked for syntax, then ignored
    return seconds


def _single(headers: Headers, name: str) -> str | None:
    # Neither header is a list (RFC 4028 §4, §5): two of them is a malformed message.
    values = headers.get_all(name)
    if len(values) > 1:
        raise SipParseError(f"Multiple {name} headers")
    return values[0] if values else None


def _session_expires_of(headers: Headers) -> SessionExpires | None:
    value = _single(headers, "Session-Expires")
    return parse_session_expires(value) if value is not None else None


def _min_se_of(headers: Headers) -> int | None:
    value = _single(headers, "Min-SE")
    return parse_min_se(value) if value is not None else None


def _lists_timer(headers: Headers, name: str) -> bool:
    return any(tag.lower() == OPTION_TAG for tag in headers.values(name))


def supports_timer(headers: Headers) -> bool:
    """Whether a request says it understands session timers (RFC 4028 §7.1: ``Supported:
    timer``; a ``Require: timer`` says so as well)."""
    return _lists_timer(headers, "Supported") or _lists_timer(headers, "Require")


# --- negotiation -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionTimerConfig:
    """Our side's policy, one per leg kind (trunk, phone).

    ``min_se``: the shortest interval we accept (RFC 4028 §5: at least 90).
    ``session_expires``: the interval we ask for, and the most we grant (§4: 1800 recommended).
    ``prefer_refresher``: who refreshes when a UAC that supports timers leaves it to us (§9);
    "uac" puts the work on the peer, "uas" on us. Seen from the transaction, like the header.
    """

    min_se: int = MIN_SE_FLOOR
    session_expires: int = DEFAULT_SESSION_EXPIRES
    prefer_refresher: Refresher = "uac"

    def __post_init__(self) -> None:
        if not MIN_SE_FLOOR <= self.min_se <= MAX_DELTA_SECONDS:
            raise ValueError(f"min_se must be within {MIN_SE_FLOOR}..{MAX_DELTA_SECONDS}")
        if not self.min_se <= self.session_expires <= MAX_DELTA_SECONDS:
            raise ValueError("session_expires must be at least min_se")
        if self.prefer_refresher not in ("uac", "uas"):
            raise ValueError("prefer_refresher must be 'uac' or 'uas'")


@dataclass(frozen=True, slots=True)
class Negotiated:
    """An agreed session timer: interval, refresher as written in the 2xx, and whether that
    refresher is this side."""

    interval: int
    refresher: Refresher
    we_refresh: bool


@dataclass(frozen=True, slots=True)
class UasDecision:
    """What to answer an INVITE/UPDATE with, as far as session timers go.

    ``reject``: answer ``422 Session Interval Too Small`` carrying ``headers`` (a Min-SE).
    Otherwise add ``headers`` to the 2xx; ``negotiated`` is None when no timer runs.
    """

    reject: bool
    headers: tuple[tuple[str, str], ...]
    negotiated: Negotiated | None


def uas_negotiate(headers: Headers, config: SessionTimerConfig | None = None) -> UasDecision:
    """The UAS side (RFC 4028 §9) for an incoming INVITE or UPDATE's header fields.

    Raises ``SipParseError`` (status 400) when Session-Expires or Min-SE is malformed.
    """
    config = config or SessionTimerConfig()
    offered = _session_expires_of(headers)
    peer_min = _min_se_of(headers)
    supported = supports_timer(headers)
    # §9: the interval granted is never below the request's Min-SE (90 when absent, §5), and
    # never below our own minimum.
    floor = max(config.min_se, peer_min or MIN_SE_FLOOR, MIN_SE_FLOOR)

    if offered is None:
        if not supported:
            # §9: no Session-Expires and no 'timer' support: no session timer on this leg.
            return UasDecision(False, (), None)
        # §9: the UAC supports timers but asked for none; the UAS MAY ask for one in its 2xx,
        # not below the request's Min-SE.
        interval = max(config.session_expires, floor)
    elif offered.interval < floor:
        if supported:
            # §9: reject with 422 carrying our minimum in Min-SE (§6: a 422 MUST have one).
            return UasDecision(True, (("Min-SE", str(floor)),), None)
        # The UAC would not understand a 422, so rejecting would only fail the call; raise the
        # interval to our minimum instead, as §8.1 has a proxy do (erratum 1687 extends it to
        # the UAS).
        interval = floor
    else:
        # §9: the UAS MAY reduce the interval, never below Min-SE, and MUST NOT increase it.
        interval = max(min(offered.interval, config.session_expires), floor)

    refresher: Refresher
    if not supported:
        # §9 (table of refresher choices): a UAC without 'timer' support cannot refresh.
        refresher = "uas"
    elif offered is not None and offered.refresher is not None:
        refresher = offered.refresher  # §9: the UAC's choice stands
    else:
        refresher = config.prefer_refresher  # §9: the UAC left it to the UAS
    out: list[tuple[str, str]] = [("Session-Expires", str(SessionExpires(interval, refresher)))]
    if supported:
        # §9: Require: timer MUST be in the 2xx when refresher=uac, SHOULD when refresher=uas
        # and the UAC supports timers. It is never put in a response to a UAC that did not
        # list 'timer' (RFC 3261 §8.2.2.3: Require only names extensions the UAC supports).
        out.append(("Require", OPTION_TAG))
    return UasDecision(False, tuple(out), Negotiated(interval, refresher, refresher == "uas"))


@dataclass(frozen=True, slots=True)
class UacOffer:
    """What an outgoing INVITE/UPDATE asks for (RFC 4028 §7.1, §7.4).

    ``refresher`` is None in an initial request (§7.1 RECOMMENDS leaving the choice to the UAS);
    in a refresh inside the dialog (§7.4) it is "uac" when we refresh, "uas" when the peer does.
    ``retries`` counts the 422s already obeyed.
    """

    interval: int = DEFAULT_SESSION_EXPIRES
    min_se: int = MIN_SE_FLOOR
    refresher: Refresher | None = None
    retries: int = 0

    def headers(self) -> list[tuple[str, str]]:
        """Supported: timer, Session-Expires and Min-SE, to add to the request (§7.1)."""
        return [
            ("Supported", OPTION_TAG),
            ("Session-Expires", str(SessionExpires(self.interval, self.refresher))),
            ("Min-SE", str(self.min_se)),
        ]


def uac_offer(config: SessionTimerConfig | None = None) -> UacOffer:
    """The offer for an initial INVITE from our configuration (RFC 4028 §7.1)."""
    config = config or SessionTimerConfig()
    return UacOffer(config.session_expires, config.min_se)


def uac_retry_after_422(offer: UacOffer, headers: Headers) -> UacOffer:
    """The offer to retry with after a 422's header fields (RFC 4028 §7.3).

    Session-Expires is raised to the 422's Min-SE and Min-SE to the largest seen. Raises
    ``SipParseError`` when the 422 has no (or a malformed) Min-SE, when its Min-SE would not
    raise the interval (retrying would loop), or after ``MAX_422_RETRIES``: the call then fails.
    """
    demanded = _min_se_of(headers)
    if demanded is None:
        raise SipParseError("422 without Min-SE")  # §6: a 422 MUST contain Min-SE
    if offer.retries >= MAX_422_RETRIES:
        raise SipParseError("Too many 422 responses")
    new_min = max(offer.min_se, demanded, MIN_SE_FLOOR)
    if new_min <= offer.interval:
        raise SipParseError("422 Min-SE does not exceed the offered Session-Expires")
    return UacOffer(new_min, new_min, offer.refresher, offer.retries + 1)


def uac_process_2xx(headers: Headers) -> Negotiated | None:
    """What a 2xx to our INVITE/UPDATE agreed (RFC 4028 §7.2); None: no session timer.

    A 2xx without Session-Expires turns the timer off, also mid-dialog (§7.2). A refresher the
    UAS left out (it MUST set one, §9) is taken as ours: a needless refresh is harmless, while
    both sides waiting would end the call. Raises ``SipParseError`` for a malformed
    Session-Expires, for ``Require: timer`` without one (§7.2), and for an interval below
    the 90 s floor (§4).
    """
    agreed = _session_expires_of(headers)
    if agreed is None:
        if _lists_timer(headers, "Require"):
            raise SipParseError("Require: timer without Session-Expires")
        return None
    if agreed.interval < MIN_SE_FLOOR:
        raise SipParseError("Session-Expires below 90 seconds")
    refresher = agreed.refresher or "uac"
    return Negotiated(agreed.interval, refresher, refresher == "uac")


# --- the timer (RFC 4028 §10) ------------------------------------------------------------------


def expiry_margin(interval: float) -> float:
    """How long before expiry the side not refreshing sends BYE: min(32, interval/3) (§10)."""
    return min(32.0, interval / 3)


class SessionTimer:
    """The session timer of one leg: when to refresh, when to give up.

    After ``start`` (and after each ``refreshed``) ``due`` reports each action once:
    "refresh" at half the interval when we refresh (§10: RECOMMENDED once half the interval
    has elapsed), then "expire" at interval - min(32, interval/3) (§10) if no refresh succeeded
    by then, on either side: send BYE. ``next_deadline`` is the time ``due`` next has something
    to say, None when idle.
    """

    __slots__ = ("_expires_at", "_interval", "_refresh_at", "we_refresh")

    def __init__(self) -> None:
        self._interval: float | None = None
        self.we_refresh = False
        self._refresh_at: float | None = None
        self._expires_at: float | None = None

    @property
    def interval(self) -> float | None:
        return self._interval

    @property
    def running(self) -> bool:
        return self._expires_at is not None

    def start(self, interval: float, we_refresh: bool, now: float) -> None:
        """Run (or re-run, after a refresh renegotiated) with an agreed interval."""
        if not interval > 0:
            raise ValueError("interval must be positive")
        self._interval = interval
        self.we_refresh = we_refresh
        self.refreshed(now)

    def refreshed(self, now: float) -> None:
        """A refresh succeeded at ``now`` (the 2xx to a re-INVITE/UPDATE), same terms."""
        interval = self._interval
        if interval is None:
            raise ValueError("session timer not started")
        self._refresh_at = now + interval / 2 if self.we_refresh else None
        self._expires_at = now + interval - expiry_margin(interval)

    def stop(self) -> None:
        """No timer any more (the call ended, or a 2xx turned the timer off, §7.2)."""
        self._interval = None
        self._refresh_at = None
        self._expires_at = None

    def next_deadline(self) -> float | None:
        if self._refresh_at is not None:
            return self._refresh_at
        return self._expires_at

    def due(self, now: float) -> Action | None:
        """The action due at ``now``, each reported once; None when nothing is due."""
        if self._expires_at is not None and now >= self._expires_at:
            self._refresh_at = None
            self._expires_at = None
            return "expire"
        if self._refresh_at is not None and now >= self._refresh_at:
            self._refresh_at = None
            return "refresh"
        return None
