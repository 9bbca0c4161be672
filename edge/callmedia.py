"""Asyncio glue between the B2BUA and the media relay: a ``RelaySession`` per call, the media
timeout sweep, and the call record written to the outbox when a call ends.

The outbox write (SQLite, ``synchronous=FULL``, an fsync per transaction) runs on one worker
thread so the event loop never waits on the disk; records are written in the order calls end,
all those that ended while the previous write ran in one transaction.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable

from edge.call_model import Call, CallState, Leg, LegName, MediaPlanned, MediaTarget
from edge.cdr import CallRecord, LegRecord, write_cdrs
from edge.config import EdgeConfig
from edge.outbox import Outbox, OutboxError
from media.ports import PortPool
from media.relay import DirectionStats, RelayPortError, RelaySession, RelayStats

log = logging.getLogger("voxedge.media")

SWEEP_INTERVAL = 1.0  # seconds between media-timeout checks


class CallMedia:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        config: Callable[[], EdgeConfig],
        outbox: Outbox | None,
        on_ready: Callable[[Call, bool], None],
        on_timeout: Callable[[Call], None],
        on_dtmf: Callable[[Call, LegName, str, int], None],
    ) -> None:
        self._loop = loop
        self._config = config
        first, last = config().edge.media_ports
        self.pool = PortPool(first, last)
        self._outbox = outbox
        self._on_ready = on_ready
        self._on_timeout = on_timeout
        self._on_dtmf = on_dtmf
        self.sessions: dict[Call, RelaySession] = {}
        self._opening: set[Call] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._writer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="cdr")
        self._records: list[CallRecord] = []  # ended calls waiting for the writer
        self._writing: concurrent.futures.Future[list[bool]] | None = None
        self._sweep: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------------ per call

    def open(self, call: Call) -> None:
        self._opening.add(call)
        task = self._loop.create_task(self._open(call))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _open(self, call: Call) -> None:
        address = self._config().edge.media_address
        try:
            session = await RelaySession.open(self._loop, self.pool, address)
        except (RelayPortError, OSError) as exc:
            log.warning("call %s: no media: %s", call.id, exc)
            self._opening.discard(call)
            self._on_ready(call, False)
            return
        self._opening.discard(call)
        if call.state is CallState.ENDED:
            session.close()  # the call ended while its relay was being bound
            return
        self.sessions[call] = session
        call.media_ports = {"a": session.ports_a[0], "b": session.ports_b[0]}
        self._arm_sweep()
        self._on_ready(call, True)

    def target(self, action: MediaTarget) -> None:
        session = self.sessions.get(action.call)
        if session is None or action.address is None:
            return
        try:
            session.set_expected(action.leg, action.address)
        except ValueError as exc:
            log.info("call %s: SDP address refused: %s", action.call.id, exc)
            return
        if action.relatch:
            session.relatch(action.leg)  # RFC 4961 / DESIGN.md: re-latch after a re-INVITE

    def plan(self, action: MediaPlanned) -> None:
        """Payload maps (transcoding, renumbering) and DTMF taps for the call's relay."""
        session = self.sessions.get(action.call)
        if session is None:
            return
        call, plan = action.call, action.plan
        legs: tuple[LegName, LegName] = ("a", "b")
        try:
            for leg in legs:
                session.set_payload_map(leg, plan.payload_maps.get(leg, {}))
                pt = plan.dtmf_to_info.get(leg)
                if pt is None:
                    session.set_dtmf(leg, None, None, forward=True)
                else:
                    session.set_dtmf(leg, pt, self._dtmf_callback(call, leg), forward=False)
        except ValueError as exc:
            log.info("call %s: media plan refused: %s", call.id, exc)
        if plan.transcodes:
            log.info("call %s: transcoding G.711 (%s)", call.id, plan.codec)

    def _dtmf_callback(self, call: Call, leg: LegName) -> Callable[[str, int], None]:
        def heard(digit: str, duration_ms: int) -> None:
            self._on_dtmf(call, leg, digit, duration_ms)

        return heard

    def ended(self, call: Call) -> None:
        session = self.sessions.pop(call, None)
        stats = None
        if session is not None:
            stats = session.stats()
            session.close()
        if self._outbox is None:
            return
        self._records.append(call_record(call, self._config().edge.name, stats))
        if self._writing is None:
            self._write()

    def _write(self) -> None:
        """Everything queued in one outbox transaction on the writer thread; whatever ends
        meanwhile goes in the next (group commit: one fsync for a burst of calls)."""
        assert self._outbox is not None
        batch, self._records = self._records, []
        future = self._writer.submit(write_cdrs, self._outbox, batch, batch[-1].ended)
        self._writing = future
        future.add_done_callback(
            lambda done: self._loop.call_soon_threadsafe(self._written, done, len(batch))
        )

    def _written(self, future: concurrent.futures.Future[list[bool]], count: int) -> None:
        self._writing = None
        try:
            future.result()
        except (OutboxError, OSError, ValueError) as exc:
            log.error("%d call record(s) not written: %s", count, exc)
        if self._records:
            self._write()

    # ------------------------------------------------------------------ media timeout

    def _arm_sweep(self) -> None:
        if self._sweep is None:
            self._sweep = self._loop.call_later(SWEEP_INTERVAL, self._check_timeouts)

    def _check_timeouts(self) -> None:
        self._sweep = None
        now = self._loop.time()
        limit = self._config().edge.media_timeout
        for call, session in list(self.sessions.items()):
            if call.state is not CallState.ANSWERED or call.held or call.media_since is None:
                continue
            stats = session.stats()
            for last in (stats.last_rx_a, stats.last_rx_b):
                since = max(last or 0.0, call.media_since)
                if now - since > limit:
                    log.info("call %s: no media for %.0f s", call.id, now - since)
                    self._on_timeout(call)
                    break
        if self.sessions:
            self._arm_sweep()

    # ------------------------------------------------------------------ shutdown

    async def close(self) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        for task in list(self._tasks):
            task.cancel()
        for session in self.sessions.values():
            session.close()
        self.sessions.clear()
        while self._writing is not None or self._records:  # every record reaches the disk
            if self._writing is None:
                self._write()
            writing = self._writing
            assert writing is not None
            await asyncio.wait([asyncio.wrap_future(writing)])
            await asyncio.sleep(0)  # let _written run
        self._writer.shutdown(wait=True)


