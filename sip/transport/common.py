"""What the transports share: the sink type and the counters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from sip.flow import Flow

# One whole message — a UDP datagram or one framed stream message — and where it came from.
MessageSink = Callable[[bytes, Flow], None]

STAT_KEYS: Final = (
    "udp_rx",  # datagrams received, keep-alives and oversize ones included
    "udp_tx",  # datagrams handed to the kernel
    "udp_keepalives",  # CRLF-only datagrams, not passed on (RFC 5626 §3.5.1)
    "stream_rx",  # framed messages received over TCP/TLS
    "stream_tx",  # messages written to TCP/TLS connections
    "framing_errors",  # connections closed because framing was lost (RFC 3261 §18.3)
    "oversize_dropped",  # datagrams over max_datagram, stream messages over max_message
    "connections_open",  # gauge: established TCP/TLS connections
    "connections_refused",  # closed at once: max_connections reached
    "idle_closed",  # closed by the idle sweep
    "pings",  # CRLFCRLF pings answered with a CRLF pong (RFC 5626 §4.4.1)
    "send_failures",  # no connection / listener for a flow, or the kernel refused a datagram
    "blocked_destinations",  # broadcast, multicast, unspecified or port 0 (RFC 4475 §3.3.10)
    "tls_handshake_failures",  # accepted TLS connections that never completed the handshake
    "write_overflows",  # connections closed because their write buffer passed the limit
    "sink_errors",  # exceptions raised by the sink (a bug upstream; logged)
)


def new_stats() -> dict[str, int]:
    return dict.fromkeys(STAT_KEYS, 0)
