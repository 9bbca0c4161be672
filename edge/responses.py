"""What every response of the edge carries, and the header values it advertises."""

from __future__ import annotations

import os

from sip.message import Response

SERVER_HEADER = "VoxEdge"
# RFC 3261 §20.5: the methods the edge serves (OPTIONS answers and 405s list them).
ALLOWED_METHODS = (
    *("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "INFO", "UPDATE", "REFER"),
)
ALLOW = ", ".join(ALLOWED_METHODS)
# Option tags the edge supports (RFC 3261 §20.37): session timers (RFC 4028).
SUPPORTED_EXTENSIONS = frozenset(("timer",))
SUPPORTED = ", ".join(sorted(SUPPORTED_EXTENSIONS))


def finish(response: Response, to_tag: str | None = None) -> None:
    """A To tag where a final or dialog-making response needs one (RFC 3261 §8.2.6.2) unless
    the request had one (``to_tag``), and the Server header."""
    if response.status > 100 and to_tag is None:
        to = response.headers.get("To")
        if to is not None and ";tag=" not in to.lower().replace(" ", ""):
            response.headers.set("To", f"{to};tag={new_tag()}")
    response.headers.add("Server", SERVER_HEADER)


def new_tag() -> str:
    """A From/To tag: 48 random bits in hex (RFC 3261 §19.3 asks for at least 32)."""
    return os.urandom(6).hex()
