"""Session timers (sip/session_timer.py): RFC 4028 negotiation on both sides and the timer."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sip.errors import SipParseError
from sip.message import Headers
from sip.session_timer import (
    DEFAULT_SESSION_EXPIRES,
    MAX_422_RETRIES,
    MIN_SE_FLOOR,
    REASON_422,
    STATUS_422,
    Negotiated,
    SessionExpires,
    SessionTimer,
    SessionTimerConfig,
    UacOffer,
    expiry_margin,
    parse_min_se,
    parse_session_expires,
    supports_timer,
    uac_offer,
    uac_process_2xx,
    uac_retry_after_422,
    uas_negotiate,
)

# --- parsing (RFC 4028 §4, §5) -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1800", SessionExpires(1800)),
        ("1800;refresher=uac", SessionExpires(1800, "uac")),
        ("90;refresher=uas", SessionExpires(90, "uas")),
        (" 4000 ; refresher = UAS ", SessionExpires(4000, "uas")),  # LWS, case-insensitive
        ("1800;foo=bar;refresher=uac;flag", SessionExpires(1800, "uac")),  # generic-params
        ("0001800", SessionExpires(1800)),
        ("0", SessionExpires(0)),  # syntax only: negotiation refuses it
    ],
)
def test_parse_session_expires(value: str, expected: SessionExpires) -> None:
    assert parse_session_expires(value) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "Malformed Session-Expires"),
        ("abc", "Malformed Session-Expires"),
        ("-5", "Malformed Session-Expires"),
        ("1.5", "Malformed Session-Expires"),
        ("18 00", "Malformed Session-Expires"),
        ("١٨٠٠", "Malformed Session-Expires"),  # non-ASCII digits
        ("99999999999", "Session-Expires out of range"),
        ("0" * 5000 + "1" * 20, "Session-Expires out of range"),
        ("1800;refresher=proxy", "Malformed Session-Expires refresher"),
        ("1800;refresher", "Malformed Session-Expires refresher"),
        ("1800;refresher=", "Malformed Session-Expires parameter"),
        ("1800;;refresher=uac", "Malformed Session-Expires parameter"),
        ("1800;", "Malformed Session-Expires parameter"),
    ],
)
def test_parse_session_expires_refuses_bad_values_with_a_reason(value: str, reason: str) -> None:
    with pytest.raises(SipParseError) as info:
        parse_session_expires(value)
    assert info.value.reason == reason
    assert info.value.status == 400


def test_parse_min_se() -> None:
    assert parse_min_se("90") == 90
    assert parse_min_se(" 1200 ;x=y") == 1200


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "Malformed Min-SE"),
        ("ninety", "Malformed Min-SE"),
        ("90;;", "Malformed Min-SE parameter"),
        ("123456789012", "Min-SE out of range"),
    ],
)
def test_parse_min_se_refuses_bad_values_with_a_reason(value: str, reason: str) -> None:
    with pytest.raises(SipParseError) as info:
        parse_min_se(value)
    assert info.value.reason == reason


@given(
    st.integers(min_value=0, max_value=2**32 - 1),
    st.sampled_from([None, "uac", "uas"]),
)
def test_session_expires_round_trips(interval: int, refresher: str | None) -> None:
    value = SessionExpires(interval, refresher)  # type: ignore[arg-type]
    assert parse_session_expires(str(value)) == value


def test_supports_timer_reads_supported_and_require_case_insensitively() -> None:
    assert supports_timer(Headers([("Supported", "100rel, Timer")]))
    assert supports_timer(Headers([("k", "replaces"), ("Supported", "timer")]))
    assert supports_timer(Headers([("Require", "timer")]))
    assert not supports_timer(Headers([("Supported", "100rel, timers")]))
    assert not supports_timer(Headers())


# --- the UAS (RFC 4028 §9) ---------------------------------------------------------------------


def _request(*fields: tuple[str, str]) -> Headers:
    return Headers(list(fields))


def test_uas_without_session_expires_or_support_runs_no_timer() -> None:
    decision = uas_negotiate(_request())
    assert decision == type(decision)(False, (), None)


def test_uas_chooses_interval_and_refresher_when_the_uac_supports_but_asks_nothing() -> None:
    decision = uas_negotiate(_request(("Supported", "timer")))
    assert not decision.reject
    assert decision.negotiated == Negotiated(DEFAULT_SESSION_EXPIRES, "uac", False)
    assert decision.headers == (("Session-Expires", "1800;refresher=uac"), ("Require", "timer"))


def test_uas_honours_the_requests_min_se_when_choosing() -> None:
    decision = uas_negotiate(_request(("Supported", "timer"), ("Min-SE", "3600")))
    assert decision.negotiated is not None
    assert decision.negotiated.interval == 3600


def test_uas_rejects_a_too_short_interval_with_422_and_our_min_se() -> None:
    # §9: only a UAC that supports timers can act on a 422.
    decision = uas_negotiate(_request(("Supported", "timer"), ("Session-Expires", "60")))
    assert decision.reject
    assert decision.headers == (("Min-SE", "90"),)
    assert decision.negotiated is None
    config = SessionTimerConfig(min_se=300)
    decision = uas_negotiate(_request(("Supported", "timer"), ("x", "200")), config)
    assert decision.reject
    assert decision.headers == (("Min-SE", "300"),)
    assert (STATUS_422, REASON_422) == (422, "Session Interval Too Small")


def test_uas_raises_a_too_short_interval_when_the_uac_does_not_support_timers() -> None:
    # RFC 4028 §8.1 behaviour, extended to the UAS by erratum 1687; refresher=uas and no
    # Require: timer, which the UAC would not understand (§9).
    decision = uas_negotiate(_request(("Session-Expires", "60;refresher=uac")))
    assert not decision.reject
    assert decision.negotiated == Negotiated(MIN_SE_FLOOR, "uas", True)
    assert decision.headers == (("Session-Expires", "90;refresher=uas"),)


def test_uas_reduces_but_never_increases_the_offered_interval() -> None:
    supported = ("Supported", "timer")
    long = uas_negotiate(_request(supported, ("Session-Expires", "7200")))
    assert long.negotiated is not None
    assert long.negotiated.interval == 1800
    short = uas_negotiate(_request(supported, ("Session-Expires", "600")))
    assert short.negotiated is not None
    assert short.negotiated.interval == 600


def test_uas_does_not_reduce_below_the_requests_min_se() -> None:
    config = SessionTimerConfig(min_se=90, session_expires=600)
    decision = uas_negotiate(
        _request(("Supported", "timer"), ("Session-Expires", "1800"), ("Min-SE", "1200")), config
    )
    assert decision.negotiated is not None
    assert decision.negotiated.interval == 1200


def test_uas_rejects_a_request_below_its_own_min_se_with_the_larger_minimum() -> None:
    decision = uas_negotiate(
        _request(("Supported", "timer"), ("Session-Expires", "100"), ("Min-SE", "200"))
    )
    assert decision.reject
    assert decision.headers == (("Min-SE", "200"),)


@pytest.mark.parametrize(
    ("refresher", "we_refresh"), [("uac", False), ("uas", True)], ids=["uac", "uas"]
)
def test_uas_keeps_the_uacs_refresher_choice(refresher: str, we_refresh: bool) -> None:
    decision = uas_negotiate(
        _request(("Supported", "timer"), ("Session-Expires", f"1800;refresher={refresher}")),
        SessionTimerConfig(prefer_refresher="uas" if refresher == "uac" else "uac"),
    )
    assert decision.negotiated == Negotiated(1800, refresher, we_refresh)  # type: ignore[arg-type]
    assert ("Require", "timer") in decision.headers
    assert decision.headers[0] == ("Session-Expires", f"1800;refresher={refresher}")


def test_uas_prefers_refreshing_itself_when_configured() -> None:
    decision = uas_negotiate(
        _request(("Supported", "timer"), ("x", "1800")), SessionTimerConfig(prefer_refresher="uas")
    )
    assert decision.negotiated == Negotiated(1800, "uas", True)
    assert decision.headers == (("Session-Expires", "1800;refresher=uas"), ("Require", "timer"))


def test_uas_ignores_the_refresher_of_a_uac_without_timer_support() -> None:
    # A proxy inserted Session-Expires (§8.1): the UAC cannot refresh (§9 table).
    decision = uas_negotiate(_request(("Session-Expires", "1800;refresher=uac")))
    assert decision.negotiated == Negotiated(1800, "uas", True)
    assert decision.headers == (("Session-Expires", "1800;refresher=uas"),)


def test_uas_treats_require_timer_as_support() -> None:
    decision = uas_negotiate(_request(("Require", "timer"), ("Session-Expires", "60")))
    assert decision.reject


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ((("Session-Expires", "soon"),), "Malformed Session-Expires"),
        ((("Min-SE", "-1"),), "Malformed Min-SE"),
        ((("Session-Expires", "1800"), ("x", "900")), "Multiple Session-Expires headers"),
        ((("Min-SE", "90"), ("Min-SE", "120")), "Multiple Min-SE headers"),
        ((("Session-Expires", "1800;refresher=me"),), "Malformed Session-Expires refresher"),
    ],
)
def test_uas_refuses_malformed_requests_with_400(
    fields: tuple[tuple[str, str], ...], reason: str
) -> None:
    with pytest.raises(SipParseError) as info:
        uas_negotiate(_request(("Supported", "timer"), *fields))
    assert info.value.reason == reason
    assert info.value.status == 400


@given(
    offered=st.none() | st.integers(min_value=0, max_value=100_000),
    offered_refresher=st.sampled_from([None, "uac", "uas"]),
    peer_min=st.none() | st.integers(min_value=0, max_value=100_000),
    supported=st.booleans(),
    our_min=st.integers(min_value=90, max_value=10_000),
    extra=st.integers(min_value=0, max_value=10_000),
    prefer=st.sampled_from(["uac", "uas"]),
)
def test_uas_decisions_keep_the_rfc_invariants(
    offered: int | None,
    offered_refresher: str | None,
    peer_min: int | None,
    supported: bool,
    our_min: int,
    extra: int,
    prefer: str,
) -> None:
    config = SessionTimerConfig(our_min, our_min + extra, prefer)  # type: ignore[arg-type]
    fields: list[tuple[str, str]] = [("Supported", "timer")] if supported else []
    if offered is not None:
        se = str(SessionExpires(offered, offered_refresher))  # type: ignore[arg-type]
        fields.append(("Session-Expires", se))
    if peer_min is not None:
        fields.append(("Min-SE", str(peer_min)))
    decision = uas_negotiate(Headers(fields), config)
    floor = max(our_min, peer_min or 90, 90)
    if decision.reject:
        # §9: a 422 only to a UAC that supports timers and offered too little.
        assert supported and offered is not None and offered < floor
        assert decision.headers == (("Min-SE", str(floor)),)
        return
    agreed = decision.negotiated
    if agreed is None:
        assert offered is None and not supported
        return
    assert agreed.interval >= floor
    if offered is not None and offered >= floor:
        assert agreed.interval <= offered  # §9: MUST NOT increase
    if not supported:
        assert agreed.refresher == "uas"
        assert ("Require", "timer") not in decision.headers
    else:
        assert ("Require", "timer") in decision.headers
    assert agreed.we_refresh == (agreed.refresher == "uas")
    assert parse_session_expires(decision.headers[0][1]) == SessionExpires(
        agreed.interval, agreed.refresher
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_se": 89},
        {"min_se": 120, "session_expires": 100},
        {"session_expires": 2**32},
        {"prefer_refresher": "proxy"},
    ],
)
def test_config_refuses_values_rfc_4028_forbids(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        SessionTimerConfig(**kwargs)  # type: ignore[arg-type]


# --- the UAC (RFC 4028 §7) ---------------------------------------------------------------------


def test_uac_offer_headers_for_an_initial_invite() -> None:
    # §7.1: Supported: timer, Session-Expires without refresher (left to the UAS), Min-SE.
    assert uac_offer().headers() == [
        ("Supported", "timer"),
        ("Session-Expires", "1800"),
        ("Min-SE", "90"),
    ]
    offer = uac_offer(SessionTimerConfig(min_se=120, session_expires=600))
    assert offer == UacOffer(600, 120)


def test_uac_offer_headers_for_a_refresh_name_the_refresher() -> None:
    # §7.4: inside the dialog the request says who refreshes, seen from this transaction.
    offer = UacOffer(1800, 90, "uac")
    assert ("Session-Expires", "1800;refresher=uac") in offer.headers()


def test_uac_retry_after_422_raises_the_interval_to_the_422s_min_se() -> None:
    retry = uac_retry_after_422(UacOffer(120, 90), Headers([("Min-SE", "600")]))
    assert retry == UacOffer(600, 600, None, 1)
    assert ("Session-Expires", "600") in retry.headers()
    assert ("Min-SE", "600") in retry.headers()


def test_uac_retry_after_422_keeps_the_largest_min_se_seen() -> None:
    # §7.3: Min-SE of the retry is the largest seen; the interval must still grow.
    retry = uac_retry_after_422(UacOffer(100, 700), Headers([("Min-SE", "300")]))
    assert (retry.interval, retry.min_se) == (700, 700)


@pytest.mark.parametrize(
    ("offer", "fields", "reason"),
    [
        (UacOffer(120), [], "422 without Min-SE"),
        (UacOffer(120), [("Min-SE", "lots")], "Malformed Min-SE"),
        (
            UacOffer(1800),
            [("Min-SE", "600")],
            "422 Min-SE does not exceed the offered Session-Expires",
        ),
        (
            UacOffer(1800),
            [("Min-SE", "1800")],
            "422 Min-SE does not exceed the offered Session-Expires",
        ),
        (UacOffer(120, retries=MAX_422_RETRIES), [("Min-SE", "600")], "Too many 422 responses"),
    ],
)
def test_uac_retry_after_422_refuses_what_would_loop_or_is_malformed(
    offer: UacOffer, fields: list[tuple[str, str]], reason: str
) -> None:
    with pytest.raises(SipParseError) as info:
        uac_retry_after_422(offer, Headers(fields))
    assert info.value.reason == reason


def test_uac_retries_are_bounded() -> None:
    offer = UacOffer(100)
    for step in range(MAX_422_RETRIES):
        offer = uac_retry_after_422(offer, Headers([("Min-SE", str(200 + step))]))
    with pytest.raises(SipParseError):
        uac_retry_after_422(offer, Headers([("Min-SE", "100000")]))


def test_uac_2xx_without_session_expires_means_no_timer() -> None:
    assert uac_process_2xx(Headers()) is None  # §7.2
    assert uac_process_2xx(Headers([("Supported", "timer")])) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1800;refresher=uac", Negotiated(1800, "uac", True)),
        ("600;refresher=uas", Negotiated(600, "uas", False)),
        ("900", Negotiated(900, "uac", True)),  # refresher missing: we refresh, to be safe
    ],
)
def test_uac_2xx_says_who_refreshes(value: str, expected: Negotiated) -> None:
    headers = Headers([("Require", "timer"), ("Session-Expires", value)])
    assert uac_process_2xx(headers) == expected


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ([("Require", "timer")], "Require: timer without Session-Expires"),
        ([("Session-Expires", "30;refresher=uac")], "Session-Expires below 90 seconds"),
        ([("Session-Expires", "1800;refresher=who")], "Malformed Session-Expires refresher"),
        ([("x", "1800"), ("x", "1800")], "Multiple Session-Expires headers"),
    ],
)
def test_uac_2xx_refuses_malformed_answers(fields: list[tuple[str, str]], reason: str) -> None:
    with pytest.raises(SipParseError) as info:
        uac_process_2xx(Headers(fields))
    assert info.value.reason == reason


def _negotiate_across(
    uac: SessionTimerConfig, uas: SessionTimerConfig
) -> tuple[Negotiated | None, Negotiated | None, int]:
    """An INVITE from ``uac`` to ``uas``, obeying 422s: both sides' view and the 422 count."""
    offer = uac_offer(uac)
    rejections = 0
    while True:
        decision = uas_negotiate(Headers(offer.headers()), uas)
        if not decision.reject:
            break
        rejections += 1
        offer = uac_retry_after_422(offer, Headers(list(decision.headers)))
    return uac_process_2xx(Headers(list(decision.headers))), decision.negotiated, rejections


