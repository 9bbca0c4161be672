"""Where a SIP message came from or goes to (RFC 3261 §18, RFC 5626 §3 "flow").

Shared by the transport glue (``sip/transport/``) and the sans-I/O cores (transactions,
dialogs): the transport layer stamps every received message with its ``Flow`` and sends every
outgoing one to the ``Flow`` the core names. Nothing here touches a socket.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Flow:
    """A transport, a remote address and, for streams, the connection that carried a message.

    ``transport`` is lower case: ``"udp"``, ``"tcp"``, ``"tls"``, ``"ws"`` or ``"wss"``.
    ``conn_id`` names a stream connection (0 for UDP) so that responses reuse it
    (RFC 3261 §18.2.2, RFC 5626 §5).
    """

    transport: str
    remote: tuple[str, int]
    local: tuple[str, int] = ("", 0)
    conn_id: int = 0

    @property
    def reliable(self) -> bool:
        """Whether the transport retransmits for us (RFC 3261 §17.1.1.2, §17.1.2.2)."""
        return self.transport != "udp"
