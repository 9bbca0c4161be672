"""Transfer pieces (sip/refer.py): Refer-To (RFC 3515), Replaces (RFC 3891), sipfrag NOTIFY
bodies (RFC 3515 §2.4.5, RFC 3420) and the application/dtmf-relay INFO body."""

from __future__ import annotations

import contextlib
import re
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sip.dialog import DialogId
from sip.errors import SipParseError
from sip.message import Headers, header_key
from sip.parser import parse_message
from sip.refer import (
    DTMF_RELAY_CONTENT_TYPE,
    MAX_DTMF_DURATION_MS,
    SIPFRAG_CONTENT_TYPE,
    Replaces,
    dtmf_relay_body,
    format_replaces,
    parse_refer_to,
    parse_replaces,
    refer_event,
    sipfrag,
    subscription_active,
    subscription_terminated,
)
from sip.uri import SipUri, TelUri

# --- Refer-To (RFC 3515 §2.1) ------------------------------------------------------------------


def test_refer_to_addr_spec() -> None:
    target = parse_refer_to("sip:bob@biloxi.example.com")
    assert target.uri == "sip:bob@biloxi.example.com"
    assert isinstance(target.parsed, SipUri) and target.parsed.user == "bob"
    assert (target.display, target.params, target.headers, target.replaces) == (None, {}, (), None)
    assert target.method == "INVITE"


def test_refer_to_name_addr_with_display_name_and_params() -> None:
    target = parse_refer_to('"Bob" <sip:bob@biloxi.example.com;transport=tcp>;x=1')
    assert target.uri == "sip:bob@biloxi.example.com;transport=tcp"
    assert target.display == '"Bob"'
    assert target.params == {"x": "1"}


def test_refer_to_compact_form_is_the_same_header() -> None:
    headers = Headers([("r", "<sip:carol@chicago.example.com>")])
    assert header_key("r") == "refer-to"
    value = headers.get("Refer-To")
    assert value is not None
    assert parse_refer_to(value).uri == "sip:carol@chicago.example.com"


def test_refer_to_with_an_escaped_replaces_rfc_3891_example() -> None:
    # RFC 3891 §3 / RFC 5589 style: the Replaces rides %-escaped in the Refer-To URI.
    target = parse_refer_to(
        "<sips:a8342043f@atlanta.example.com?Replaces="
        "12345601%40atlanta.example.com%3Bfrom-tag%3D314159%3Bto-tag%3D1234567>"
    )
    assert target.uri == "sips:a8342043f@atlanta.example.com"
    assert isinstance(target.parsed, SipUri) and target.parsed.headers == {}
    assert target.headers == (
        ("Replaces", "12345601@atlanta.example.com;from-tag=314159;to-tag=1234567"),
    )
    assert target.replaces == Replaces("12345601@atlanta.example.com", "1234567", "314159")


def test_refer_to_keeps_every_embedded_header_in_order_and_unescaped() -> None:
    target = parse_refer_to(
        "<sip:bob@h.example.com;method=INVITE?Require=replaces"
        "&replaces=c1%3Bto-tag%3Da%3Bfrom-tag%3Db&Subject=Hello%20there>"
    )
    assert target.uri == "sip:bob@h.example.com;method=INVITE"
    assert target.headers == (
        ("Require", "replaces"),
        ("replaces", "c1;to-tag=a;from-tag=b"),
        ("Subject", "Hello there"),
    )
    assert target.replaces == Replaces("c1", "a", "b")


def test_refer_to_user_part_may_hold_a_question_mark() -> None:
    # RFC 4475 §3.1.1.2: '?' in the userinfo does not start the headers.
    target = parse_refer_to("<sip:a?b@h.example.com?Replaces=c%3Bto-tag%3D1%3Bfrom-tag%3D2>")
    assert target.uri == "sip:a?b@h.example.com"
    assert target.replaces == Replaces("c", "1", "2")


def test_refer_to_method_parameter() -> None:
    assert parse_refer_to("<sip:bob@h.example.com;method=bye>").method == "BYE"
    assert parse_refer_to("<tel:+15551234>").method == "INVITE"