def test_a_422_round_trip_settles_on_the_uas_minimum() -> None:
    ours, theirs, rejections = _negotiate_across(
        SessionTimerConfig(min_se=90, session_expires=120), SessionTimerConfig(min_se=600)
    )
    assert rejections == 1
    assert ours == Negotiated(600, "uac", True)
    assert theirs == Negotiated(600, "uac", False)


@given(
    uac_min=st.integers(min_value=90, max_value=5000),
    uac_extra=st.integers(min_value=0, max_value=5000),
    uas_min=st.integers(min_value=90, max_value=5000),
    uas_extra=st.integers(min_value=0, max_value=5000),
    prefer=st.sampled_from(["uac", "uas"]),
)
def test_both_legs_agree_and_exactly_one_refreshes(
    uac_min: int, uac_extra: int, uas_min: int, uas_extra: int, prefer: str
) -> None:
    ours, theirs, rejections = _negotiate_across(
        SessionTimerConfig(uac_min, uac_min + uac_extra),
        SessionTimerConfig(uas_min, uas_min + uas_extra, prefer),  # type: ignore[arg-type]
    )
    assert rejections <= 1
    assert ours is not None and theirs is not None
    assert ours.interval == theirs.interval >= max(uac_min, uas_min)
    assert ours.refresher == theirs.refresher == prefer
    assert ours.we_refresh != theirs.we_refresh


