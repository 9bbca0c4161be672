"""Write ``g711u_tone.pcap``: 3 s of a 1004 Hz tone as G.711 µ-law (PCMU) RTP, for SIPp.

    python benchmarks/sipp/pcap/make_pcap.py            # rewrites g711u_tone.pcap beside it
    python benchmarks/sipp/pcap/make_pcap.py --out X.pcap --seconds 3

SIPp's ``<exec play_pcap_audio="pcap/g711u_tone.pcap"/>`` replays the capture's UDP payloads
with their recorded spacing, from ``-mp`` (``[media_port]``) to the address the peer's SDP names.
It takes a libpcap file (not pcapng) with link type Ethernet or Linux cooked, IPv4 or IPv6, UDP,
every packet captured whole; it keeps the RTP header (sequence numbers, timestamps, SSRC) as is
and rewrites only the UDP ports and checksum.

What is in it (stdlib only, deterministic: the same bytes on every run):
- libpcap 2.4, microsecond timestamps, link type 1 (Ethernet), snap length 65535;
- 150 packets 20 ms apart, each Ethernet / IPv4 127.0.0.1 -> 127.0.0.1 / UDP 16384 -> 16384 /
  RTP (RFC 3550 §5.1: version 2, payload type 0 PCMU (RFC 3551), marker on the first packet,
  sequence numbers from 1, timestamps from 0 in steps of 160, SSRC 0x566F7845 "VoxE") /
  160 octets of payload;
- the tone: 1004 Hz (the usual telephony test tone, ITU-T O.132: not a divisor of 8 kHz, so
  every code is exercised), amplitude 8000 of 32767 (about -12 dBFS), µ-law encoded as in the
  ITU-T G.191 / Sun g711.c reference (bias 0x84, clip 32635), continuous phase across packets.
"""

from __future__ import annotations

import argparse
import math
import struct
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "g711u_tone.pcap"

SAMPLE_RATE = 8000
PACKET_MS = 20
SAMPLES_PER_PACKET = SAMPLE_RATE * PACKET_MS // 1000  # 160 octets of PCMU
TONE_HZ = 1004.0
AMPLITUDE = 8000
SSRC = 0x566F7845  # "VoxE"
PAYLOAD_TYPE = 0  # PCMU, RFC 3551 §6
PORT = 16384
START_EPOCH = 1_700_000_000  # pcap timestamps (only their spacing matters to SIPp)
LOOPBACK = bytes((127, 0, 0, 1))
SRC_MAC = bytes.fromhex("020000000001")  # locally administered
DST_MAC = bytes.fromhex("020000000002")


def ulaw(sample: int) -> int:
    """One linear 16-bit sample as a G.711 µ-law code (G.191 / Sun g711.c ``linear2ulaw``)."""
    sign = 0x80 if sample < 0 else 0
    magnitude = min(abs(sample), 32635) + 0x84
    exponent = max(0, magnitude.bit_length() - 8)  # segment 0..7
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def tone(seconds: float) -> bytes:
    """``seconds`` of the tone as µ-law codes, a whole number of packets."""
    packets = round(seconds * 1000 / PACKET_MS)
    step = 2 * math.pi * TONE_HZ / SAMPLE_RATE
    return bytes(
        ulaw(round(AMPLITUDE * math.sin(step * n))) for n in range(packets * SAMPLES_PER_PACKET)
    )


def rtp_packets(audio: bytes) -> Iterator[bytes]:
    """RTP packets (RFC 3550 §5.1) of ``SAMPLES_PER_PACKET`` codes each."""
    for index in range(len(audio) // SAMPLES_PER_PACKET):
        first_byte = 0x80  # V=2, P=0, X=0, CC=0
        second_byte = (0x80 if index == 0 else 0) | PAYLOAD_TYPE  # marker: talk spurt start
        header = struct.pack(
            "!BBHII",
            first_byte,
            second_byte,
            (index + 1) & 0xFFFF,
            (index * SAMPLES_PER_PACKET) & 0xFFFFFFFF,
            SSRC,
        )
        yield header + audio[index * SAMPLES_PER_PACKET : (index + 1) * SAMPLES_PER_PACKET]


def internet_checksum(data: bytes) -> int:
    """RFC 1071 one's complement sum."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def frame(rtp: bytes, ip_id: int) -> bytes:
    """Ethernet II / IPv4 / UDP around one RTP packet, checksums filled in."""
    udp_length = 8 + len(rtp)
    pseudo = LOOPBACK + LOOPBACK + struct.pack("!BBH", 0, 17, udp_length)
    udp_no_sum = struct.pack("!HHHH", PORT, PORT, udp_length, 0) + rtp
    udp_sum = internet_checksum(pseudo + udp_no_sum) or 0xFFFF  # RFC 768: 0 means "none"
    udp = struct.pack("!HHHH", PORT, PORT, udp_length, udp_sum) + rtp
    ip_no_sum = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0xB8, 20 + udp_length, ip_id, 0x4000, 64, 17, 0, LOOPBACK, LOOPBACK
    )  # DSCP EF (46), don't fragment, TTL 64, protocol UDP
    ip = ip_no_sum[:10] + struct.pack("!H", internet_checksum(ip_no_sum)) + ip_no_sum[12:]
    return DST_MAC + SRC_MAC + b"\x08\x00" + ip + udp


def pcap(seconds: float) -> bytes:
    """The whole libpcap file."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]  # link type 1: Ethernet
    for index, rtp in enumerate(rtp_packets(tone(seconds))):
        data = frame(rtp, ip_id=index + 1)
        micros = index * PACKET_MS * 1000
        out.append(
            struct.pack(
                "<IIII", START_EPOCH + micros // 1_000_000, micros % 1_000_000, len(data), len(data)
            )
        )
        out.append(data)
    return b"".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="pcap file to write")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of the tone (3)")
    args = parser.parse_args(argv)
    args.out.write_bytes(pcap(args.seconds))
    print(f"wrote {args.out} ({round(args.seconds * 1000 / PACKET_MS)} packets)")


if __name__ == "__main__":
    main()
