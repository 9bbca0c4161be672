"""RTP/RTCP port pairs for media legs (RFC 3550 §11), pure: it only hands out numbers.

Each allocation is an even RTP port ``p``; its RTCP port is ``p + 1`` (RFC 3550 §11). Pairs
come out in a shuffled order fixed by the injected ``random.Random`` (seeded in tests), so the
next port of a call cannot be guessed from the last one. Freed pairs go to the back of the
queue: a port is reused as late as possible, so stray packets of an old call rarely reach a
new one.

Binding is the glue's job. When a bind fails (another process holds the port), the glue calls
``release(port)`` and ``allocate()`` again: the failed pair goes to the back of the queue, so
the retry gets a different one. The glue bounds its retries.
"""

from __future__ import annotations

import random
import re
from collections import deque

__all__ = ["PortPool", "parse_port_range"]

_RANGE = re.compile(r"\s*(\d{1,5})\s*-\s*(\d{1,5})\s*", re.ASCII)


def _check_range(first: int, last: int) -> None:
    for name, port in (("first", first), ("last", last)):
        if not 1 <= port <= 65535:
            raise ValueError(f"{name} port {port} out of range 1-65535")
    if first > last:
        raise ValueError(f"port range {first}-{last} is reversed")
    if first + (first & 1) + 1 > last:
        raise ValueError(f"port range {first}-{last} holds no even/odd RTP/RTCP pair")


def parse_port_range(text: str) -> tuple[int, int]:
    """``"20000-29999"`` → ``(20000, 29999)``; ValueError names what is wrong."""
    match = _RANGE.fullmatch(text)
    if match is None:
        raise ValueError(f"port range {text!r} is not FIRST-LAST, e.g. 20000-29999")
    first, last = int(match[1]), int(match[2])
    _check_range(first, last)
    return first, last


class PortPool:
    """Even RTP ports of ``first..last`` whose odd RTCP neighbour is also in the range.

    ``allocate``, ``release`` and the counters are O(1); building the pool is O(size).
    """

    __slots__ = ("_free", "_in_use", "first", "last")

    def __init__(self, first: int, last: int, rng: random.Random | None = None) -> None:
        _check_range(first, last)
        self.first = first
        self.last = last
        ports = list(range(first + (first & 1), last, 2))  # each p with p + 1 <= last
        (rng if rng is not None else random.Random()).shuffle(ports)
        self._free: deque[int] = deque(ports)
        self._in_use: set[int] = set()

    @property
    def capacity(self) -> int:
        return len(self._free) + len(self._in_use)

    @property
    def in_use(self) -> int:
        return len(self._in_use)

    @property
    def available(self) -> int:
        return len(self._free)

    def allocate(self) -> int | None:
        """An even RTP port (RTCP on the next one up), or None when every pair is taken."""
        if not self._free:
            return None
        port = self._free.popleft()
        self._in_use.add(port)
        return port

    def release(self, port: int) -> None:
        """Give a pair back by its RTP port; ValueError for a port this pool did not lend."""
        if port not in self._in_use:
            if port & 1 or not self.first <= port < self.last:
                raise ValueError(f"port {port} is not an RTP port of this pool")
            raise ValueError(f"port {port} is not allocated")
        self._in_use.remove(port)
        self._free.append(port)

    def __contains__(self, port: object) -> bool:
        """True while ``port`` is allocated."""
        return port in self._in_use
