"""Per-stream RTP receive statistics (RFC 3550 Appendix A), pure and driven by injected time.

One ``ReceiverStats`` per received SSRC. ``feed`` takes each packet's sequence number, RTP
timestamp and arrival time (``now``, seconds on any monotonic clock); ``report_block`` turns
the state into the RFC 3550 §6.4.1 reception report for an RR/SR, and ``on_sender_report``
remembers the peer's last SR for the LSR/DLSR fields.
"""

from __future__ import annotations

from dataclasses import dataclass

from media.rtcp import ReportBlock, ntp_middle32

__all__ = [
    "MAX_DROPOUT",
    "MAX_MISORDER",
    "MIN_SEQUENTIAL",
    "LastSr",
    "ReceiverStats",
]

# RFC 3550 Appendix A.1
RTP_SEQ_MOD = 1 << 16
MAX_DROPOUT = 3000
MAX_MISORDER = 100
MIN_SEQUENTIAL = 2

_LOST_MAX = 0x7FFFFF  # RFC 3550 Appendix A.3: cumulative loss is clamped to signed 24 bits
_LOST_MIN = -0x800000


@dataclass(slots=True, frozen=True)
class LastSr:
    """The last SR heard from the source: LSR (middle 32 bits of its NTP timestamp, §6.4.1)
    and when it arrived on our clock."""

    lsr: int
    received_at: float


