"""Rejection log lines that cannot flood the log (DESIGN.md principle 3).

Every refusal has a reason code (``ACL_DENY``, ``RATE_LIMITED``, ``OVERLOAD``…) with its own
counter and log line. Under a flood the same reason repeats thousands of times a second, so
each reason logs at most once per ``interval``; the next line says how many it left out.
"""

from __future__ import annotations

import logging


class RejectionLog:
    __slots__ = ("_interval", "_last", "_log", "_suppressed")

    def __init__(self, log: logging.Logger, interval: float = 10.0) -> None:
        self._log = log
        self._interval = interval
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def note(self, reason: str, detail: str, now: float) -> None:
        last = self._last.get(reason)
        if last is not None and now - last < self._interval:
            self._suppressed[reason] = self._suppressed.get(reason, 0) + 1
            return
        self._last[reason] = now
        skipped = self._suppressed.pop(reason, 0)
        more = f" (+{skipped} more since the last line)" if skipped else ""
        self._log.info("rejected %s: %s%s", reason, detail, more)
