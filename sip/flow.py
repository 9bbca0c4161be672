"""Where a message came from or goes to: a transport, a remote address, a connection."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Flow:
    transport: str  # "udp", "tcp", "tls", "ws", "wss"
    remote: tuple[str, int]
    local: tuple[str, int] = ("", 0)
    conn_id: int = 0  # stream connection id (0 for UDP)

    @property
    def reliable(self) -> bool:
        """Stream transports deliver reliably: no retransmission timers (RFC 3261 §17)."""
        return self.transport != "udp"
