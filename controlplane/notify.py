"""In-process notice of configuration changes, per organisation (DESIGN.md, Flows).

``Store.write`` calls ``publish(org_id)`` after each commit; a ``WatchConfig`` stream takes
``waiter(org_id)`` *before* it reads the organisation's version, then waits on it, so a commit
that lands between the read and the wait is never missed. The event only says "look again":
the version itself is always read from the store. One process only: replicas over PostgreSQL
need LISTEN/NOTIFY (not built yet), which is why watchers also re-read on a timer.
"""

from __future__ import annotations

import asyncio


class ConfigNotifier:
    """One asyncio.Event per organisation with watchers, replaced at each publish."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def waiter(self, org_id: str) -> asyncio.Event:
        """The event the next ``publish(org_id)`` sets (shared by every watcher of the org)."""
        event = self._events.get(org_id)
        if event is None:
            event = self._events[org_id] = asyncio.Event()
        return event

    def publish(self, org_id: str) -> None:
        """Wake every watcher of ``org_id``; a no-op when nobody waits."""
        event = self._events.pop(org_id, None)
        if event is not None:
            event.set()
