"""Parser micro-benchmark: parse + validate + serialize of a typical INVITE and REGISTER.

Run: ``.venv/bin/python benchmarks/parser_bench.py`` (``make bench`` runs it too).
Prints messages/s on one core for parse alone, parse+validate, and parse+serialize.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sip.message import Request
from sip.parser import parse_message
from sip.validate import validate_request

SDP = (
    b"v=0\r\no=alice 2890844526 2890844526 IN IP4 127.0.0.1\r\ns=-\r\n"
    b"c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0 8 101\r\n"
    b"a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
)
INVITE = (
    b"INVITE sip:1002@voxedge.test SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK776asdhds;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "Alice" <sip:1001@voxedge.test>;tag=1928301774\r\n'
    b"To: <sip:1002@voxedge.test>\r\n"
    b"Call-ID: a84b4c76e66710@127.0.0.1\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:1001@127.0.0.1:5070;transport=udp>\r\n"
    b"Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, REFER, NOTIFY, INFO, UPDATE\r\n"
    b"Supported: replaces, timer\r\n"
    b"User-Agent: bench/1.0\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: " + str(len(SDP)).encode() + b"\r\n\r\n" + SDP
)
REGISTER = (
    b"REGISTER sip:voxedge.test SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKnashds7;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"From: <sip:1001@voxedge.test>;tag=a73kszlfl\r\n"
    b"To: <sip:1001@voxedge.test>\r\n"
    b"Call-ID: 1j9FpLxk3uxtm8tn@127.0.0.1\r\n"
    b"CSeq: 2 REGISTER\r\n"
    b"Contact: <sip:1001@127.0.0.1:5070>;expires=3600\r\n"
    b'Authorization: Digest username="1001", realm="voxedge.test", '
    b'nonce="AAAAAGZ3yQAAAAABc2lnbmF0dXJlLWJ5dGVzLWhlcmU", uri="sip:voxedge.test", '
    b'response="6629fae49393a05397450978507c4ef1", algorithm=MD5, qop=auth, nc=00000001, '
    b'cnonce="0a4f113b"\r\n'
    b"User-Agent: bench/1.0\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def rate(work: Callable[[], object], seconds: float = 1.0) -> float:
    """Calls per second of ``work`` over about ``seconds``."""
    count = 0
    batch = 200
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(batch):
            work()
        count += batch
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


def _parse_validate(data: bytes) -> None:
    message = parse_message(data)
    assert isinstance(message, Request)
    validate_request(message)


def results(seconds: float = 1.0) -> list[tuple[str, str, float]]:
    out = []
    for name, data in (("INVITE", INVITE), ("REGISTER", REGISTER)):
        out.append((name, "parse", rate(lambda d=data: parse_message(d), seconds)))
        out.append((name, "parse+validate", rate(lambda d=data: _parse_validate(d), seconds)))
        out.append(
            (name, "parse+serialize", rate(lambda d=data: parse_message(d).to_bytes(), seconds))
        )
    return out


def main() -> None:
    print(f"{'message':10} {'operation':18} {'messages/s':>12} {'µs/message':>11}")
    for name, op, per_second in results(2.0):
        print(f"{name:10} {op:18} {per_second:12,.0f} {1e6 / per_second:11.1f}")


if __name__ == "__main__":
    main()
