"""ITU-T G.711 µ-law (PCMU) and A-law (PCMA) as numpy lookup tables, sans-I/O.

RFC 3551 §4.5.14 names the two laws as RTP payloads PCMU (static PT 0) and PCMA (PT 8): one
octet per sample at 8 kHz, "as specified in ITU-T Recommendation G.711", most significant bit
first; 160 octets make a 20 ms frame.

Everything is a table built once at import from the G.711 algorithm, so per-frame work is one
numpy fancy-index (decode, encode) or one ``bytes.translate`` (transcode) with no Python loop
per sample (DESIGN.md, "Media" and principle 4):

- ``ULAW_TO_LINEAR`` / ``ALAW_TO_LINEAR``: 256 int16 values, code octet -> linear sample.
- ``LINEAR_TO_ULAW`` / ``LINEAR_TO_ALAW``: 65536 uint8 codes indexed by the int16 sample viewed
  as uint16, so a frame encodes as ``table[samples.view(np.uint16)]``.
- ``ULAW_TO_ALAW`` / ``ALAW_TO_ULAW``: 256 uint8 codes, ``encode(decode(code))``, also as
  256-byte ``bytes`` (``*_BYTES``) for ``payload.translate(...)`` on the relay path.

Linear samples use the usual 16-bit scaling (as in Sun's public-domain g711.c and the ITU-T
G.191 STL): G.711's 14-bit µ-law magnitudes are multiplied by 4 (full scale ±32124) and its
13-bit A-law magnitudes by 8 (full scale ±32256). Decoded values are the G.711 decoder outputs
(the middle of each quantisation interval); encoding finds the interval holding the sample, so
the error is at most half that interval's step, saturating µ-law beyond ±32635 (A-law's 13-bit
range covers all of int16).

Transcoding goes through the linear value (``encode(decode(code))``), nearest in that 16-bit
scaling. G.711 also publishes µ->A and A->µ conversion tables (its Tables 3 and 4, which
Sun's g711.c copies); they derive from the true dBm0 levels of the two laws and differ from
this tandem by one quantisation step for 46 µ-law and 34 A-law codes (around |x| 4096..8191,
plus exact ties near zero). Round trips A->µ->A and µ->A->µ are lossless for 240 of 256 codes
either way.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import numpy.typing as npt

__all__ = [
    "ALAW_TO_LINEAR",
    "ALAW_TO_ULAW",
    "ALAW_TO_ULAW_BYTES",
    "LINEAR_TO_ALAW",
    "LINEAR_TO_ULAW",
    "ULAW_TO_ALAW",
    "ULAW_TO_ALAW_BYTES",
    "ULAW_TO_LINEAR",
    "alaw_to_ulaw",
    "decode_alaw",
    "decode_ulaw",
    "encode_alaw",
    "encode_ulaw",
    "ulaw_to_alaw",
]

Payload = bytes | bytearray | memoryview
Int16Array = npt.NDArray[np.int16]
UInt8Array = npt.NDArray[np.uint8]
_Int32Array = npt.NDArray[np.int32]
_Scalar = TypeVar("_Scalar", bound=np.generic)

# Code octet layout (G.711 Tables 1 and 2): sign bit, 3-bit segment, 4-bit step within the segment.
_SIGN = 0x80
_SEG_MASK = 0x70
_SEG_SHIFT = 4
_QUANT_MASK = 0x0F

# µ-law: G.711 Table 2 codes are sent with all bits inverted (Table 2 note); adding a bias of
# 33 (x4 = 0x84 at 16-bit scale) to the magnitude turns the segments into plain powers of two.
# Segment s covers biased magnitudes up to _ULAW_SEG_END[s].
_ULAW_BIAS = 0x84
_ULAW_SEG_END = np.array([0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF, 0x3FFF, 0x7FFF], np.int32)

# A-law: G.711 Table 1 codes are sent with the even bits inverted (XOR 0x55, Table 1 note).
# Segment ends are 13-bit magnitudes (the 16-bit sample shifted right by 3).
_ALAW_EVEN_BITS = 0x55
_ALAW_SEG_END = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF], np.int32)


def _frozen(array: npt.NDArray[_Scalar]) -> npt.NDArray[_Scalar]:
    """Make a module table read-only: tables are shared, never mutated."""
    array.flags.writeable = False
    return array


def _ulaw_decode(codes: _Int32Array) -> _Int32Array:
    """G.711 µ-law expansion (Table 2), vectorised: biased step value shifted by segment."""
    u = ~codes & 0xFF
    biased = (((u & _QUANT_MASK) << 3) + _ULAW_BIAS) << ((u & _SEG_MASK) >> _SEG_SHIFT)
    return np.where(u & _SIGN, _ULAW_BIAS - biased, biased - _ULAW_BIAS).astype(np.int32)


def _alaw_decode(codes: _Int32Array) -> _Int32Array:
    """G.711 A-law expansion (Table 1): segment 0 is linear, segments 1..7 double each time."""
    a = codes ^ _ALAW_EVEN_BITS
    seg = (a & _SEG_MASK) >> _SEG_SHIFT
    step = (a & _QUANT_MASK) << 4
    magnitude = np.where(seg == 0, step + 8, (step + 0x108) << np.maximum(seg - 1, 0))
    return np.where(a & _SIGN, magnitude, -magnitude).astype(np.int32)


def _ulaw_encode(x: _Int32Array) -> _Int32Array:
    """G.711 µ-law compression of 16-bit-scaled samples, saturating past ±32635."""
    negative = x < 0
    biased = np.where(negative, _ULAW_BIAS - x, x + _ULAW_BIAS)
    seg = np.searchsorted(_ULAW_SEG_END, biased).astype(np.int32)  # first end >= magnitude
    clipped = seg >= len(_ULAW_SEG_END)
    seg = np.minimum(seg, 7)
    code = np.where(clipped, 0x7F, (seg << _SEG_SHIFT) | ((biased >> (seg + 3)) & _QUANT_MASK))
    return (code ^ np.where(negative, 0x7F, 0xFF)).astype(np.int32)  # invert all bits (+sign)


def _alaw_encode(x: _Int32Array) -> _Int32Array:
    """G.711 A-law compression: 13-bit magnitude, one's complement for negative samples."""
    v = x >> 3
    negative = v < 0
    magnitude = np.where(negative, ~v, v)  # -v - 1: -1..-8 share the smallest negative step
    seg = np.minimum(np.searchsorted(_ALAW_SEG_END, magnitude), 7).astype(np.int32)
    quant = (magnitude >> np.maximum(seg, 1)) & _QUANT_MASK
    code = (seg << _SEG_SHIFT) | quant
    return (code ^ np.where(negative, _ALAW_EVEN_BITS, _ALAW_EVEN_BITS | _SIGN)).astype(np.int32)


