"""Listener rate limits and the failed-auth throttle (edge/limits.py), fake clock."""

from __future__ import annotations

from edge.config import Rate
from edge.limits import AuthFailureThrottle, RateLimiter


def test_rate_limiter_admits_a_burst_then_refills_over_the_window() -> None:
    limiter = RateLimiter(Rate(40, 5.0), now=0.0)
    assert all(limiter.allow(0.0) for _ in range(40))
    assert not limiter.allow(0.0)
    assert limiter.retry_after() == 1
    assert limiter.allow(0.125)  # 8 tokens/s: one back after 125 ms
    assert not limiter.allow(0.125)


def test_retry_after_rounds_up_to_whole_seconds() -> None:
    limiter = RateLimiter(Rate(1, 60.0), now=0.0)
    assert limiter.allow(0.0)
    assert not limiter.allow(1.0)
    assert limiter.retry_after() == 59


def test_throttle_blocks_after_limit_within_window_and_reports_once() -> None:
    throttle = AuthFailureThrottle(Rate(3, 60.0), cooldown=30.0)
    trips = [throttle.record_failure("127.0.0.5", t) for t in (0.0, 1.0, 2.0, 3.0, 4.0)]
    assert trips == [False, False, True, False, False]
    assert throttle.is_blocked("127.0.0.5", 31.9)
    assert not throttle.is_blocked("127.0.0.5", 32.1)
    assert not throttle.is_blocked("127.0.0.6", 3.0)


def test_failures_spread_beyond_the_window_do_not_block() -> None:
    throttle = AuthFailureThrottle(Rate(3, 60.0), cooldown=30.0)
    assert not any(throttle.record_failure("127.0.0.5", t) for t in (0.0, 40.0, 80.0, 120.0))
    assert not throttle.is_blocked("127.0.0.5", 120.0)


def test_throttle_table_is_bounded() -> None:
    throttle = AuthFailureThrottle(Rate(2, 60.0), cooldown=30.0, max_sources=100)
    for i in range(1000):
        throttle.record_failure(f"10.0.{i // 256}.{i % 256}", 0.0)
    assert len(throttle._sources) == 100
