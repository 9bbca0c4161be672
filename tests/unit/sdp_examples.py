"""SDP bodies shared by the SDP and offer/answer tests (typed in from the RFCs)."""

from __future__ import annotations

from pathlib import Path

# The RFC 5118 wire messages, in the shared/ folder beside the repository.
WIRE = Path(__file__).resolve().parents[3] / "shared" / "sip-torture" / "rfc5118" / "wire"


def sdp(*lines: str) -> bytes:
    return "".join(f"{line}\r\n" for line in lines).encode()


# RFC 3264 §10.2, the inactive one-of-N offer.
RFC3264_10_2_OFFER = sdp(
    "v=0",
    "o=alice 2890844526 2890844526 IN IP4 host.anywhere.com",
    "s=",
    "c=IN IP4 host.anywhere.com",
    "t=0 0",
    "m=audio 62986 RTP/AVP 0 4 18",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:4 G723/8000",
    "a=rtpmap:18 G729/8000",
    "a=inactive",
)
