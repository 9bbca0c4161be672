"""asyncio transports for the SIP core: the only part of ``sip`` that touches sockets."""

from sip.transport.common import STAT_KEYS, MessageSink
from sip.transport.transports import Transports

__all__ = ["STAT_KEYS", "MessageSink", "Transports"]
