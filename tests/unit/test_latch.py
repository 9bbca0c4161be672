"""Symmetric RTP latching (media.latch): RFC 4961 §3, RFC 7362 §4.2."""

from __future__ import annotations

from media.latch import Latch

SDP = ("192.0.2.10", 4000)  # what the phone's SDP says
NAT = ("198.51.100.7", 61002)  # where its packets really come from
OTHER = ("203.0.113.9", 5004)


def test_target_is_the_expected_address_before_any_packet() -> None:
    latch = Latch(SDP)
    assert latch.target == SDP
    assert latch.latched is None


def test_target_is_none_with_no_sdp_and_no_packet() -> None:
    assert Latch().target is None


def test_first_packet_latches_even_from_an_address_the_sdp_did_not_name() -> None:
    latch = Latch(SDP)
    assert latch.accept(NAT)
    assert latch.latched == NAT
    assert latch.target == NAT


def test_first_packet_latches_with_no_expected_address() -> None:
    latch = Latch()
    assert latch.accept(NAT)
    assert latch.target == NAT


def test_packets_from_the_latched_source_keep_flowing() -> None:
    latch = Latch(SDP)
    assert all(latch.accept(NAT) for _ in range(100))
    assert latch.dropped == 0


def test_other_sources_are_dropped_and_counted_after_latching() -> None:
    latch = Latch(SDP)
    latch.accept(NAT)
    assert not latch.accept(OTHER)
    assert not latch.accept((NAT[0], NAT[1] + 1))  # same host, other port
    assert latch.dropped == 2
    assert latch.target == NAT


def test_relatch_lets_the_next_source_in_and_locks_again() -> None:
    latch = Latch(SDP)
    latch.accept(NAT)
    latch.relatch()
    assert latch.accept(OTHER)
    assert latch.target == OTHER
    assert not latch.accept(NAT)
    assert latch.dropped == 1


def test_relatch_then_the_same_source_latches_again() -> None:
    latch = Latch(SDP)
    latch.accept(NAT)
    latch.relatch()
    assert latch.accept(NAT)
    assert not latch.accept(OTHER)


def test_after_relatch_the_target_is_the_new_sdp_address_until_a_packet_comes() -> None:
    latch = Latch(SDP)
    latch.accept(NAT)
    latch.set_expected(OTHER)  # a re-INVITE moved the phone
    assert latch.target == NAT  # still latched
    latch.relatch()
    assert latch.target == OTHER
    assert latch.latched is None


def test_relatch_without_any_sdp_address_keeps_sending_to_the_old_source() -> None:
    latch = Latch()
    latch.accept(NAT)
    latch.relatch()
    assert latch.target == NAT
    assert latch.accept(OTHER)
    assert latch.target == OTHER


def test_set_expected_before_latching_moves_the_target() -> None:
    latch = Latch()
    latch.set_expected(SDP)
    assert latch.target == SDP
    assert latch.expected == SDP


def test_relatch_before_any_packet_changes_nothing() -> None:
    latch = Latch(SDP)
    latch.relatch()
    assert latch.target == SDP
    assert latch.accept(NAT)
    assert not latch.accept(OTHER)


def test_the_sdp_address_takes_over_a_latch_a_stranger_raced_for() -> None:
    # RTP Bleed: a stranger's packet arrives before the phone's first one.
    latch = Latch(expected=SDP)
    assert latch.accept(OTHER)
    assert latch.accept(SDP)  # the phone sends from where its SDP said: it wins
    assert latch.target == SDP
    assert not latch.accept(OTHER) and latch.dropped == 1


def test_a_nat_latch_is_not_taken_over_by_other_strangers() -> None:
    latch = Latch(expected=SDP)
    assert latch.accept(NAT)  # the phone's NAT mapping: not the SDP address
    assert not latch.accept(OTHER)
    assert latch.target == NAT
