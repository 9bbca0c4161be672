"""One ``loop.call_at`` per sans-I/O engine (the aioquic pattern, DESIGN.md principle 1)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class EngineTimer:
    """Keeps one timer armed at an engine's ``next_deadline()``.

    ``poke()`` after anything that may have moved the deadline earlier; it costs one call of
    ``next_deadline`` when the armed timer is already early enough. A timer that fires before
    the engine's real deadline just re-arms.
    """

    __slots__ = ("_at", "_fire_cb", "_handle", "_loop", "_next_deadline")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        next_deadline: Callable[[], float | None],
        fire: Callable[[float], None],
    ) -> None:
        self._loop = loop
        self._next_deadline = next_deadline
        self._fire_cb = fire
        self._handle: asyncio.TimerHandle | None = None
        self._at = 0.0

    def poke(self) -> None:
        deadline = self._next_deadline()
        if deadline is None:
            return
        if self._handle is not None:
            if self._at <= deadline:
                return
            self._handle.cancel()
        self._at = deadline
        self._handle = self._loop.call_at(deadline, self._fire)

    def _fire(self) -> None:
        self._handle = None
        self._fire_cb(self._loop.time())
        self.poke()

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
