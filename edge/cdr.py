"""Call detail records: one ``CallRecord`` per call through the B2BUA, queued in the outbox.

The calls code fills a record when a call ends and hands it to ``write_cdr``; the outbox makes
it durable and delivers it at least once under ``idempotency_key``, which depends only on the
edge and the edge's own call id, so every retry (of the put or of the send) carries the same key
and the control plane stores the call once (DESIGN.md principle 5).

``to_payload`` / ``from_payload`` are the wire form (JSON-ready dict, ``schema: 1``).
``from_payload`` checks every field and raises ``ValueError`` naming the first bad one; unknown
keys are ignored so a newer edge may add optional fields without a schema bump.

Construction checks values, not clock order: ``answered``/``ended`` come from the wall clock
and a clock step during a call must not make the record unwritable (that would lose it).
``packets_lost`` may be negative: RFC 3550 §6.4.1 / App. A.3 cumulative loss goes below zero
when duplicates arrive.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeVar, cast, get_args

if TYPE_CHECKING:
    from edge.outbox import Outbox

SCHEMA = 1
MAX_LEGS = 64

LegRole = Literal["caller", "callee"]
HungUpBy = Literal["caller", "callee", "edge"]
EndCause = Literal["normal", "cancelled", "busy", "no-answer", "media-timeout", "failed"]

LEG_ROLES: frozenset[str] = frozenset(get_args(LegRole))
HUNG_UP_BY: frozenset[str] = frozenset(get_args(HungUpBy))
END_CAUSES: frozenset[str] = frozenset(get_args(EndCause))

_T = TypeVar("_T")


def _bad(field: str, problem: str) -> ValueError:
    return ValueError(f"cdr field {field!r}: {problem}")


def _check_time(field: str, value: float) -> None:
    if not math.isfinite(value):
        raise _bad(field, f"must be a finite time, got {value!r}")


def _check_choice(field: str, value: object, choices: frozenset[str]) -> None:
    if value not in choices:
        raise _bad(field, f"must be one of {sorted(choices)}, got {value!r}")


@dataclass(frozen=True, slots=True)
class LegRecord:
    """One side of the call: its SIP dialog and the media counters of its RTP leg."""

    role: LegRole
    sip_call_id: str
    from_uri: str
    to_uri: str
    remote: str  # "ip:port" of the far end's media (or signalling when no media)
    codec: str | None
    packets_sent: int
    packets_received: int
    bytes_sent: int
    bytes_received: int
    packets_lost: int
    jitter_ms: float

    def __post_init__(self) -> None:
        _check_choice("role", self.role, LEG_ROLES)
        for name in ("packets_sent", "packets_received", "bytes_sent", "bytes_received"):
            if getattr(self, name) < 0:
                raise _bad(name, f"must not be negative, got {getattr(self, name)}")
        if not math.isfinite(self.jitter_ms) or self.jitter_ms < 0:
            raise _bad("jitter_ms", f"must be a finite non-negative number, got {self.jitter_ms}")

    def to_payload(self) -> dict[str, object]:
        return {
            "role": self.role,
            "sip_call_id": self.sip_call_id,
            "from_uri": self.from_uri,
            "to_uri": self.to_uri,
            "remote": self.remote,
            "codec": self.codec,
            "packets_sent": self.packets_sent,
            "packets_received": self.packets_received,
            "bytes_sent": self.bytes_sent,
            "bytes_received": self.bytes_received,
            "packets_lost": self.packets_lost,
            "jitter_ms": float(self.jitter_ms),
        }

    @classmethod
    def from_payload(cls, data: Mapping[str, object], prefix: str = "") -> LegRecord:
        f = _Fields(data, prefix)
        return cls(
            role=cast(LegRole, f.choice("role", LEG_ROLES)),
            sip_call_id=f.text("sip_call_id"),
            from_uri=f.text("from_uri"),
            to_uri=f.text("to_uri"),
            remote=f.text("remote"),
            codec=f.optional("codec", f.text),
            packets_sent=f.integer("packets_sent", minimum=0),
            packets_received=f.integer("packets_received", minimum=0),
            bytes_sent=f.integer("bytes_sent", minimum=0),
            bytes_received=f.integer("bytes_received", minimum=0),
            packets_lost=f.integer("packets_lost"),
            jitter_ms=f.number("jitter_ms", minimum=0.0),
        )


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One call through the B2BUA, from the first INVITE to the end of the last leg."""

    call_id: str  # the edge's own id for the call, not a SIP Call-ID
    org: str  # empty for a standalone edge
    edge: str  # empty for a standalone edge
    legs: tuple[LegRecord, ...]
    from_uri: str
    to_uri: str
    started: float
    answered: float | None
    ended: float
    end_cause: EndCause
    sip_code: int  # final response code sent to the caller (200 for an answered call)
    hung_up_by: HungUpBy | None

    def __post_init__(self) -> None:
        if not self.call_id:
            raise _bad("call_id", "must not be empty")
        if len(self.legs) > MAX_LEGS:
            raise _bad("legs", f"at most {MAX_LEGS} legs, got {len(self.legs)}")
        _check_time("started", self.started)
        if self.answered is not None:
            _check_time("answered", self.answered)
        _check_time("ended", self.ended)
        _check_choice("end_cause", self.end_cause, END_CAUSES)
        if not 100 <= self.sip_code <= 699:
            raise _bad("sip_code", f"must be a SIP status code 100..699, got {self.sip_code}")
        if self.hung_up_by is not None:
            _check_choice("hung_up_by", self.hung_up_by, HUNG_UP_BY)

    @property
    def idempotency_key(self) -> str:
        """Stable for this call on this edge, whatever is retried and however often."""
        return f"cdr:{self.edge}:{self.call_id}"

    def to_payload(self) -> dict[str, object]:
        return {
            "schema": SCHEMA,
            "call_id": self.call_id,
            "org": self.org,
            "edge": self.edge,
            "legs": [leg.to_payload() for leg in self.legs],
            "from_uri": self.from_uri,
            "to_uri": self.to_uri,
            "started": float(self.started),
            "answered": None if self.answered is None else float(self.answered),
            "ended": float(self.ended),
            "end_cause": self.end_cause,
            "sip_code": self.sip_code,
            "hung_up_by": self.hung_up_by,
        }

    @classmethod
    def from_payload(cls, data: Mapping[str, object]) -> CallRecord:
        f = _Fields(data)
        if f.integer("schema") != SCHEMA:
            raise _bad("schema", f"unsupported version {data['schema']!r} (expected {SCHEMA})")
        raw_legs = f.value("legs")
        if not isinstance(raw_legs, list):
            raise _bad("legs", f"must be a list, got {type(raw_legs).__name__}")
        if len(raw_legs) > MAX_LEGS:
            raise _bad("legs", f"at most {MAX_LEGS} legs, got {len(raw_legs)}")
        legs = []
        for i, raw in enumerate(raw_legs):
            if not isinstance(raw, Mapping):
                raise _bad(f"legs[{i}]", f"must be an object, got {type(raw).__name__}")
            legs.append(LegRecord.from_payload(raw, prefix=f"legs[{i}]."))
        hung_up_by = f.optional("hung_up_by", lambda n: f.choice(n, HUNG_UP_BY))
        return cls(
            call_id=f.text("call_id"),
            org=f.text("org"),
            edge=f.text("edge"),
            legs=tuple(legs),
            from_uri=f.text("from_uri"),
            to_uri=f.text("to_uri"),
            started=f.number("started"),
            answered=f.optional("answered", f.number),
            ended=f.number("ended"),
            end_cause=cast(EndCause, f.choice("end_cause", END_CAUSES)),
            sip_code=f.integer("sip_code"),
            hung_up_by=cast("HungUpBy | None", hung_up_by),
        )


