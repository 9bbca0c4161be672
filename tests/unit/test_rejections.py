"""Rejections are logged per reason without flooding the log (edge/rejections.py)."""

from __future__ import annotations

import logging

import pytest

from edge.rejections import RejectionLog


def test_each_reason_logs_at_most_once_per_interval_and_counts_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = RejectionLog(logging.getLogger("test.rejections"), interval=10.0)
    with caplog.at_level("INFO", logger="test.rejections"):
        for i in range(1000):
            log.note("OVERLOAD", f"from udp 127.0.0.1:{i}", now=i * 0.01)  # 0 .. 9.99 s
        log.note("ACL_DENY", "from udp 127.0.0.1:5", now=5.0)
        log.note("OVERLOAD", "from udp 127.0.0.1:7", now=10.0)
    assert [r.getMessage() for r in caplog.records] == [
        "rejected OVERLOAD: from udp 127.0.0.1:0",
        "rejected ACL_DENY: from udp 127.0.0.1:5",
        "rejected OVERLOAD: from udp 127.0.0.1:7 (+999 more since the last line)",
    ]
