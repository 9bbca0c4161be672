"""The edge's link to the control plane (asyncio glue): config watch, outbox drain, status.

Three loops share one mutual-TLS gRPC channel (the key and certificate from pairing, the
control plane's CA as the only root):

- **watch**: ``WatchConfig(from_version=current)``; each update goes through ``edge.feed``
  (pure) into a whole new ``EdgeConfig``, then ``SipService.reload`` swaps it in, then the
  snapshot proto and its version are persisted to ``cache.sqlite`` on a worker thread. An
  update the feed refuses is logged and skipped whole: the edge keeps running (and reporting)
  the version it had, and nothing is persisted; the next delta on that stream would not fit,
  so when one comes the edge watches again from its own version instead (the control plane
  then sends everything since, which applies once the fault is fixed). Reconnects back off
  exponentially with jitter (0.5 s doubling to 30 s, reset once an update arrives); a refused
  edge (PERMISSION_DENIED or UNAUTHENTICATED: revoked, or its certificate superseded by a later
  pairing) is logged as an error and retried every 60 s while it serves its cached snapshot.
- **drain**: pending outbox items (oldest first, at most 500 or ~2 MiB per batch) go out in
  one ``PushEvents``; keys the control plane stored are marked delivered. Keys it **refused**
  are marked delivered too, each logged with the reason: a refusal is final and never retried
  (the proto's contract), so one bad record cannot block the queue. An RPC failure counts an
  attempt on every key of the batch and backs off; delivery is at least once, the control
  plane stores each key once. The loop polls every second when idle and purges rows delivered
  more than a day ago once an hour.
- **status**: ``ReportStatus`` after each applied update and every 15 s (config version,
  registrations, active calls, link state). The link is ``up`` after any RPC that succeeded and
  ``degraded`` after any that failed; nothing on the call path waits on it.

Logs name versions, counts and gRPC status codes, never HA1s, tokens or keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import sqlite3
import time
from collections.abc import Callable, Coroutine
from enum import StrEnum
from typing import Any, Final

import grpc

from edge.config import EdgeConfig
from edge.config_cache import CachedSnapshot, ConfigCache
from edge.feed import FeedError, apply_update, build_edge_config
from edge.outbox import Outbox, OutboxError, OutboxItem, encode_payload
from edge.pairing import EdgeCredentials
from edge.sipserver import SipService
from protos.voxedge.v1 import edge_pb2, edge_pb2_grpc

log = logging.getLogger("voxedge.uplink")

BATCH_ITEMS: Final = 500
BATCH_BYTES: Final = 2 << 20  # well under gRPC's 4 MiB default message limit
RPC_TIMEOUT: Final = 10.0
PURGE_AFTER: Final = 86_400.0
PURGE_EVERY: Final = 3_600.0
_REFUSED: Final = (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED)
CHANNEL_OPTIONS: Final = (
    # A snapshot of a large organisation is bigger than gRPC's 4 MiB default.
    ("grpc.max_receive_message_length", 64 << 20),
    # A silently dead link (NAT timeout, partition) under an idle watch stream is found by
    # HTTP/2 pings. Not more often than every 5 min: a gRPC server with default settings
    # answers pings more frequent than that with GOAWAY ("too_many_pings").
    ("grpc.keepalive_time_ms", 300_000),
    ("grpc.keepalive_timeout_ms", 20_000),
)


class LinkState(StrEnum):
    UP = "up"
    DEGRADED = "degraded"


_LINK_PROTO: Final = {
    LinkState.UP: edge_pb2.LINK_STATE_UP,
    LinkState.DEGRADED: edge_pb2.LINK_STATE_DEGRADED,
}


class Backoff:
    """Exponential backoff with jitter: ``initial`` doubling up to ``cap``, each delay drawn
    from [half, full] of the step so a fleet of edges does not reconnect in lockstep."""

    def __init__(
        self, initial: float, cap: float, rng: Callable[[float, float], float] = random.uniform
    ) -> None:
        self.initial = initial
        self.cap = cap
        self._rng = rng
        self._step = initial

    def next(self) -> float:
        step = self._step
        self._step = min(self.cap, step * 2)
        return self._rng(step / 2, step)

    def reset(self) -> None:
        self._step = self.initial


class Uplink:
    def __init__(
        self,
        target: str,
        credentials: EdgeCredentials,
        local: EdgeConfig,
        cache: ConfigCache,
        outbox: Outbox,
        cached: CachedSnapshot | None = None,
        *,
        status_interval: float = 15.0,
        drain_interval: float = 1.0,
        backoff_initial: float = 0.5,
        backoff_cap: float = 30.0,
        refused_retry: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.target = target
        self.local = local
        self.cache = cache
        self.outbox = outbox
        self.snapshot = cached.snapshot if cached is not None else None
        self.version = cached.version if cached is not None else 0
        self.config: EdgeConfig | None = (
            build_edge_config(cached.snapshot, local) if cached is not None else None
        )
        self.link = LinkState.DEGRADED
        self.service: SipService | None = None
        self.status_interval = status_interval
        self.drain_interval = drain_interval
        self.backoff_initial = backoff_initial
        self.backoff_cap = backoff_cap
        self.refused_retry = refused_retry
        self.clock = clock
        self._configured = asyncio.Event()
        if self.config is not None:
            self._configured.set()
        self._report_now = asyncio.Event()
        self._behind = False  # an update was refused: later deltas on the stream do not fit
        self._channel = grpc.aio.secure_channel(
            target, credentials.channel_credentials(), options=CHANNEL_OPTIONS
        )
        self._stub = edge_pb2_grpc.EdgeServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._tasks: list[asyncio.Task[None]] = []

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        for name, loop in (
            ("watch", self._watch_loop),
            ("drain", self._drain_loop),
            ("status", self._status_loop),
        ):
            self._tasks.append(asyncio.create_task(self._guard(name, loop), name=f"uplink-{name}"))

    async def wait_configured(self) -> EdgeConfig:
        """The first configuration (from the cache or the control plane)."""
        await self._configured.wait()
        assert self.config is not None
        return self.config

    def attach(self, service: SipService) -> None:
        """From now on updates reload ``service``; it catches up if one arrived meanwhile."""
        self.service = service
        if self.config is not None and service.config is not self.config:
            self._reload(self.config)
        self._report_now.set()

    async def close(self, timeout: float = 5.0) -> None:
        """Cancel the loops and close the channel, each bounded by ``timeout``."""
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=timeout)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._channel.close(grace=None), timeout)

    async def _guard(self, name: str, loop: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """A bug in one loop is logged and the loop restarted after a pause, never lost."""
        while True:
            try:
                await loop()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("uplink %s loop failed; restarting it in 5 s", name)
                await asyncio.sleep(5.0)

    # ------------------------------------------------------------------ config watch

    async def _watch_loop(self) -> None:
        backoff = Backoff(self.backoff_initial, self.backoff_cap)
        while True:
            log.info("watching config at %s from version %d", self.target, self.version)
            call = self._stub.WatchConfig(edge_pb2.WatchConfigRequest(from_version=self.version))
            self._report_now.set()  # a status report tells whether the link is up
            try:
                resync = False
                async for update in call:
                    backoff.reset()
                    self._set_link(LinkState.UP)
                    if self._behind and update.WhichOneof("change") == "delta":
                        # This delta follows the update we refused: it cannot apply to what we
                        # run. Watch again from our version; the control plane answers with
                        # everything since (a delta or a snapshot).
                        resync = True
                        break
                    await self.apply(update)
                if resync:
                    delay = 0.0
                    log.info("config: watching again from version %d to catch up", self.version)
                else:
                    delay = backoff.next()
                    log.warning("config watch ended by the control plane; again in %.1f s", delay)
            except grpc.aio.AioRpcError as error:
                self._set_link(LinkState.DEGRADED)
                if error.code() in _REFUSED:
                    delay = self.refused_retry
                    log.error(
                        "control plane refused this edge (%s: %s); serving config version %d "
                        "from the cache, retrying in %.0f s",
                        error.code().name,
                        error.details(),
                        self.version,
                        delay,
                    )
                else:
                    delay = backoff.next()
                    log.warning(
                        "config watch failed (%s: %s); serving config version %d, again in %.1f s",
                        error.code().name,
                        error.details(),
                        self.version,
                        delay,
                    )
            finally:
                call.cancel()
            await asyncio.sleep(delay)

    async def apply(self, update: edge_pb2.ConfigUpdate) -> bool:
        """Build, swap in, then persist one update; False (nothing changed) when refused."""
        try:
            snapshot = apply_update(self.snapshot, update)
            config = build_edge_config(snapshot, self.local)
        except FeedError as exc:
            log.error(
                "config version %d refused, still running version %d: %s",
                update.version,
                self.version,
                exc,
            )
            self._behind = True
            return False
        self._behind = False
        self._reload(config)
        self.snapshot, self.version, self.config = snapshot, update.version, config
        self._configured.set()
        self._report_now.set()
        log.info(
            "config version %d applied (%s): %d phones",
            update.version,
            update.WhichOneof("change"),
            len(config.phones),
        )
        try:
            await asyncio.to_thread(self.cache.save, update.version, snapshot, self.clock())
        except (sqlite3.Error, ValueError) as exc:
            log.error("config version %d not persisted to the cache: %s", update.version, exc)
        return True

    def _reload(self, config: EdgeConfig) -> None:
        if self.service is None:
            return
        pending = self.service.reload(config)
        if pending:
            log.warning("changed, takes effect after a restart: %s", ", ".join(pending))

    def _set_link(self, state: LinkState) -> None:
        if state is not self.link:
            log.info("control plane link %s", state.value)
            self.link = state

    # ------------------------------------------------------------------ status

    async def _status_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._report_now.wait(), self.status_interval)
            self._report_now.clear()
            await self.report_status()

    def status(self) -> edge_pb2.EdgeStatus:
        service = self.service
        return edge_pb2.EdgeStatus(
            config_version=self.version,
            registrations=service.registrations if service is not None else 0,
            active_calls=service.active_calls if service is not None else 0,
            link=_LINK_PROTO[self.link],
            reported_at=self.clock(),
        )

    async def report_status(self) -> None:
        try:
            ack = await self._stub.ReportStatus(self.status(), timeout=RPC_TIMEOUT)
        except grpc.aio.AioRpcError as error:
            self._set_link(LinkState.DEGRADED)
            log.debug("status report failed: %s", error.code().name)
            return
        self._set_link(LinkState.UP)
        if ack.latest_version != self.version:
            log.debug("control plane is at config version %d", ack.latest_version)

    # ------------------------------------------------------------------ outbox drain

    async def _drain_loop(self) -> None:
        backoff = Backoff(self.backoff_initial, self.backoff_cap)
        next_purge = 0.0
        while True:
            now = self.clock()
            if now >= next_purge:
                next_purge = now + PURGE_EVERY
                purged = await asyncio.to_thread(self.outbox.purge_delivered, now - PURGE_AFTER)
                if purged:
                    log.info("outbox: purged %d delivered items", purged)
            try:
                items = await asyncio.to_thread(self.outbox.pending, BATCH_ITEMS)
            except (OutboxError, sqlite3.Error) as exc:
                log.error("outbox unreadable: %s", exc)
                await asyncio.sleep(self.refused_retry)
                continue
            if not items:
                await asyncio.sleep(self.drain_interval)
                continue
            delay = await self.push(items)
            if delay is None:
                backoff.reset()
            else:
                await asyncio.sleep(delay if delay else backoff.next())

    async def push(self, items: list[OutboxItem]) -> float | None:
        """Send one batch; None when every key was settled, else how long to wait
        (0: the usual backoff)."""
        events: list[edge_pb2.Event] = []
        size = 0
        for item in items:
            text = encode_payload(item.payload)
            size += len(text) + len(item.key) + 32
            if events and size > BATCH_BYTES:
                break
            events.append(
                edge_pb2.Event(
                    idempotency_key=item.key,
                    kind=item.kind,
                    payload_json=text,
                    created=item.created,
                )
            )
        keys = [event.idempotency_key for event in events]
        try:
            ack = await self._stub.PushEvents(
                edge_pb2.EventBatch(events=events), timeout=RPC_TIMEOUT
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and len(events) == 1:
                # One item over the message limit can never be sent: refused for good.
                log.error("outbox item %r refused: too large to send", keys[0][:64])
                await asyncio.to_thread(self.outbox.mark_delivered, keys, self.clock())
                return None
            self._set_link(LinkState.DEGRADED)
            await asyncio.to_thread(self.outbox.mark_attempted, keys, self.clock())
            log.warning("outbox: %d items not sent (%s)", len(keys), error.code().name)
            return self.refused_retry if error.code() in _REFUSED else 0.0
        self._set_link(LinkState.UP)
        settled = set(ack.stored_keys)
        for refused in ack.refused:
            log.error(
                "outbox item %r refused by the control plane, dropped (never retried): %s",
                refused.idempotency_key[:64],
                refused.reason,
            )
            settled.add(refused.idempotency_key)
        sent = [key for key in keys if key in settled]
        missing = [key for key in keys if key not in settled]
        now = self.clock()
        await asyncio.to_thread(self.outbox.mark_delivered, sent, now)
        if missing:
            await asyncio.to_thread(self.outbox.mark_attempted, missing, now)
            log.warning("outbox: %d items not acknowledged, will retry", len(missing))
            return 0.0
        log.info("outbox: %d items delivered", len(sent))
        return None