class ReceiverStats:
    """Sequence, loss and jitter state of one received RTP stream (RFC 3550 Appendix A).

    A source is valid after ``MIN_SEQUENTIAL`` packets in sequence (A.1 probation); until then
    packets are counted in ``packets``/``octets`` but not in loss or jitter, and
    ``report_block`` returns None (§6.4: report only on validated sources).
    """

    __slots__ = (
        "_bad_seq",
        "_base_seq",
        "_cycles",
        "_expected_prior",
        "_has_transit",
        "_max_seq",
        "_probation",
        "_received",
        "_received_prior",
        "_transit",
        "clock_rate",
        "jitter",
        "last_sr",
        "octets",
        "packets",
    )

    def __init__(self, clock_rate: int) -> None:
        if clock_rate <= 0:
            raise ValueError(f"clock rate must be positive, not {clock_rate}")
        self.clock_rate = clock_rate
        self.packets = 0  # every packet fed, valid or not
        self.octets = 0
        self.jitter = 0.0  # RFC 3550 A.8, RTP timestamp units
        self.last_sr: LastSr | None = None
        self._max_seq = 0
        self._cycles = 0
        self._base_seq = 0
        self._bad_seq = RTP_SEQ_MOD + 1
        self._probation = -1  # -1: no packet seen yet
        self._received = 0
        self._expected_prior = 0
        self._received_prior = 0
        self._transit = 0
        self._has_transit = False

    # -- RFC 3550 Appendix A.1 --------------------------------------------------------------

    def _init_seq(self, seq: int) -> None:
        self._base_seq = seq
        self._max_seq = seq
        self._bad_seq = RTP_SEQ_MOD + 1  # so seq == bad_seq is false
        self._cycles = 0
        self._received = 0
        self._received_prior = 0
        self._expected_prior = 0

    def update_seq(self, seq: int) -> bool:
        """RFC 3550 A.1 ``update_seq``: True when the packet counts toward the statistics."""
        if self._probation < 0:
            # First packet of the source: A.1 init_seq, max_seq = seq - 1, probation.
            self._init_seq(seq)
            self._max_seq = (seq - 1) & 0xFFFF
            self._probation = MIN_SEQUENTIAL
        udelta = (seq - self._max_seq) & 0xFFFF
        if self._probation:
            # Source is not valid until MIN_SEQUENTIAL packets in sequence. The modulo fixes
            # A.1's 16-bit promotion slip (65535 + 1 must match 0).
            if seq == (self._max_seq + 1) & 0xFFFF:
                self._probation -= 1
                self._max_seq = seq
                if self._probation == 0:
                    self._init_seq(seq)
                    self._received += 1
                    return True
            else:
                self._probation = MIN_SEQUENTIAL - 1
                self._max_seq = seq
            return False
        if udelta < MAX_DROPOUT:
            # In order, with a permissible gap.
            if seq < self._max_seq:
                self._cycles += RTP_SEQ_MOD  # wrapped
            self._max_seq = seq
        elif udelta <= RTP_SEQ_MOD - MAX_MISORDER:
            # A very large jump: two sequential packets mean the other side restarted.
            if seq == self._bad_seq:
                self._init_seq(seq)
                self._has_transit = False
            else:
                self._bad_seq = (seq + 1) & (RTP_SEQ_MOD - 1)
                return False
        # else: duplicate or reordered packet, counted as received (A.3 lets loss go negative)
        self._received += 1
        return True

    # -- per packet -------------------------------------------------------------------------

    def feed(self, seq: int, timestamp: int, now: float, size: int = 0) -> bool:
        """Account one received packet: ``seq``/``timestamp`` from its header, ``now`` its
        arrival time in seconds, ``size`` its length in octets. Returns A.1's verdict."""
        self.packets += 1
        self.octets += size
        if not self.update_seq(seq & 0xFFFF):
            return False
        # RFC 3550 A.8: transit = arrival - timestamp in RTP units, taken mod 2^32 so a
        # timestamp wrap is a small difference; J += (|D| - J) / 16.
        arrival = round(now * self.clock_rate)
        transit = (arrival - timestamp) & 0xFFFFFFFF
        if self._has_transit:
            d = (transit - self._transit) & 0xFFFFFFFF
            if d >= 0x80000000:
                d = 0x100000000 - d
            self.jitter += (d - self.jitter) / 16.0
        self._transit = transit
        self._has_transit = True
        return True

    def on_sender_report(self, ntp_timestamp: int, now: float) -> None:
        """Remember an SR from this source (RFC 3550 §6.4.1 LSR/DLSR)."""
        self.last_sr = LastSr(ntp_middle32(ntp_timestamp), now)

    # -- RFC 3550 Appendix A.3 --------------------------------------------------------------

    @property
    def validated(self) -> bool:
        return self._probation == 0

    @property
    def received(self) -> int:
        """Packets counted by A.1 since the source was validated (duplicates included)."""
        return self._received

    @property
    def extended_max_seq(self) -> int:
        return self._cycles + self._max_seq

    @property
    def expected(self) -> int:
        return self.extended_max_seq - self._base_seq + 1 if self.validated else 0

    @property
    def cumulative_lost(self) -> int:
        """Expected minus received, clamped to the signed 24 bits of the report (A.3)."""
        lost = self.expected - self._received
        return max(_LOST_MIN, min(_LOST_MAX, lost))

    @property
    def jitter_seconds(self) -> float:
        return self.jitter / self.clock_rate

    def report_block(
        self, ssrc: int, now: float, last_sr: LastSr | None = None
    ) -> ReportBlock | None:
        """The reception report for this source (RFC 3550 §6.4.1, A.3), or None before the
        source is validated.

        Closes a reporting interval: ``fraction_lost`` covers the packets since the previous
        call, so call it once per report sent. ``last_sr`` overrides the SR recorded by
        ``on_sender_report`` (for callers that track SRs elsewhere).
        """
        if not self.validated:
            return None
        expected = self.expected
        expected_interval = expected - self._expected_prior
        self._expected_prior = expected
        received_interval = self._received - self._received_prior
        self._received_prior = self._received
        lost_interval = expected_interval - received_interval
        if expected_interval == 0 or lost_interval <= 0:
            fraction = 0
        else:
            # Capped: a restart (A.1 init_seq) can leave an interval with nothing received.
            fraction = min(0xFF, (lost_interval << 8) // expected_interval)
        sr = last_sr if last_sr is not None else self.last_sr
        if sr is None:
            lsr = dlsr = 0
        else:
            lsr = sr.lsr
            # §6.4.1: DLSR in units of 1/65536 s since that SR arrived.
            dlsr = min(0xFFFFFFFF, max(0, int((now - sr.received_at) * 65536)))
        return ReportBlock(
            ssrc=ssrc,
            fraction_lost=fraction,
            cumulative_lost=self.cumulative_lost,
            highest_seq=self.extended_max_seq & 0xFFFFFFFF,
            jitter=min(0xFFFFFFFF, int(self.jitter)),
            lsr=lsr,
            dlsr=dlsr,
        )