def test_refer_to_other_schemes_are_parsed_and_left_to_the_caller() -> None:
    assert isinstance(parse_refer_to("<tel:+1-555-1234>").parsed, TelUri)
    web = parse_refer_to("<http://example.com/a?b=c>")
    assert web.uri == "http://example.com/a?b=c" and web.headers == ()


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "Empty Refer-To"),
        ("   ", "Empty Refer-To"),
        ("<sip:bob@h.example.com", "Malformed Refer-To: missing '>'"),
        (
            "sip:bob@h.example.com?Replaces=abc",
            "Malformed Refer-To: a URI with ',' or '?' must be enclosed in <>",
        ),
        ("<sip:bob@h.example.com>, <sip:carol@h.example.com>", "Malformed Refer-To"),
        ("<not a uri>", "Malformed Refer-To URI"),
        ("<sip:bob@h.example.com?Replaces=%ZZ>", "Malformed Refer-To URI"),
        (
            "<sip:b@h.example.com?Replaces=c1%3Bto-tag%3Da>",
            "Malformed Refer-To: Replaces without from-tag",
        ),
        (
            "<sip:b@h.example.com?Replaces=%3Bto-tag%3Da%3Bfrom-tag%3Db>",
            "Malformed Refer-To: Replaces without Call-ID",
        ),
        (
            "<sip:b@h.example.com?Replaces=c%3Bto-tag%3Da%3Bfrom-tag%3Db"
            "&Replaces=d%3Bto-tag%3Da%3Bfrom-tag%3Db>",
            "Malformed Refer-To: multiple Replaces",
        ),
        # header injection: an escaped CRLF must not reach the INVITE built from the target
        (
            "<sip:b@h.example.com?Subject=hi%0D%0AVia%3A%20SIP/2.0/UDP%20evil>",
            "Malformed Refer-To: control character in URI header",
        ),
        (
            "<sip:b@h.example.com?Subject=%00>",
            "Malformed Refer-To: control character in URI header",
        ),
        ("<sip:b@h.example.com?Subject=%FF%FE>", "Malformed Refer-To: bad escape in URI header"),
    ],
)
def test_refer_to_refuses_bad_values_with_a_reason(value: str, reason: str) -> None:
    with pytest.raises(SipParseError) as info:
        parse_refer_to(value)
    assert info.value.reason == reason
    assert info.value.status == 400


# --- Replaces (RFC 3891 §6.1) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "98732@sip.example.com;from-tag=r33th4x0r;to-tag=ff87ff",
            Replaces("98732@sip.example.com", "ff87ff", "r33th4x0r"),
        ),
        ("abc;to-tag=1;from-tag=2;early-only", Replaces("abc", "1", "2", True)),
        (" abc ; To-Tag = 1 ; FROM-TAG=2 ; Early-Only ", Replaces("abc", "1", "2", True)),
        ('abc;x="a;b";to-tag=1;y;from-tag=2', Replaces("abc", "1", "2")),  # generic-params
        ("a(b)<c>:d@[::1];to-tag=t;from-tag=f", Replaces("a(b)<c>:d@[::1]", "t", "f")),
        ("a@b@c;to-tag=t;from-tag=f", Replaces("a@b@c", "t", "f")),  # as sip.validate allows
    ],
)
def test_parse_replaces(value: str, expected: Replaces) -> None:
    assert parse_replaces(value) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "Replaces without Call-ID"),
        (";to-tag=a;from-tag=b", "Replaces without Call-ID"),
        ("a b;to-tag=a;from-tag=b", "Malformed Replaces Call-ID"),
        ("a\x00b;to-tag=a;from-tag=b", "Malformed Replaces Call-ID"),
        ("abc", "Replaces without to-tag"),
        ("abc;from-tag=b", "Replaces without to-tag"),
        ("abc;to-tag=a", "Replaces without from-tag"),
        ("abc;to-tag=a;to-tag=a;from-tag=b", "Multiple to-tag in Replaces"),
        ("abc;to-tag=a;from-tag=b;from-tag=c", "Multiple from-tag in Replaces"),
        ("abc;to-tag;from-tag=b", "Malformed to-tag in Replaces"),
        ('abc;to-tag="a";from-tag=b', "Malformed to-tag in Replaces"),
        ("abc;to-tag=a;from-tag=b;early-only=yes", "Malformed early-only in Replaces"),
        ("abc;;to-tag=a;from-tag=b", "Malformed Replaces parameter"),
        ("abc;to-tag=;from-tag=b", "Malformed Replaces parameter"),
        ('abc;to-tag=a;from-tag=b;x="open', "Malformed Replaces parameter"),
        ("abc;to-tag=a;from-tag=b;", "Malformed Replaces parameter"),
    ],
)
def test_parse_replaces_refuses_bad_values_with_a_reason(value: str, reason: str) -> None:
    with pytest.raises(SipParseError) as info:
        parse_replaces(value)
    assert info.value.reason == reason
    assert info.value.status == 400


