"""Admission limits: listener rate limits and the failed-authentication throttle.

Pure and clock-injected. Tables are bounded so a flood of sources cannot grow memory.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass

from edge.config import Rate


class RateLimiter:
    """Token bucket: ``rate.count`` requests per ``rate.window`` seconds, bursts up to count.

    Models Genesys's Max Registration Rate / Max Call Rate written like ``40/5s``.
    """

    __slots__ = ("_capacity", "_per_second", "_stamp", "_tokens")

    def __init__(self, rate: Rate, now: float) -> None:
        self._capacity = float(rate.count)
        self._per_second = rate.count / rate.window
        self._tokens = self._capacity
        self._stamp = now

    def allow(self, now: float) -> bool:
        elapsed = now - self._stamp
        if elapsed > 0:
            self._tokens = min(self._capacity, self._tokens + elapsed * self._per_second)
            self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def retry_after(self) -> int:
        """Whole seconds until one token is back (for ``Retry-After``)."""
        missing = max(0.0, 1.0 - self._tokens)
        return max(1, int(missing / self._per_second + 0.999))


@dataclass(slots=True)
class _Source:
    failures: deque[float]
    blocked_until: float = 0.0


class AuthFailureThrottle:
    """Blocks a source IP after ``limit.count`` failed authentications in ``limit.window`` s.

    A 401/407 challenge is not a failure; a wrong response, unknown user or replay is. While
    blocked, the source is answered 403 for ``cooldown`` seconds. ``record_failure`` returns
    True exactly when a block starts, so the caller logs it once.
    """

    def __init__(self, limit: Rate, cooldown: float, max_sources: int = 65536) -> None:
        self._limit = limit
        self._cooldown = cooldown
        self._max_sources = max_sources
        self._sources: OrderedDict[str, _Source] = OrderedDict()

    def is_blocked(self, ip: str, now: float) -> bool:
        source = self._sources.get(ip)
        return source is not None and source.blocked_until > now

    def record_failure(self, ip: str, now: float) -> bool:
        source = self._sources.get(ip)
        if source is None:
            source = _Source(deque(maxlen=self._limit.count))
            self._sources[ip] = source
            if len(self._sources) > self._max_sources:
                self._sources.popitem(last=False)  # the least recently failing source
        else:
            self._sources.move_to_end(ip)
        if source.blocked_until > now:
            return False
        source.failures.append(now)
        window_start = now - self._limit.window
        if len(source.failures) >= self._limit.count and source.failures[0] > window_start:
            source.blocked_until = now + self._cooldown
            source.failures.clear()
            return True
        return False

    def record_success(self, ip: str) -> None:
        source = self._sources.get(ip)
        if source is not None and source.blocked_until == 0.0:
            del self._sources[ip]