# --- the timer (RFC 4028 §10) ------------------------------------------------------------------


def test_expiry_margin_is_the_smaller_of_32_seconds_and_a_third() -> None:
    assert expiry_margin(1800) == 32
    assert expiry_margin(90) == 30
    assert expiry_margin(96) == 32


def test_the_refresher_refreshes_at_half_the_interval_then_expires() -> None:
    timer = SessionTimer()
    assert timer.next_deadline() is None
    assert timer.due(1e9) is None
    timer.start(1800, True, now=1000.0)
    assert timer.running and timer.interval == 1800 and timer.we_refresh
    assert timer.next_deadline() == 1900.0
    assert timer.due(1899.9) is None
    assert timer.due(1900.0) == "refresh"
    assert timer.due(1900.0) is None  # reported once
    # No answer to our refresh: give up before the session expires (§10).
    assert timer.next_deadline() == 1000.0 + 1800 - 32
    assert timer.due(2767.0) is None
    assert timer.due(2768.0) == "expire"
    assert timer.due(2768.0) is None
    assert timer.next_deadline() is None
    assert not timer.running


def test_a_successful_refresh_restarts_the_period() -> None:
    timer = SessionTimer()
    timer.start(1800, True, now=0.0)
    assert timer.due(900.0) == "refresh"
    timer.refreshed(901.5)
    assert timer.next_deadline() == 1801.5
    assert timer.due(1801.5) == "refresh"


