"""RFC 4733 telephone-event detection (media/dtmf.py): one report per key press."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from media.dtmf import LATE_WINDOW, DtmfDetector, DtmfDigit, event_digit
from media.rtp import build_dtmf_event

T0 = 160_000  # RTP timestamp of the first event in most tests


def payload(event: int, duration: int, *, end: bool = False) -> bytes:
    return build_dtmf_event(event, end=end, volume=10, duration=duration)


def press(event: int, duration: int, step: int = 400) -> list[bytes]:
    """What a sender sends for one key press (RFC 4733 §2.5.1): growing durations every
    ``step`` units, then the end packet three times (§2.5.1.4)."""
    packets = [payload(event, d) for d in range(step, duration, step)]
    return packets + [payload(event, duration, end=True)] * 3


def feed_all(detector: DtmfDetector, timestamp: int, packets: list[bytes]) -> list[DtmfDigit]:
    return [digit for p in packets for digit in detector.feed(timestamp, p)]


@pytest.mark.parametrize(
    ("event", "digit"),
    [(0, "0"), (5, "5"), (9, "9"), (10, "*"), (11, "#"), (12, "A"), (15, "D"), (16, None)],
)
def test_event_codes_map_to_digits(event: int, digit: str | None) -> None:
    assert event_digit(event) == digit


def test_a_key_press_is_reported_once_despite_three_end_packets() -> None:
    detector = DtmfDetector()
    got = [detector.feed(T0, p) for p in press(5, 800)]
    assert got[:-3] == [()] * (len(got) - 3)  # nothing before the end
    assert got[-3:] == [(DtmfDigit("5", 100),), (), ()]


def test_the_end_is_reported_with_its_duration_in_ms() -> None:
    detector = DtmfDetector()
    assert feed_all(detector, T0, press(11, 1280)) == [("#", 160)]
    assert detector.feed(T0, payload(11, 1280, end=True)) == ()  # a fourth end: still once


def test_same_digit_twice_is_two_events_told_apart_by_timestamp() -> None:
    detector = DtmfDetector()
    first = feed_all(detector, T0, press(1, 800))
    second = feed_all(detector, T0 + 2400, press(1, 800))
    assert first == second == [("1", 100)]


def test_a_late_packet_of_an_earlier_event_is_ignored() -> None:
    detector = DtmfDetector()
    feed_all(detector, T0, press(1, 800))
    feed_all(detector, T0 + 2400, press(2, 800))
    assert detector.feed(T0, payload(1, 800, end=True)) == ()
    assert detector.feed(T0 + 2400, payload(2, 400)) == ()


def test_an_event_whose_end_packets_were_all_lost_is_reported_when_the_next_starts() -> None:
    detector = DtmfDetector()
    assert feed_all(detector, T0, [payload(4, 400), payload(4, 800)]) == []
    # The next press starts: the lost one is reported with the last duration heard.
    assert detector.feed(T0 + 4000, payload(7, 400)) == (DtmfDigit("4", 100),)
    assert feed_all(detector, T0 + 4000, press(7, 800)) == [("7", 100)]


def test_one_packet_can_end_a_lost_event_and_report_a_new_one() -> None:
    detector = DtmfDetector()
    detector.feed(T0, payload(3, 400))
    assert detector.feed(T0 + 4000, payload(9, 640, end=True)) == (("3", 50), ("9", 80))


def test_a_lost_end_with_nothing_after_it_is_not_reported() -> None:
    detector = DtmfDetector()
    assert feed_all(detector, T0, [payload(6, 400), payload(6, 800)]) == []


def test_out_of_order_packets_never_shorten_the_duration() -> None:
    detector = DtmfDetector()
    packets = [payload(8, 400), payload(8, 1200), payload(8, 800), payload(8, 1600, end=True)]
    assert feed_all(detector, T0, packets[:3]) == []
    assert detector.feed(T0, payload(8, 960, end=True)) == (("8", 150),)


def test_another_ssrc_starts_afresh_whatever_its_timestamps() -> None:
    # After a transfer or re-INVITE a new phone sends with its own SSRC and timestamp base.
    detector = DtmfDetector()
    assert feed_all(detector, T0, press(1, 800)) == [("1", 100)]
    detector.feed(T0 + 4000, payload(2, 400))
    got = [d for p in press(3, 800) for d in detector.feed(T0 - 100, p, ssrc=0xCAFE)]
    assert got == [("2", 50), ("3", 100)]  # the unfinished "2" ends; "3" is not "late"
    assert detector.feed(T0 - 100, payload(3, 800, end=True), ssrc=0xCAFE) == ()


def test_timestamps_jumping_far_back_start_a_new_event() -> None:
    detector = DtmfDetector()
    feed_all(detector, T0 + LATE_WINDOW + 1, press(1, 800))
    assert feed_all(detector, T0, press(4, 800)) == [("4", 100)]


def test_new_event_across_the_timestamp_wrap() -> None:
    detector = DtmfDetector()
    start = 0xFFFFFF00
    assert feed_all(detector, start, press(1, 800)) == [("1", 100)]
    assert feed_all(detector, (start + 2400) & 0xFFFFFFFF, press(2, 800)) == [("2", 100)]


def test_durations_use_the_clock_rate() -> None:
    detector = DtmfDetector(clock_rate=48000)
    assert feed_all(detector, T0, press(0, 4800, step=2400)) == [("0", 100)]
    detector.clock_rate = 16000
    assert feed_all(detector, T0 + 9600, press(0, 4800, step=2400)) == [("0", 300)]


def test_a_long_event_sent_in_segments_is_one_key_press() -> None:
    # RFC 4733 §2.5.1.3: at 48 kHz a 2 s press outgrows the 16-bit duration field.
    detector = DtmfDetector(clock_rate=48000)
    first = [payload(5, d) for d in range(2400, 0xFFFF, 2400)] + [payload(5, 0xFFFF)] * 3
    assert feed_all(detector, T0, first) == []
    second = press(5, 96000 - 0xFFFF, step=2400)
    assert feed_all(detector, T0 + 0xFFFF, second) == [("5", 2000)]


def test_other_events_end_a_digit_but_are_not_reported() -> None:
    detector = DtmfDetector()
    detector.feed(T0, payload(2, 400))
    assert detector.feed(T0 + 2000, payload(16, 400)) == (("2", 50),)  # 16: hook flash
    assert feed_all(detector, T0 + 2000, press(16, 800)) == []


@pytest.mark.parametrize(
    "bad", [b"", b"\x05", b"\x05\x8a\x03", b"\x05\x8a\x03\x20\x00", bytes(8)], ids=len
)
def test_a_payload_that_is_not_one_event_is_counted_and_ignored(bad: bytes) -> None:
    detector = DtmfDetector()
    detector.feed(T0, payload(3, 400))
    assert detector.feed(T0, bad) == ()
    assert detector.feed(T0 + 4000, bad) == ()
    assert detector.malformed == 2
    assert detector.feed(T0, payload(3, 800, end=True)) == (("3", 100),)  # state untouched


def test_a_clock_rate_must_be_positive() -> None:
    with pytest.raises(ValueError):
        DtmfDetector(clock_rate=0)


@given(st.lists(st.tuples(st.integers(0, 0xFFFFFFFF), st.binary(max_size=6)), max_size=50))
def test_any_packet_stream_never_raises_and_reports_only_digits(
    packets: list[tuple[int, bytes]],
) -> None:
    detector = DtmfDetector()
    for timestamp, data in packets:
        for digit, duration_ms in detector.feed(timestamp, data):
            assert digit in "0123456789*#ABCD" and len(digit) == 1
            assert duration_ms >= 0
