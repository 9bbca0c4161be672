"""Malformed input: a corpus with expected answers, and fuzzing of every parsing entry point.

The corpus lives in ``tests/unit/malformed/<case>.sip`` (raw bytes, CRLF line ends, hosts
127.0.0.1 or ::1 only); ``CASES`` below says what the parse + validate layer must do with each
file. Principle 3 of DESIGN.md: bad input gets a precise answer, and nothing but
``SipParseError`` ever escapes.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sip.errors import SipParseError
from sip.framer import StreamFramer
from sip.headers import parse_name_addr, parse_via
from sip.message import Request, Response
from sip.parser import parse_message
from sip.uri import parse_uri
from sip.validate import validate_request, validate_response

CORPUS = Path(__file__).parent / "malformed"


@dataclass(frozen=True)
class Reject:
    """A request the parse/validate layer refuses: answer ``status`` with ``reason`` in it."""

    status: int
    reason: str


@dataclass(frozen=True)
class Drop:
    """Nothing to answer (a response, or bytes with no request line): refused, then dropped."""

    reason: str


@dataclass(frozen=True)
class Accept:
    """Well-formed after all; ``body``/``method`` say how it must be read."""

    body: bytes = b""
    method: str | None = None


Outcome = Reject | Drop | Accept

CASES: dict[str, Outcome] = {
    # RFC 3261 §8.1.1: the mandatory fields. (Without Via the edge has no address to answer;
    # the layer still names the fault.)
    "missing-via": Reject(400, "Missing Via header"),
    "missing-from": Reject(400, "Missing From header"),
    "missing-to": Reject(400, "Missing To header"),
    "missing-call-id": Reject(400, "Missing Call-ID header"),
    "missing-cseq": Reject(400, "Missing CSeq header"),
    # RFC 3261 §20.16 / §8.1.1.5: CSeq = 32-bit unsigned number, LWS, method.
    "cseq-non-numeric": Reject(400, "Malformed CSeq"),
    "cseq-negative": Reject(400, "Malformed CSeq"),
    "cseq-over-32-bits": Reject(400, "CSeq out of range"),
    "cseq-5000-digits": Reject(400, "CSeq out of range"),
    "cseq-missing-method": Reject(400, "Malformed CSeq"),
    "cseq-method-not-token": Reject(400, "Malformed CSeq"),
    "cseq-method-mismatch": Reject(400, "CSeq method mismatch"),  # RFC 4475 §3.1.2.17
    # RFC 3261 §18.3, §20.14; RFC 4475 §3.1.2.2-3, §3.3.9.
    "content-length-beyond-body": Reject(400, "Content-Length larger than body"),
    # Over UDP the octets past Content-Length are noise (§18.3): the body is truncated to
    # Content-Length and the message is good.
    "content-length-short-truncates-body": Accept(body=b"hello"),
    "content-length-negative": Reject(400, "Malformed Content-Length"),
    "content-length-non-numeric": Reject(400, "Malformed Content-Length"),
    "content-length-two-values": Reject(400, "Conflicting Content-Length headers"),
    "content-length-over-limit": Reject(400, "Content-Length too large"),
    "content-length-5000-digits": Reject(400, "Content-Length too large"),
    # Limits (DESIGN.md principle 3): one 70 KiB field, 300 fields.
    "huge-header-70k": Reject(513, "Message too large"),
    "too-many-header-lines": Reject(400, "Too many header fields"),
    # RFC 4475 §3.1.2.6.
    "unterminated-quote-in-to": Reject(400, "Unterminated quoted string in To"),
    "unterminated-quote-in-from": Reject(400, "Unterminated quoted string in From"),
    # RFC 5118 §4.2, §4.10; RFC 3261 §25.1 IPv6reference.
    "ipv6-ruri-missing-bracket": Reject(400, "Malformed Request-URI"),
    "ipv6-ruri-unbracketed": Reject(400, "Malformed Request-URI"),
    "ipv6-ruri-bad-hex": Reject(400, "Malformed Request-URI"),
    "ipv6-ruri-three-colons": Reject(400, "Malformed Request-URI"),
    "ipv6-to-missing-bracket": Reject(400, "Malformed To URI"),
    # No request line to answer.
    "binary-garbage": Drop("Header section not terminated"),
    "binary-garbage-with-empty-line": Drop("Malformed request line"),
    "empty": Drop("Header section not terminated"),
    "only-crlfs": Drop("Empty start line"),
    # NUL octets in the start line.
    "nul-in-method": Reject(400, "Malformed method"),
    "nul-in-request-uri": Reject(400, "Malformed Request-URI"),
    "nul-in-version": Reject(400, "Malformed SIP version"),
    # Cut datagrams.
    "truncated-in-headers": Reject(400, "Header section not terminated"),
    "truncated-in-body": Reject(400, "Content-Length larger than body"),
    # RFC 3261 §8.2.2.1, §8.2.1.
    "unknown-uri-scheme": Reject(416, "Unsupported URI Scheme"),
    "sip-version-3": Reject(505, "Version Not Supported"),
    # RFC 3261 §7.1: methods are case-sensitive; "options" is an extension method, answered
    # by the application (405/501), and its CSeq must say "options" too.
    "lowercase-method": Accept(method="options"),
    "lowercase-method-cseq-upper-case": Reject(400, "CSeq method mismatch"),
    # RFC 3261 §7.3.1 header lines.
    "header-without-colon": Reject(400, "Malformed header line"),
    "header-name-with-space": Reject(400, "Malformed header name"),
    "header-name-non-ascii": Reject(400, "Malformed header name"),
    "bare-cr-in-header": Reject(400, "Bare CR in header line"),
    # A bare LF ends the line: the smuggled Call-ID is seen, and it is one too many.
    "bare-lf-smuggles-a-call-id": Reject(400, "Multiple Call-ID headers"),
    # RFC 3261 §20.42 Via.
    "via-without-sent-by": Reject(400, "Malformed Via"),
    "via-empty-sent-by-before-params": Reject(400, "Malformed Via"),
    "via-port-99999": Reject(400, "Malformed Via"),
    "via-empty-parameter": Reject(400, "Malformed Via"),  # RFC 4475 §3.1.2.1
    # RFC 3261 §20.22 (0-255), §20.19 (32-bit); the project refuses rather than ignores them.
    "max-forwards-non-numeric": Reject(400, "Malformed Max-Forwards"),
    "max-forwards-256": Reject(400, "Max-Forwards out of range"),
    "max-forwards-negative": Reject(400, "Malformed Max-Forwards"),
    "expires-non-numeric": Reject(400, "Malformed Expires"),
    "expires-over-32-bits": Reject(400, "Expires out of range"),
    # RFC 3261 §20.10 name-addr.
    "from-unterminated-angle": Reject(400, "Malformed From: missing '>'"),
    "to-uri-with-space": Reject(400, "Malformed To URI"),
    "to-display-name-with-comma": Reject(400, "Malformed display name in To"),  # RFC 4475 3.1.2.15
    # RFC 3261 §7.3.1, RFC 4475 §3.3.8: single-valued fields appear once.
    "duplicate-call-id": Reject(400, "Multiple Call-ID headers"),
    "call-id-with-space": Reject(400, "Malformed Call-ID"),
    # Responses: never answered (RFC 4475 §3.1.2.19), just dropped.
    "status-code-99": Drop("Malformed status code"),
    "status-code-700": Drop("Malformed status code"),
    "status-code-4294967301": Drop("Malformed status code"),
    "response-missing-call-id": Drop("Missing Call-ID header"),
    "response-missing-via": Drop("Missing Via header"),
    "response-sip-version-3": Drop("Version Not Supported"),
    # RFC 3261 §7.1 Request-Line = Method SP Request-URI SP SIP-Version CRLF.
    "request-uri-in-angle-brackets": Reject(400, "Malformed Request-URI"),  # RFC 4475 3.1.2.7
    "request-line-double-space": Reject(400, "Malformed request line"),  # RFC 4475 3.1.2.9
    "request-line-without-version": Reject(400, "Malformed request line"),
    "leading-space-before-start-line": Reject(400, "Leading whitespace before start line"),
}

# Cases whose point is a stray CR or LF, or that are not text at all.
_NOT_CRLF_TEXT = {"bare-cr-in-header", "bare-lf-smuggles-a-call-id", "binary-garbage"}
_REQUEST_LINE = re.compile(rb"[\x21-\x7e]+ [\x21-\x7e]+ [\x21-\x7e]+\r?\n")


def run(data: bytes) -> Request | Response:
    """What the edge does with a datagram before any application logic."""
    message = parse_message(data)
    if isinstance(message, Request):
        validate_request(message)
    else:
        validate_response(message)
    return message


def read(name: str) -> bytes:
    return (CORPUS / f"{name}.sip").read_bytes()


def test_corpus_files_and_expectations_match_one_to_one() -> None:
    files = {path.stem for path in CORPUS.glob("*.sip")}
    assert files == set(CASES)
    assert len(CASES) >= 40


@pytest.mark.parametrize("name", sorted(CASES))
def test_corpus_file_uses_crlf_and_loopback_addresses_only(name: str) -> None:
    data = read(name)
    if name not in _NOT_CRLF_TEXT:
        assert re.search(rb"(?<!\r)\n|\r(?!\n)", data) is None
    assert {m for m in re.findall(rb"\d+\.\d+\.\d+\.\d+", data)} <= {b"127.0.0.1"}
    for line in re.split(rb"\r?\n", data):
        if re.match(rb"(?i)(via|contact|v|m)[ \t]*:", line):
            assert re.findall(rb"\d+\.\d+\.\d+\.\d+|\[[^\]]*\]?", line) in ([], [b"127.0.0.1"])


@pytest.mark.parametrize("name", sorted(CASES))
def test_corpus_message_gets_its_expected_outcome(name: str) -> None:
    data = read(name)
    expected = CASES[name]
    if isinstance(expected, Accept):
        message = run(data)
        assert isinstance(message, Request)
        assert message.body == expected.body
        if expected.method is not None:
            assert message.method == expected.method
        return
    with pytest.raises(SipParseError) as caught:
        run(data)
    assert expected.reason in caught.value.reason
    if isinstance(expected, Reject):
        assert caught.value.status == expected.status
        assert not data.startswith(b"SIP/"), "a response is never answered"
    else:
        assert data.startswith(b"SIP/") or not _REQUEST_LINE.match(data)


@pytest.mark.parametrize("name", sorted(CASES))
def test_corpus_message_on_a_stream_raises_only_sip_parse_error(name: str) -> None:
    framer = StreamFramer()
    try:
        frames = framer.feed(read(name))
    except SipParseError:
        return
    for frame in frames:
        if isinstance(frame, bytes):
            with contextlib.suppress(SipParseError):
                run_stream(frame)


def run_stream(frame: bytes) -> None:
    message = parse_message(frame, datagram=False)
    if isinstance(message, Request):
        validate_request(message)
    else:
        validate_response(message)


# --- fuzzing -----------------------------------------------------------------------------------

VALID_MESSAGES = [
    (
        b"INVITE sip:bob@127.0.0.1;transport=udp SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK776asdhds;rport\r\n"
        b"v: SIP/2.0/TCP [::1]:5080;branch=z9hG4bKb, SIP/2.0/UDP 127.0.0.1;received=::1\r\n"
        b"Max-Forwards: 70\r\n"
        b'From: "Alice \\"A\\"" <sip:alice@127.0.0.1>;tag=1928301774\r\n'
        b"t: sip:bob@127.0.0.1\r\n"
        b"Call-ID: a84b4c76e66710@127.0.0.1\r\n"
        b"CSeq: 314159\r\n INVITE\r\n"
        b"Contact: <sip:alice@127.0.0.1:5070;ob>;expires=60, sip:x@127.0.0.1;q=0.5\r\n"
        b"Expires: 3600\r\n"
        b"Content-Type: application/sdp\r\n"
        b"Content-Length: 31\r\n\r\n"
        b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n"
    ),
    (
        b"SIP/2.0 200 OK\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK776asdhds;received=127.0.0.1\r\n"
        b"From: Alice <sip:alice@127.0.0.1>;tag=1928301774\r\n"
        b"To: <sip:bob@127.0.0.1>;tag=a6c85cf\r\n"
        b"Call-ID: a84b4c76e66710@127.0.0.1\r\n"
        b"CSeq: 314159 INVITE\r\n"
        b"l: 0\r\n\r\n"
    ),
    (
        b"REGISTER sips:[2001:db8::10]:5061 SIP/2.0\r\n"
        b"Via: SIP/2.0/TLS 127.0.0.1;branch=z9hG4bKnashds7\r\n"
        b"From: <sips:bob@[2001:db8::10]>;tag=456248\r\n"
        b"To: <sips:bob@[2001:db8::10]>\r\n"
        b"i: 843817637684230@127.0.0.1\r\n"
        b"CSeq: 1826 REGISTER\r\n"
        b"m: <sips:bob@127.0.0.1?Route=%3Csip:127.0.0.1%3E>\r\n"
        b"Expires: 7200\r\n\r\n"
    ),
]
_INSERTS = [b"\r", b"\n", b"\r\n", b"\r\n ", b"\x00", b'"', b":", b",", b";", b"<", b">", b" "]

_mutation = st.tuples(
    st.sampled_from(["flip", "truncate", "insert", "delete"]),
    st.integers(min_value=0),
    st.integers(0, 255),
    st.sampled_from(_INSERTS),
)


def mutate(data: bytes, mutations: list[tuple[str, int, int, bytes]]) -> bytes:
    buf = bytearray(data)
    for kind, where, byte, insert in mutations:
        at = where % (len(buf) + 1)
        if kind == "flip" and at < len(buf):
            buf[at] ^= byte or 1
        elif kind == "truncate":
            del buf[at:]
        elif kind == "insert":
            buf[at:at] = insert
        elif kind == "delete" and at < len(buf):
            del buf[at]
    return bytes(buf)


def parse_validate_reserialize(data: bytes, datagram: bool) -> None:
    """Only SipParseError may escape; whatever is accepted serializes to an equal message."""
    try:
        message = parse_message(data, datagram=datagram)
    except SipParseError:
        return
    again = parse_message(message.to_bytes(), datagram=False)
    assert type(again) is type(message)
    assert [f for f in again.headers if f[0] != "Content-Length"] == [
        f for f in message.headers if f[0] != "Content-Length"
    ]
    assert again.body == message.body
    try:
        if isinstance(message, Request):
            validate_request(message)
        else:
            validate_response(message)
    except SipParseError:
        return


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=300), st.booleans())
def test_parse_message_on_arbitrary_bytes_raises_only_sip_parse_error(
    data: bytes, datagram: bool
) -> None:
    parse_validate_reserialize(data, datagram)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(VALID_MESSAGES), st.lists(_mutation, min_size=1, max_size=6), st.booleans())
def test_mutated_valid_messages_raise_only_sip_parse_error(
    base: bytes, mutations: list[tuple[str, int, int, bytes]], datagram: bool
) -> None:
    parse_validate_reserialize(mutate(base, mutations), datagram)


def test_unmutated_fuzz_seeds_are_valid() -> None:
    # The mutation test is only meaningful if its seeds pass when left alone.
    for data in VALID_MESSAGES:
        run(data)


_VALUE_SEEDS = [
    "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1;received=[::1];rport",
    '"A \\"B\\"" <sip:alice:pw@[::1]:5070;transport=tcp?x=%41>;tag=1;q="a;b"',
    "sip:+1555@127.0.0.1;user=phone;tag=3",
    "tel:+1-555-0100;ext=7",
]
_text_values = st.one_of(
    st.text(max_size=80),
    st.tuples(st.sampled_from(_VALUE_SEEDS), st.lists(_mutation, min_size=1, max_size=4)).map(
        lambda t: mutate(t[0].encode(), t[1]).decode("utf-8", "surrogateescape")
    ),
)


@settings(max_examples=1000, deadline=None)
@given(_text_values)
def test_value_parsers_raise_only_sip_parse_error(text: str) -> None:
    for parse in (parse_uri, parse_via, lambda v: parse_name_addr(v, "To")):
        with contextlib.suppress(SipParseError):
            parse(text)