def test_format_replaces() -> None:
    assert format_replaces("c@h", "t", "f") == "c@h;to-tag=t;from-tag=f"
    assert format_replaces("c@h", "t", "f", early_only=True) == "c@h;to-tag=t;from-tag=f;early-only"
    assert str(Replaces("c@h", "t", "f", True)) == "c@h;to-tag=t;from-tag=f;early-only"


@pytest.mark.parametrize(
    ("call_id", "to_tag", "from_tag"),
    [("", "t", "f"), ("a b", "t", "f"), ("c", "", "f"), ("c", "t", "f;x"), ("c", "t;x", "f")],
)
def test_format_replaces_refuses_what_it_cannot_write(
    call_id: str, to_tag: str, from_tag: str
) -> None:
    with pytest.raises(ValueError):
        format_replaces(call_id, to_tag, from_tag)


def test_replaces_names_the_dialog_from_the_receivers_side() -> None:
    # The UA receiving the INVITE with Replaces finds its own dialog: local tag = to-tag.
    replaces = Replaces("call-1@edge", to_tag="R", from_tag="L", early_only=True)
    assert replaces.dialog_id() == DialogId("call-1@edge", "R", "L")


def test_refer_to_with_an_escaped_at_sign_in_the_replaces_call_id() -> None:
    target = parse_refer_to(
        "<sip:carol@chicago.example.com?Replaces=c%40h%3Bto-tag%3Dt%3Bfrom-tag%3Df>"
    )
    assert target.uri == "sip:carol@chicago.example.com"
    assert target.replaces == Replaces("c@h", "t", "f")


def test_refer_to_keeps_replaces_after_other_headers() -> None:
    target = parse_refer_to(
        "<sip:c@h.example.com?Require=replaces&Replaces=c%3Bto-tag%3Dt%3Bfrom-tag%3Df>"
    )
    assert target.headers[0] == ("Require", "replaces")
    assert target.replaces == Replaces("c", "t", "f")
    assert target.uri == "sip:c@h.example.com"


def _refer_to_replacing(target_uri: str, replaces: Replaces) -> str:
    """``<target?Replaces=...>``, the value %-escaped into the URI header (RFC 3261 §19.1.1)."""
    return f"<{target_uri}?Replaces={quote(str(replaces), safe='')}>"


# RFC 3261 §25.1 word characters (callid = word ["@" word]) and token characters.
_WORD_CHARS = "abcXYZ019-.!%*_+`'~()<>:\\\"/[]?{}"
_TOKEN_CHARS = "abcXYZ019-.!%*_+`'~"
_words = st.text(alphabet=_WORD_CHARS, min_size=1, max_size=20)
_tokens = st.text(alphabet=_TOKEN_CHARS, min_size=1, max_size=20)


@given(
    call_id=st.one_of(_words, st.builds(lambda a, b: f"{a}@{b}", _words, _words)),
    to_tag=_tokens,
    from_tag=_tokens,
    early_only=st.booleans(),
)
def test_replaces_round_trips_through_its_header_and_a_refer_to(
    call_id: str, to_tag: str, from_tag: str, early_only: bool
) -> None:
    replaces = Replaces(call_id, to_tag, from_tag, early_only)
    assert parse_replaces(str(replaces)) == replaces
    refer_to = _refer_to_replacing("sip:carol@chicago.example.com", replaces)
    target = parse_refer_to(refer_to)
    assert target.replaces == replaces
    assert target.uri == "sip:carol@chicago.example.com"


@given(st.text(max_size=80))
def test_parse_refer_to_raises_only_sip_parse_error(value: str) -> None:
    with contextlib.suppress(SipParseError):
        parse_refer_to(value)


@given(st.text(max_size=80))
def test_parse_replaces_raises_only_sip_parse_error(value: str) -> None:
    with contextlib.suppress(SipParseError):
        parse_replaces(value)