_ALL_CODES: _Int32Array = np.arange(256, dtype=np.int32)
# Index i of an encode table is the int16 sample whose bit pattern, read as uint16, is i.
_ALL_SAMPLES: _Int32Array = np.arange(1 << 16, dtype=np.uint16).view(np.int16).astype(np.int32)

ULAW_TO_LINEAR: Int16Array = _frozen(_ulaw_decode(_ALL_CODES).astype(np.int16))
ALAW_TO_LINEAR: Int16Array = _frozen(_alaw_decode(_ALL_CODES).astype(np.int16))
LINEAR_TO_ULAW: UInt8Array = _frozen(_ulaw_encode(_ALL_SAMPLES).astype(np.uint8))
LINEAR_TO_ALAW: UInt8Array = _frozen(_alaw_encode(_ALL_SAMPLES).astype(np.uint8))
ULAW_TO_ALAW: UInt8Array = _frozen(LINEAR_TO_ALAW[ULAW_TO_LINEAR.view(np.uint16)])
ALAW_TO_ULAW: UInt8Array = _frozen(LINEAR_TO_ULAW[ALAW_TO_LINEAR.view(np.uint16)])
ULAW_TO_ALAW_BYTES: bytes = ULAW_TO_ALAW.tobytes()
ALAW_TO_ULAW_BYTES: bytes = ALAW_TO_ULAW.tobytes()


def _decode(table: Int16Array, payload: Payload, out: Int16Array | None) -> Int16Array:
    codes = np.frombuffer(payload, dtype=np.uint8)
    if out is None:
        return table[codes]
    np.take(table, codes, out=out)
    return out


def _encode(table: UInt8Array, samples: Int16Array) -> bytes:
    if samples.dtype != np.int16:
        raise TypeError(f"G.711 encodes int16 samples, not {samples.dtype}")
    return table[samples.view(np.uint16)].tobytes()


def decode_ulaw(payload: Payload, out: Int16Array | None = None) -> Int16Array:
    """PCMU payload (RFC 3551 §4.5.14) -> int16 samples, one per octet.

    With ``out`` (an int16 array of ``len(payload)`` samples, e.g. a slice of a mixer frame)
    the samples are written there and no array is allocated.
    """
    return _decode(ULAW_TO_LINEAR, payload, out)


def decode_alaw(payload: Payload, out: Int16Array | None = None) -> Int16Array:
    """PCMA payload (RFC 3551 §4.5.14) -> int16 samples; ``out`` as for ``decode_ulaw``."""
    return _decode(ALAW_TO_LINEAR, payload, out)


def encode_ulaw(samples: Int16Array) -> bytes:
    """int16 samples (any shape, C order) -> PCMU payload; saturates beyond ±32635."""
    return _encode(LINEAR_TO_ULAW, samples)


def encode_alaw(samples: Int16Array) -> bytes:
    """int16 samples (any shape, C order) -> PCMA payload."""
    return _encode(LINEAR_TO_ALAW, samples)


def ulaw_to_alaw(payload: Payload) -> bytes:
    """PCMU -> PCMA payload octet by octet (``encode_alaw(decode_ulaw(payload))``)."""
    return bytes(payload).translate(ULAW_TO_ALAW_BYTES)  # bytes(b) is b itself for bytes


def alaw_to_ulaw(payload: Payload) -> bytes:
    """PCMA -> PCMU payload octet by octet (``encode_ulaw(decode_alaw(payload))``)."""
    return bytes(payload).translate(ALAW_TO_ULAW_BYTES)
