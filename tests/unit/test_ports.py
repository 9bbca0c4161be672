"""RTP/RTCP port pairs (media/ports.py): RFC 3550 §11 even/odd pairing, exhaustion, reuse."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from media.ports import PortPool, parse_port_range


def pool(first: int, last: int, seed: int = 1) -> PortPool:
    return PortPool(first, last, random.Random(seed))


def drain(ports: PortPool) -> list[int]:
    taken = []
    while (port := ports.allocate()) is not None:
        taken.append(port)
    return taken


def test_parse_port_range() -> None:
    assert parse_port_range("20000-29999") == (20000, 29999)
    assert parse_port_range(" 10000 - 10001 ") == (10000, 10001)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "not FIRST-LAST"),
        ("20000", "not FIRST-LAST"),
        ("20000-", "not FIRST-LAST"),
        ("a-b", "not FIRST-LAST"),
        ("-1-10", "not FIRST-LAST"),
        ("20000:29999", "not FIRST-LAST"),
        ("20000-29999-3", "not FIRST-LAST"),
        ("٢٠٠٠٠-٢٩٩٩٩", "not FIRST-LAST"),  # non-ASCII digits
        ("123456-123457", "not FIRST-LAST"),
        ("0-100", "first port 0 out of range"),
        ("60000-70000", "last port 70000 out of range"),
        ("30000-20000", "reversed"),
        ("20000-20000", "no even/odd"),
        ("20001-20002", "no even/odd"),
        ("65535-65535", "no even/odd"),
    ],
)
def test_bad_ranges_name_the_fault(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_port_range(text)


def test_constructor_checks_the_range_too() -> None:
    with pytest.raises(ValueError, match="no even/odd"):
        PortPool(20001, 20002)


@pytest.mark.parametrize(
    ("first", "last", "expected"),
    [
        (20000, 20001, [20000]),
        (20001, 20003, [20002]),  # 20001 has no even partner below it; 20002/20003 fits
        (20000, 20004, [20000, 20002]),  # 20004 would need 20005
        (20001, 20006, [20002, 20004]),
        (65534, 65535, [65534]),
    ],
)
def test_only_even_ports_whose_odd_neighbour_is_in_range(
    first: int, last: int, expected: list[int]
) -> None:
    ports = pool(first, last)
    assert ports.capacity == len(expected)
    assert sorted(drain(ports)) == expected


def test_full_range_allocates_every_pair_once_then_is_exhausted() -> None:
    ports = pool(20000, 29999)
    assert ports.capacity == 5000
    taken = drain(ports)
    assert len(taken) == len(set(taken)) == 5000
    assert all(port % 2 == 0 and port >= 20000 and port + 1 <= 29999 for port in taken)
    assert ports.allocate() is None
    assert (ports.in_use, ports.available) == (5000, 0)


def test_release_makes_a_pair_reusable_after_the_others() -> None:
    ports = pool(20000, 20009)  # 5 pairs
    first = ports.allocate()
    assert first is not None
    assert first in ports
    ports.release(first)
    assert first not in ports
    assert ports.in_use == 0
    # FIFO: the released pair comes back only after the four never used.
    following = [ports.allocate() for _ in range(5)]
    assert following[-1] == first
    assert first not in following[:-1]
    assert ports.allocate() is None
    ports.release(first)
    assert ports.allocate() == first


def test_bind_failure_retry_gets_another_pair() -> None:
    # The documented glue pattern: release the pair that failed to bind, allocate again.
    ports = pool(20000, 20009)
    failed = ports.allocate()
    assert failed is not None
    ports.release(failed)
    retry = ports.allocate()
    assert retry is not None and retry != failed


def test_order_is_shuffled_and_deterministic_with_a_seed() -> None:
    a = drain(pool(20000, 29999, seed=7))
    b = drain(pool(20000, 29999, seed=7))
    c = drain(pool(20000, 29999, seed=8))
    assert a == b
    assert a != c
    assert a != sorted(a)  # not predictable from the previous port


def test_pool_without_rng_still_works() -> None:
    ports = PortPool(20000, 20003)
    assert sorted(drain(ports)) == [20000, 20002]


@pytest.mark.parametrize("port", [19998, 20001, 20011, 20012, 0, -2])
def test_release_of_a_foreign_port_raises(port: int) -> None:
    ports = pool(20000, 20011)
    drain(ports)
    with pytest.raises(ValueError, match="not an RTP port of this pool"):
        ports.release(port)


def test_release_of_a_port_past_the_last_pair_raises() -> None:
    ports = pool(20000, 20010)  # 20010 has no odd partner
    with pytest.raises(ValueError, match="not an RTP port of this pool"):
        ports.release(20010)


def test_double_release_raises() -> None:
    ports = pool(20000, 20009)
    port = ports.allocate()
    assert port is not None
    ports.release(port)
    with pytest.raises(ValueError, match="not allocated"):
        ports.release(port)
    assert (ports.in_use, ports.available) == (0, 5)


@given(st.lists(st.booleans(), max_size=200), st.integers(0, 2**32))
def test_counts_stay_consistent(ops: list[bool], seed: int) -> None:
    ports = pool(30000, 30019, seed=seed)  # 10 pairs
    held: list[int] = []
    for allocate in ops:
        if allocate:
            port = ports.allocate()
            if len(held) == 10:
                assert port is None
            else:
                assert port is not None and port not in held
                held.append(port)
        elif held:
            ports.release(held.pop(0))
        assert ports.in_use == len(held)
        assert ports.available == 10 - len(held)