def test_the_other_side_expires_the_session_without_a_refresh() -> None:
    timer = SessionTimer()
    timer.start(90, False, now=0.0)
    assert timer.next_deadline() == 60.0  # 90 - min(32, 30)
    assert timer.due(45.0) is None  # never asked to refresh
    timer.refreshed(50.0)  # the peer's re-INVITE/UPDATE arrived
    assert timer.next_deadline() == 110.0
    assert timer.due(110.0) == "expire"


def test_a_late_check_reports_expiry_not_a_stale_refresh() -> None:
    timer = SessionTimer()
    timer.start(1800, True, now=0.0)
    assert timer.due(5000.0) == "expire"
    assert timer.due(5000.0) is None


def test_renegotiation_and_stop() -> None:
    timer = SessionTimer()
    timer.start(1800, True, now=0.0)
    timer.start(600, False, now=100.0)  # a refresh changed the terms and the refresher
    assert timer.next_deadline() == 100.0 + 600 - 32
    timer.stop()
    assert timer.next_deadline() is None
    assert timer.due(1e9) is None
    assert not timer.running


def test_the_timer_refuses_misuse() -> None:
    timer = SessionTimer()
    with pytest.raises(ValueError):
        timer.refreshed(0.0)
    with pytest.raises(ValueError):
        timer.start(0, True, 0.0)


@given(
    interval=st.integers(min_value=1, max_value=2**32 - 1),
    we_refresh=st.booleans(),
    start=st.floats(min_value=0, max_value=1e9, allow_nan=False),
)
def test_the_refresh_always_comes_before_expiry(
    interval: int, we_refresh: bool, start: float
) -> None:
    timer = SessionTimer()
    timer.start(interval, we_refresh, start)
    first = timer.next_deadline()
    assert first is not None and start < first <= start + interval
    actions = []
    while (deadline := timer.next_deadline()) is not None:
        actions.append(timer.due(deadline))
    assert actions == (["refresh", "expire"] if we_refresh else ["expire"])
