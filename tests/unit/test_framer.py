"""Stream framing (sip/framer.py): RFC 3261 §7.5, §18.3, RFC 5626 §4.4.1 keep-alives."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sip.errors import SipParseError
from sip.framer import PING, KeepAlivePing, StreamFramer
from sip.message import Request, Response
from sip.parser import parse_message

Item = bytes | KeepAlivePing

HEAD = (
    b"Via: SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bK{n}\r\n"
    b"From: <sip:alice@127.0.0.1>;tag=1\r\n"
    b"To: <sip:bob@127.0.0.1>\r\n"
    b"Call-ID: framer-{n}@127.0.0.1\r\n"
)
OPTIONS = (
    b"OPTIONS sip:bob@127.0.0.1 SIP/2.0\r\n"
    + HEAD.replace(b"{n}", b"1")
    + b"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
)
# The body holds an empty line: only Content-Length may end the message.
SDP = b"v=0\r\n\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\n"
INVITE = (
    b"INVITE sip:bob@127.0.0.1 SIP/2.0\r\n"
    + HEAD.replace(b"{n}", b"2")
    + b"CSeq: 1 INVITE\r\nContent-Type: application/sdp\r\n"
    + b"Content-Length: "
    + str(len(SDP)).encode()
    + b"\r\n\r\n"
    + SDP
)
MESSAGE = (
    b"MESSAGE sip:bob@127.0.0.1 SIP/2.0\r\n"
    + HEAD.replace(b"{n}", b"3")
    + b"CSeq: 2 MESSAGE\r\nl:   5\r\n\r\nhello"
)
NO_LENGTH = b"SIP/2.0 200 OK\r\n" + HEAD.replace(b"{n}", b"4") + b"CSeq: 9 BYE\r\n\r\n"
FOLDED = (
    b"MESSAGE sip:bob@127.0.0.1 SIP/2.0\r\n"
    + HEAD.replace(b"{n}", b"5")
    + b"CSeq: 3 MESSAGE\r\nContent-Length:\r\n \t2\r\n\r\nhi"
)

# Leading CRLFs, a single CRLF between messages (ignored, RFC 3261 §7.5) and CRLFCRLF pings.
STREAM = (
    b"\r\n"
    + OPTIONS
    + b"\r\n\r\n"
    + INVITE
    + b"\r\n"
    + MESSAGE
    + b"\r\n\r\n\r\n\r\n"
    + NO_LENGTH
    + FOLDED
    + b"\r\n\r\n"
)
EXPECTED: list[Item] = [OPTIONS, PING, INVITE, MESSAGE, PING, PING, NO_LENGTH, FOLDED, PING]


def feed_all(chunks: list[bytes], framer: StreamFramer | None = None) -> list[Item]:
    framer = framer or StreamFramer()
    out: list[Item] = []
    for chunk in chunks:
        out.extend(framer.feed(chunk))
    assert framer.buffered == 0
    return out


def test_unsplit_stream_gives_every_message_and_ping_in_order() -> None:
    assert feed_all([STREAM]) == EXPECTED


def test_framed_messages_parse_with_their_bodies() -> None:
    messages = [item for item in feed_all([STREAM]) if isinstance(item, bytes)]
    parsed = [parse_message(m, datagram=False) for m in messages]
    assert [type(m) for m in parsed] == [Request, Request, Request, Response, Request]
    assert [m.body for m in parsed] == [b"", SDP, b"hello", b"", b"hi"]


def test_stream_split_at_every_byte_gives_the_same_items() -> None:
    for cut in range(len(STREAM) + 1):
        assert feed_all([STREAM[:cut], STREAM[cut:]]) == EXPECTED, cut


def test_stream_fed_one_byte_at_a_time_gives_the_same_items() -> None:
    assert feed_all([STREAM[i : i + 1] for i in range(len(STREAM))]) == EXPECTED


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, len(STREAM)), max_size=12))
def test_stream_split_at_random_points_gives_the_same_items(cuts: list[int]) -> None:
    points = [0, *sorted(cuts), len(STREAM)]
    chunks = [STREAM[a:b] for a, b in itertools.pairwise(points)]
    assert feed_all(chunks) == EXPECTED


def test_truncated_message_yields_nothing_until_completed() -> None:
    framer = StreamFramer()
    cut = len(INVITE) - 3
    assert framer.feed(INVITE[:cut]) == []
    assert framer.buffered == cut
    assert framer.feed(INVITE[cut:-1]) == []
    assert framer.feed(INVITE[-1:]) == [INVITE]
    assert framer.buffered == 0


def test_truncated_header_section_yields_nothing() -> None:
    framer = StreamFramer()
    assert framer.feed(OPTIONS[:-2]) == []
    assert framer.buffered == len(OPTIONS) - 2
    assert framer.feed(b"\r\n") == [OPTIONS]


def test_partial_ping_waits_and_a_lone_crlf_is_ignored() -> None:
    framer = StreamFramer()
    assert framer.feed(b"\r\n\r") == []
    assert framer.feed(b"\n") == [PING]
    assert framer.feed(b"\r\n") == []
    assert framer.feed(OPTIONS) == [OPTIONS]


def test_oversize_header_section_raises() -> None:
    framer = StreamFramer(max_message=1000)
    with pytest.raises(SipParseError, match="too large"):
        framer.feed(b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nSubject: " + b"a" * 2000)


def test_oversize_header_section_raises_when_fed_in_small_chunks() -> None:
    framer = StreamFramer(max_message=1000)
    line = b"X-Filler: aaaa\r\n"
    for _ in range(1000 // len(line)):
        assert framer.feed(line) == []
    with pytest.raises(SipParseError, match="too large"):
        framer.feed(line)


def test_oversize_body_raises_before_it_arrives() -> None:
    framer = StreamFramer(max_message=1000)
    with pytest.raises(SipParseError, match="too large"):
        framer.feed(b"MESSAGE sip:127.0.0.1 SIP/2.0\r\nContent-Length: 5000\r\n\r\n")


@pytest.mark.parametrize(
    ("lines", "reason"),
    [
        (b"Content-Length: 5\r\nl: 6\r\n", "Conflicting Content-Length"),
        (b"Content-Length: -5\r\n", "Malformed Content-Length"),
        (b"Content-Length: five\r\n", "Malformed Content-Length"),
        (b"Content-Length: \r\n", "Malformed Content-Length"),
        (b"Content-Length: 5\x0b\r\n", "Malformed Content-Length"),  # only SP/HTAB are LWS
        (b"Content-Length: " + b"9" * 5000 + b"\r\n", "too large"),
    ],
)
def test_bad_content_length_raises(lines: bytes, reason: str) -> None:
    with pytest.raises(SipParseError, match=reason):
        StreamFramer().feed(b"MESSAGE sip:127.0.0.1 SIP/2.0\r\n" + lines + b"\r\nhello")


def test_messages_before_a_framing_fault_are_delivered_then_the_fault_raised() -> None:
    bad = b"MESSAGE sip:127.0.0.1 SIP/2.0\r\nContent-Length: 5\r\nl: 6\r\n\r\nhello"
    framer = StreamFramer()
    assert framer.feed(OPTIONS + b"\r\n\r\n" + bad) == [OPTIONS, PING]
    with pytest.raises(SipParseError, match="Conflicting Content-Length"):
        framer.feed(b"")
    with pytest.raises(SipParseError, match="Conflicting Content-Length"):
        framer.feed(INVITE)


def test_equal_repeated_content_length_and_leading_zeros_frame_normally() -> None:
    data = b"MESSAGE sip:127.0.0.1 SIP/2.0\r\nContent-Length: 0005\r\nl:0005\r\n\r\nhello"
    assert StreamFramer().feed(data + OPTIONS) == [data, OPTIONS]
    zeros = b"MESSAGE sip:127.0.0.1 SIP/2.0\r\nl: " + b"0" * 5000 + b"2\r\n\r\nhi"
    assert StreamFramer(max_message=10_000).feed(zeros) == [zeros]


def test_content_length_name_inside_another_field_is_not_used() -> None:
    data = b"MESSAGE sip:127.0.0.1 SIP/2.0\r\nX-l: 99\r\nSubject: l: 7\r\nl: 2\r\n\r\nhi"
    assert StreamFramer().feed(data) == [data]


def test_framer_and_parser_agree_on_the_body_length() -> None:
    for item in feed_all([STREAM]):
        if isinstance(item, bytes):
            message = parse_message(item, datagram=False)
            assert item.endswith(message.body)


def deliver(chunks: list[bytes], limit: int) -> tuple[list[Item], bool]:
    """Everything a connection gets from these chunks, and whether a fault closes it.

    (Which size fault is named may differ: a header section seen whole is "Message too
    large", one seen in pieces "Header section too large".)
    """
    framer = StreamFramer(max_message=limit)
    out: list[Item] = []
    try:
        for chunk in [*chunks, b""]:
            out.extend(framer.feed(chunk))
    except SipParseError:
        return out, True
    return out, False


_PIECES = st.sampled_from(
    [
        OPTIONS,
        INVITE,
        MESSAGE,
        FOLDED,
        NO_LENGTH,
        b"\r\n",
        b"\r\n\r\n",
        b"MESSAGE sip:127.0.0.1 SIP/2.0\r\nl: 5\r\nl: 6\r\n\r\nhello",
        b"MESSAGE sip:127.0.0.1 SIP/2.0\r\nl: -1\r\n\r\n",
        b"MESSAGE sip:127.0.0.1 SIP/2.0\r\nl: 9999\r\n\r\n",
        b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nSubject: " + b"a" * 400,
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    pieces=st.lists(_PIECES, min_size=1, max_size=6),
    cuts=st.lists(st.integers(0, 10_000), max_size=8),
    limit=st.sampled_from([300, 1000, 65536]),
)
def test_what_a_connection_gets_does_not_depend_on_segmentation(
    pieces: list[bytes], cuts: list[int], limit: int
) -> None:
    stream = b"".join(pieces)
    points = [0, *sorted(c % (len(stream) + 1) for c in cuts), len(stream)]
    chunks = [stream[a:b] for a, b in itertools.pairwise(points)]
    assert deliver(chunks, limit) == deliver([stream], limit)


# --- fuzzing -----------------------------------------------------------------------------------

_STREAMISH = st.lists(
    st.one_of(
        st.binary(max_size=40),
        st.sampled_from(
            [b"\r\n", b"\r\n\r\n", b"\r", b"\n", b"l: 3", b"Content-Length: 99999", OPTIONS]
        ),
    ),
    max_size=30,
)


@settings(max_examples=500, deadline=None)
@given(chunks=_STREAMISH, limit=st.sampled_from([64, 300, 65536]))
def test_feeding_arbitrary_chunks_raises_only_sip_parse_error_and_stays_bounded(
    chunks: list[bytes], limit: int
) -> None:
    framer = StreamFramer(max_message=limit)
    for chunk in chunks:
        try:
            items = framer.feed(chunk)
        except SipParseError:
            # The connection is closed now; the buffer held at most one chunk too many.
            assert framer.buffered <= limit + len(chunk)
            return
        assert framer.buffered <= limit
        for item in items:
            assert item is PING or (isinstance(item, bytes) and len(item) <= limit)
