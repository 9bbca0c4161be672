"""Symmetric RTP latching (RFC 4961, RFC 7362 §4.2), sans-I/O: one object per relay socket.

A phone behind NAT announces one address in its SDP and sends from another (its NAT mapping).
Symmetric RTP (RFC 4961 §3) means the phone receives on the address it sends from, so the relay
"latches": it learns the far end from the first packet and sends back to that source, not to
the SDP address (RFC 7362 §4.2, the common SBC practice it describes).

Rules, per socket:

- before latching, the first packet from any source latches to it and is accepted;
- after latching, packets from the latched source are accepted and the rest are dropped and
  counted (``dropped``): a third party cannot hijack or inject into the stream;
- RTP Bleed (a stranger racing the phone's first packet): a latch to anything but the SDP
  address is provisional — a later packet from exactly the SDP address takes the latch over.
  A phone that sends from where its SDP says always wins; one behind NAT (which never sends
  from its SDP address) is unaffected;
- ``relatch()`` (after a re-INVITE moved the far end) re-opens the latch: the next packet,
  from whatever source, latches again;
- ``target`` is where the relay sends toward this far end: the latched source, or the expected
  (SDP) address while nothing is latched, so the relay can reach a phone that has not sent yet.

``accept`` runs once per packet: it allocates nothing and, once latched, is one comparison.
"""

from __future__ import annotations

__all__ = ["Address", "Latch"]

Address = tuple[str, int]


class Latch:
    """The far end of one relay socket: learnt from traffic, else taken from SDP."""

    __slots__ = ("_open", "dropped", "expected", "latched", "target")

    def __init__(self, expected: Address | None = None) -> None:
        self.expected = expected  # from the SDP (c= and m= port); None when not known yet
        self.latched: Address | None = None  # the source we latched to
        self.target: Address | None = expected  # where to send: latched, else expected
        self.dropped = 0  # packets refused because they came from another source
        self._open = True  # the next packet latches

    def accept(self, source: Address) -> bool:
        """True when a packet from ``source`` is to be relayed (latching to it if open)."""
        if source == self.latched:
            return True
        if self._open or source == self.expected:
            # RFC 7362 §4.2: learn the far end from the first packet received; the SDP
            # address itself may always take over a provisional latch (see above).
            self._open = False
            self.latched = self.target = source
            return True
        self.dropped += 1
        return False

    def relatch(self) -> None:
        """Forget the latched source: the next packet latches again (after a re-INVITE).

        Until it arrives the target is the expected address (call ``set_expected`` first when
        the re-INVITE moved it), or the old source when no address was ever expected.
        """
        self._open = True
        if self.latched is not None:
            if self.expected is not None:
                self.target = self.expected
            self.latched = None

    def set_expected(self, expected: Address) -> None:
        """A new SDP address. A latched source keeps priority (NAT: SDP may be unreachable)."""
        self.expected = expected
        if self.latched is None:
            self.target = expected
