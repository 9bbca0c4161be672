"""Notice of configuration changes, per organisation (DESIGN.md, Flows).

``Store.write`` calls ``publish(org_id)`` after each commit; a ``WatchConfig`` stream takes
``waiter(org_id)`` *before* it reads the organisation's configuration, then waits on it, so a
commit that lands between the read and the wait is never missed. The event only says "look
again": the version itself is always read from the store.

Across processes (replicas on one PostgreSQL) every write also runs
``SELECT pg_notify('voxedge_config', org_id)`` inside its transaction (PostgreSQL delivers it
at commit, and drops it on rollback), and each process runs one ``ChangeListener``: a single
asyncpg connection that LISTENs on that channel and calls ``publish(org_id)`` for every
notification. When that connection drops, notifications sent meanwhile are lost, so after every
(re)connect the listener wakes every watcher (``publish_all``); it reconnects with exponential
backoff. Watchers still re-read on a timer as a last safety net.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Final

import asyncpg  # type: ignore[import-untyped]

log = logging.getLogger(__name__)

CHANNEL: Final = "voxedge_config"
KEEPALIVE: Final = 10.0  # s between liveness probes of the listening connection
BACKOFF_MIN: Final = 0.2
BACKOFF_MAX: Final = 10.0
CONNECT_TIMEOUT: Final = 10.0


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

    def publish_all(self) -> None:
        """Wake every watcher of every organisation (after notifications may have been lost)."""
        events, self._events = self._events, {}
        for event in events.values():
            event.set()


class ChangeListener:
    """LISTEN on ``CHANNEL`` over one asyncpg connection; each payload (an org id) is published
    to ``notifier``. ``start()`` returns once listening (or raises after ``timeout`` s);
    ``stop()`` ends the task and closes the connection.
    """

    def __init__(
        self,
        connect: dict[str, Any],
        notifier: ConfigNotifier,
        *,
        keepalive: float = KEEPALIVE,
        backoff_min: float = BACKOFF_MIN,
        backoff_max: float = BACKOFF_MAX,
    ) -> None:
        self._connect = connect
        self._notifier = notifier
        self._keepalive = keepalive
        self._backoff_min = backoff_min
        self._backoff_max = backoff_max
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self.connection: Any = None  # the live asyncpg connection, for tests and diagnostics
        self.connects = 0  # successful (re)connections so far

    async def start(self, timeout: float = CONNECT_TIMEOUT) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="pg-listen")
        await asyncio.wait_for(self._listening.wait(), timeout)

    async def stop(self) -> None:
        task, self._task = self._task, None
        self._listening.clear()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _on_notify(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        self._notifier.publish(payload)

    async def _run(self) -> None:
        backoff = self._backoff_min
        while True:
            connection: Any = None
            try:
                connection = await asyncpg.connect(**self._connect, timeout=CONNECT_TIMEOUT)
                lost = asyncio.Event()
                connection.add_termination_listener(lambda _c, lost=lost: lost.set())
                await connection.add_listener(CHANNEL, self._on_notify)
                self.connection = connection
                self.connects += 1
                # Whatever was committed while we were not listening has been missed.
                self._notifier.publish_all()
                self._listening.set()
                backoff = self._backoff_min
                while not lost.is_set() and not connection.is_closed():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), self._keepalive)
                        break
                    # A half-open TCP connection only shows itself when used.
                    await asyncio.wait_for(connection.fetchval("SELECT 1"), self._keepalive)
                log.warning("config change listener: connection lost, reconnecting")
            except asyncio.CancelledError:
                raise
            except Exception as error:  # whatever it was: keep listening
                log.warning("config change listener: %s; retrying in %.1f s", error, backoff)
            finally:
                self.connection = None
                if connection is not None:
                    # terminate(): no round trip on a connection that may be dead.
                    connection.terminate()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._backoff_max)