class _Fields:
    """Typed reads from a decoded JSON object; each error names the field (with its path)."""

    def __init__(self, data: Mapping[str, object], prefix: str = "") -> None:
        self._data = data
        self._prefix = prefix

    def value(self, name: str) -> object:
        if name not in self._data:
            raise _bad(self._prefix + name, "missing")
        return self._data[name]

    def _wrong(self, name: str, expected: str, value: object) -> ValueError:
        return _bad(self._prefix + name, f"must be {expected}, got {type(value).__name__}")

    def text(self, name: str) -> str:
        value = self.value(name)
        if not isinstance(value, str):
            raise self._wrong(name, "a string", value)
        return value

    def integer(self, name: str, minimum: int | None = None) -> int:
        value = self.value(name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._wrong(name, "an integer", value)
        if minimum is not None and value < minimum:
            raise _bad(self._prefix + name, f"must be at least {minimum}, got {value}")
        return value

    def number(self, name: str, minimum: float | None = None) -> float:
        value = self.value(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._wrong(name, "a number", value)
        if not math.isfinite(value):
            raise _bad(self._prefix + name, f"must be finite, got {value!r}")
        if minimum is not None and value < minimum:
            raise _bad(self._prefix + name, f"must be at least {minimum}, got {value}")
        return float(value)

    def choice(self, name: str, choices: frozenset[str]) -> str:
        value = self.text(name)
        if value not in choices:
            raise _bad(self._prefix + name, f"must be one of {sorted(choices)}, got {value!r}")
        return value

    def optional(self, name: str, read: Callable[[str], _T]) -> _T | None:
        return None if self.value(name) is None else read(name)


def write_cdrs(outbox: Outbox, records: Sequence[CallRecord], now: float) -> list[bool]:
    """Queue ``records`` durably in one transaction; per record, False if already queued."""
    return outbox.put_many([("cdr", r.idempotency_key, r.to_payload()) for r in records], now)