def call_record(call: Call, edge: str, stats: RelayStats | None) -> CallRecord:
    """The CDR of an ended call; ``stats`` are its relay's counters (None: no media). Legs:
    the caller's and the callee's as the call ended, then any transferor that left it."""
    ended = call.ended if call.ended is not None else call.started
    first = next(iter(call.forks.branches.values()), None)
    unanswered = (first.request.headers.get("Call-ID") or "") if first else ""
    legs = (
        _leg(call, call.a, stats, call.invite.headers.get("Call-ID") or ""),
        _leg(call, call.b, stats, unanswered),
        *(_leg(call, leg, None, "") for leg in call.departed),
    )
    return CallRecord(
        call_id=call.id,
        org="",
        edge=edge,
        legs=legs,
        from_uri=call.a.uri,
        to_uri=call.b.uri,
        started=call.started,
        answered=call.answered,
        ended=ended,
        end_cause=call.end_cause,
        sip_code=call.sip_code or 500,
        hung_up_by=call.hung_up_by,
    )


_NO_TRAFFIC = DirectionStats(0, 0, 0, 0)


def _leg(call: Call, leg: Leg, stats: RelayStats | None, call_id: str) -> LegRecord:
    """One leg's record: its own dialog's Call-ID (``call_id`` when it never had a dialog)
    and, for the legs on the relay when the call ended, the relay's counters."""
    received = sent = _NO_TRAFFIC
    report = None
    if stats is not None and leg is call.leg(leg.name):
        a = leg.name == "a"
        received, sent = (stats.a_to_b, stats.b_to_a) if a else (stats.b_to_a, stats.a_to_b)
        # RFC 3550 §6.4: what the leg's phone reported about the media it received.
        report = stats.report_a if a else stats.report_b
    remote = leg.media_address or leg.flow.remote
    return LegRecord(
        role="caller" if leg.name == "a" else "callee",
        sip_call_id=leg.dialog.id.call_id if leg.dialog is not None else call_id,
        from_uri=call.a.uri,
        to_uri=leg.uri if leg.name == "b" else call.b.uri,
        remote=f"{remote[0]}:{remote[1]}",
        codec=leg.codec or call.codec,
        packets_sent=sent.packets,
        packets_received=received.packets,
        bytes_sent=sent.octets,
        bytes_received=received.octets,
        packets_lost=report.cumulative_lost if report is not None else 0,
        jitter_ms=report.jitter_ms if report is not None else 0.0,
    )
