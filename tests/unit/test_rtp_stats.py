"""Receive statistics (media/stats.py): RFC 3550 Appendix A.1, A.3, A.8 under a fake clock."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from media.rtcp import ReceiverReport, ReportBlock, parse_rtcp
from media.stats import MAX_DROPOUT, LastSr, ReceiverStats

RATE = 8000
PTIME = 0.02
SAMPLES = 160  # 20 ms at 8 kHz


def feed_stream(stats: ReceiverStats, seqs: list[int], first_seq: int = 0) -> None:
    """Feed packets as a steady 20 ms PCMU sender would send them: timestamp and arrival
    follow the packet's position in the stream, so transit is constant."""
    for seq in seqs:
        k = seq - first_seq
        stats.feed(seq & 0xFFFF, (k * SAMPLES) & 0xFFFFFFFF, 100.0 + k * PTIME, 172)


def block(stats: ReceiverStats, now: float = 1000.0) -> ReportBlock:
    report = stats.report_block(0xDEADBEEF, now)
    assert report is not None
    return report


def test_source_is_on_probation_until_two_sequential_packets() -> None:
    stats = ReceiverStats(RATE)
    assert stats.report_block(1, 0.0) is None
    assert stats.feed(7, 0, 0.0) is False
    assert not stats.validated
    assert stats.report_block(1, 0.0) is None
    assert stats.feed(8, 160, 0.02) is True
    assert stats.validated
    # A.1: counting starts at the packet that ends probation.
    assert (stats.received, stats.expected, stats.cumulative_lost) == (1, 1, 0)


def test_probation_restarts_on_a_gap() -> None:
    stats = ReceiverStats(RATE)
    assert not stats.feed(5, 0, 0.0)
    assert not stats.feed(9, 0, 0.0)
    assert not stats.validated
    assert stats.feed(10, 0, 0.0)
    assert stats.validated


def test_probation_crosses_the_sequence_wrap() -> None:
    stats = ReceiverStats(RATE)
    assert not stats.feed(65535, 0, 0.0)
    assert stats.feed(0, 160, 0.02)  # A.1 as printed would miss 65535 + 1 == 0


def test_counters_include_every_packet() -> None:
    stats = ReceiverStats(RATE)
    feed_stream(stats, [0, 1, 2, 2, 50000])
    assert stats.packets == 5
    assert stats.octets == 5 * 172


def test_clean_stream_reports_no_loss_and_no_jitter() -> None:
    stats = ReceiverStats(RATE)
    feed_stream(stats, list(range(100)))
    report = block(stats)
    assert report == ReportBlock(0xDEADBEEF, 0, 0, 99, 0, 0, 0)


def test_sequence_wraparound_at_65535_extends_the_highest_sequence() -> None:
    stats = ReceiverStats(RATE)
    seqs = list(range(65530, 65550))  # 65530 .. 65535, then 0 .. 13
    feed_stream(stats, seqs, first_seq=65530)
    assert stats.extended_max_seq == 65536 + 13
    report = block(stats)
    assert report.highest_seq == 0x1000D
    assert report.cumulative_lost == 0
    assert report.fraction_lost == 0
    assert stats.expected == 19  # 65531 .. 65549 (the probation packet is not counted)


def test_reordered_packets_are_not_loss() -> None:
    stats = ReceiverStats(RATE)
    feed_stream(stats, [0, 1, 2, 4, 3, 5, 7, 6])
    assert stats.extended_max_seq == 7
    assert block(stats).cumulative_lost == 0


def test_reordering_across_the_wrap_does_not_count_a_cycle_twice() -> None:
    stats = ReceiverStats(RATE)
    feed_stream(stats, [65533, 65534, 0, 65535, 1], first_seq=65533)
    assert stats.extended_max_seq == 65536 + 1
    assert block(stats).cumulative_lost == 0


def test_duplicates_make_cumulative_loss_negative() -> None:
    stats = ReceiverStats(RATE)
    feed_stream(stats, [0, 1, 2, 2, 3])
    report = block(stats)
    assert report.cumulative_lost == -1  # RFC 3550 §6.4.1: may be negative
    assert report.fraction_lost == 0  # a negative interval loss reports 0 (A.3)
    # The block encodes as signed 24 bits and survives the wire.
    rr = ReceiverReport(1, (report,))
    assert parse_rtcp(rr.to_bytes()) == [rr]


def test_five_percent_loss_gives_fraction_and_cumulative_lost() -> None:
    stats = ReceiverStats(RATE)
    # seq 0 is the probation packet; 1..1000 are counted; every 20th (10, 30, ..., 990) lost.
    feed_stream(stats, [seq for seq in range(1001) if seq % 20 != 10])
    report = block(stats)
    assert stats.expected == 1000
    assert stats.received == 950
    assert report.cumulative_lost == 50
    assert report.fraction_lost == (50 << 8) // 1000 == 12  # 5% of 256, truncated (A.3)

    # The next interval is clean: fraction drops to 0, cumulative loss stays.
    feed_stream(stats, list(range(1001, 2001)))
    report = block(stats)
    assert (report.fraction_lost, report.cumulative_lost) == (0, 50)

    # Then 10% loss within an interval of 500.
    feed_stream(stats, [seq for seq in range(2001, 2501) if seq % 10 != 5])
    report = block(stats)
    assert report.fraction_lost == (50 << 8) // 500 == 25
    assert report.cumulative_lost == 100
    assert report.highest_seq == 2500

    # No packets since the last report: nothing expected, nothing lost.
    assert block(stats).fraction_lost == 0


