"""Location service: the registrar's bindings of AORs to contacts (RFC 3261 §10.3).

Pure and clock-injected: bindings expire at ``now``-based times, ``next_deadline`` /
``handle_timer`` drive expiry. Each binding remembers the flow the REGISTER came over, so
requests to the contact reuse that connection or NAT pinhole (RFC 5626 §5.3, RFC 3581) rather
than whatever host the Contact names: the edge never resolves a contact's host name.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from sip.flow import Flow
from sip.uri import SipUri, uri_equal


@dataclass(slots=True)
class Binding:
    aor: str
    contact: str  # the Contact URI as the phone wrote it (escaped headers stay verbatim)
    uri: SipUri
    q: float
    expires_at: float
    call_id: str
    cseq: int
    flow: Flow

    def remaining(self, now: float) -> int:
        return max(0, int(self.expires_at - now + 0.5))


class LocationService:
    def __init__(self, max_bindings_per_aor: int = 10) -> None:
        self.max_bindings_per_aor = max_bindings_per_aor
        self._aors: dict[str, list[Binding]] = {}
        self._expiry: list[tuple[float, str]] = []  # (expires_at, aor), lazily cleaned

    def __len__(self) -> int:
        return sum(len(b) for b in self._aors.values())

    def aors(self) -> list[str]:
        return list(self._aors)

    def lookup(self, aor: str, now: float) -> list[Binding]:
        """Live bindings of an AOR, highest q first (RFC 3261 §16.6 uses q to order targets)."""
        live = [b for b in self._aors.get(aor, ()) if b.expires_at > now]
        live.sort(key=lambda b: -b.q)
        return live

    def find(self, aor: str, uri: SipUri, now: float) -> Binding | None:
        for binding in self._aors.get(aor, ()):
            if binding.expires_at > now and uri_equal(binding.uri, uri):
                return binding
        return None

    def commit(self, aor: str, bindings: list[Binding], now: float) -> None:
        """Replace an AOR's bindings at once (§10.3 step 7: all updates or none)."""
        live = [b for b in bindings if b.expires_at > now]
        if live:
            self._aors[aor] = live
            heapq.heappush(self._expiry, (min(b.expires_at for b in live), aor))
        else:
            self._aors.pop(aor, None)

    def next_deadline(self) -> float | None:
        return self._expiry[0][0] if self._expiry else None

    def handle_timer(self, now: float) -> list[Binding]:
        """Drop expired bindings; returns them (for logs and metrics)."""
        expired: list[Binding] = []
        while self._expiry and self._expiry[0][0] <= now:
            _, aor = heapq.heappop(self._expiry)
            bindings = self._aors.get(aor)
            if not bindings:
                continue
            keep = [b for b in bindings if b.expires_at > now]
            expired.extend(b for b in bindings if b.expires_at <= now)
            if keep:
                self._aors[aor] = keep
                heapq.heappush(self._expiry, (min(b.expires_at for b in keep), aor))
            else:
                del self._aors[aor]
        return expired