# --- NOTIFY for the implicit subscription (RFC 3515 §2.4.4 - §2.4.7) ---------------------------


def test_sipfrag_body() -> None:
    assert sipfrag(100, "Trying") == b"SIP/2.0 100 Trying\r\n"
    assert sipfrag(200, "OK") == b"SIP/2.0 200 OK\r\n"
    assert sipfrag(503, "Service Unavailable") == b"SIP/2.0 503 Service Unavailable\r\n"
    assert SIPFRAG_CONTENT_TYPE == "message/sipfrag;version=2.0"


@pytest.mark.parametrize(("status", "reason"), [(99, "x"), (700, "x"), (200, "OK\r\nVia: x")])
def test_sipfrag_refuses_what_it_cannot_write(status: int, reason: str) -> None:
    with pytest.raises(ValueError):
        sipfrag(status, reason)


_STATUS_LINE_RE = re.compile(r"SIP/2\.0 ([1-6][0-9][0-9]) ([^\r\n]*)\r\n")


@given(
    st.integers(min_value=100, max_value=699),
    st.text(
        alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF, exclude_characters="\x7f"),
        max_size=40,
    ),
)
def test_sipfrag_is_one_status_line_keeping_the_reason(status: int, reason: str) -> None:
    # RFC 3515 §2.4.5: the body is exactly one Status-Line, UTF-8, CRLF-terminated.
    match = _STATUS_LINE_RE.fullmatch(sipfrag(status, reason).decode("utf-8"))
    assert match is not None
    assert (int(match.group(1)), match.group(2)) == (status, reason)


def test_notify_header_values() -> None:
    assert refer_event() == "refer"
    assert refer_event(2) == "refer;id=2"  # §2.4.6: the CSeq of the REFER
    assert subscription_active(60) == "active;expires=60"
    assert subscription_terminated() == "terminated;reason=noresource"  # §2.4.7
    assert subscription_terminated("timeout") == "terminated;reason=timeout"
    with pytest.raises(ValueError):
        refer_event(-1)
    with pytest.raises(ValueError):
        subscription_active(-1)
    with pytest.raises(ValueError):
        subscription_terminated("no resource")


def test_a_notify_built_from_these_parts_parses() -> None:
    body = sipfrag(200, "OK")
    text = (
        "NOTIFY sip:a@h.example.com SIP/2.0\r\n"
        "Via: SIP/2.0/UDP edge.example.com;branch=z9hG4bK1\r\n"
        "From: <sip:b@h.example.com>;tag=1\r\nTo: <sip:a@h.example.com>;tag=2\r\n"
        "Call-ID: c1\r\nCSeq: 5 NOTIFY\r\n"
        f"Event: {refer_event(3)}\r\nSubscription-State: {subscription_terminated()}\r\n"
        f"Content-Type: {SIPFRAG_CONTENT_TYPE}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    message = parse_message(text.encode() + body)
    assert message.body == b"SIP/2.0 200 OK\r\n"
    assert message.headers.get("o") == "refer;id=3"


# --- DTMF relay over INFO ----------------------------------------------------------------------


def test_dtmf_relay_body() -> None:
    assert dtmf_relay_body("5", 160) == b"Signal=5\r\nDuration=160\r\n"
    assert dtmf_relay_body("*", 100) == b"Signal=*\r\nDuration=100\r\n"
    assert dtmf_relay_body("d", 250) == b"Signal=D\r\nDuration=250\r\n"
    assert DTMF_RELAY_CONTENT_TYPE == "application/dtmf-relay"


@pytest.mark.parametrize(
    ("digit", "duration"),
    [("E", 160), ("", 160), ("12", 160), ("5", 0), ("5", MAX_DTMF_DURATION_MS + 1)],
)
def test_dtmf_relay_body_refuses_what_it_cannot_write(digit: str, duration: int) -> None:
    with pytest.raises(ValueError):
        dtmf_relay_body(digit, duration)


@given(
    st.sampled_from("0123456789*#ABCDabcd"),
    st.integers(min_value=1, max_value=MAX_DTMF_DURATION_MS),
)
def test_dtmf_relay_body_for_every_digit_and_duration(digit: str, duration: int) -> None:
    expected = f"Signal={digit.upper()}\r\nDuration={duration}\r\n".encode("ascii")
    assert dtmf_relay_body(digit, duration) == expected