def test_a_large_jump_is_ignored_once_then_taken_as_a_restart() -> None:
    stats = ReceiverStats(RATE)
    feed_stream(stats, list(range(10)))
    assert not stats.feed(30000, 0, 200.0)  # A.1: bad_seq remembered, not counted
    assert stats.extended_max_seq == 9
    assert stats.feed(30001, 160, 200.02)  # sequential after it: the sender restarted
    assert (stats.extended_max_seq, stats.expected, stats.received) == (30001, 1, 1)


def test_jump_just_below_max_dropout_is_a_gap_not_a_restart() -> None:
    stats = ReceiverStats(RATE)
    feed_stream(stats, [0, 1])
    assert stats.feed(1 + MAX_DROPOUT - 1, 0, 1.0)
    assert stats.cumulative_lost == MAX_DROPOUT - 2


def test_very_late_packet_within_max_misorder_counts_as_reordered() -> None:
    stats = ReceiverStats(RATE)
    feed_stream(stats, list(range(200)))
    assert stats.feed(150, 150 * SAMPLES, 200.0)  # 49 behind: udelta > 65536 - 100
    assert stats.extended_max_seq == 199


def test_jitter_follows_a8_for_alternating_transit() -> None:
    # Every other packet arrives 10 ms (80 timestamp units) late, so each |D(i-1,i)| = 80
    # and A.8 gives J_n = 80 * (1 - (15/16)^n) after n differences, converging to 80.
    stats = ReceiverStats(RATE)
    count = 201
    for seq in range(count):
        late = 0.01 if seq % 2 else 0.0
        stats.feed(seq, seq * SAMPLES, 50.0 + seq * PTIME + late)
    differences = count - 2  # seq 0 is probation, seq 1 only sets the first transit
    expected = 80 * (1 - (15 / 16) ** differences)
    assert stats.jitter == pytest.approx(expected, rel=1e-9)
    assert stats.jitter_seconds == pytest.approx(0.01, rel=1e-4)
    assert block(stats).jitter == int(expected) == 79


def test_jitter_first_steps_exactly() -> None:
    stats = ReceiverStats(RATE)
    stats.feed(0, 0, 0.0)
    stats.feed(1, 160, 0.02)
    assert stats.jitter == 0.0
    stats.feed(2, 320, 0.06)  # 20 ms late: D = 160
    assert stats.jitter == 10.0  # 160 / 16
    stats.feed(3, 480, 0.06)  # 20 ms early relative to 2: D = 160
    assert stats.jitter == pytest.approx(10.0 + (160 - 10.0) / 16)


def test_constant_network_delay_is_not_jitter_across_a_timestamp_wrap() -> None:
    stats = ReceiverStats(RATE)
    start = 0xFFFFFFFF - 5 * SAMPLES
    for k in range(20):
        stats.feed(k, (start + k * SAMPLES) & 0xFFFFFFFF, 3.0 + k * PTIME)
    assert stats.jitter == 0.0


def test_lsr_and_dlsr_from_the_last_sender_report() -> None:
    stats = ReceiverStats(RATE)
    feed_stream(stats, list(range(5)))
    stats.on_sender_report(0xE86F5A31_40000000, now=10.0)
    report = block(stats, now=10.5)
    assert report.lsr == 0x5A314000
    assert report.dlsr == 32768  # 0.5 s in 1/65536 s
    assert stats.last_sr == LastSr(0x5A314000, 10.0)

    other = stats.report_block(1, 12.0, last_sr=LastSr(0x11112222, 11.0))
    assert other is not None
    assert (other.lsr, other.dlsr) == (0x11112222, 65536)


def test_no_sender_report_means_zero_lsr_and_dlsr() -> None:
    stats = ReceiverStats(RATE)
    feed_stream(stats, [0, 1])
    report = block(stats)
    assert (report.lsr, report.dlsr) == (0, 0)


def test_clock_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="clock rate"):
        ReceiverStats(0)


@given(
    st.lists(
        st.tuples(
            st.integers(0, 0xFFFF),
            st.integers(0, 0xFFFFFFFF),
            st.floats(0, 1e6, allow_nan=False),
        ),
        max_size=200,
    )
)
def test_any_packet_sequence_yields_an_encodable_report(
    packets: list[tuple[int, int, float]],
) -> None:
    stats = ReceiverStats(48000)
    for i, (seq, ts, now) in enumerate(packets):
        stats.feed(seq, ts, now)
        if i % 50 == 49:
            report = stats.report_block(1, now)
            if report is not None:
                ReceiverReport(2, (report,)).to_bytes()
    report = stats.report_block(1, 1e6)
    assert report is None or 0 <= report.fraction_lost <= 255
    if report is not None:
        ReceiverReport(2, (report,)).to_bytes()
