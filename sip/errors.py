"""The one error type the SIP parser and validators raise."""

from __future__ import annotations


class SipParseError(ValueError):
    """A message (or part of one) is malformed.

    ``reason`` names the fault and becomes the reason phrase of the answer; ``status`` is the
    response code a UAS sends for it (400 unless a more precise code applies, e.g. 505 or 416).
    """

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
