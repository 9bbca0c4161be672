"""G.711 µ-law / A-law tables and codecs (media/g711.py): ITU-T G.711, RFC 3551 §4.5.14.

Source of truth for the known values: ITU-T G.711 Tables 1 (A-law) and 2 (µ-law), whose decoder
outputs are in 13-bit (A-law, ±4096) and 14-bit (µ-law, ±8159) units, scaled to 16 bits by 8 and
4 as in Sun's public-domain g711.c (alaw2linear / ulaw2linear) and the ITU-T G.191 STL g711.c.
So A-law's largest output 4032 is ±32256 and its smallest 1 is ±8; µ-law's largest 8031 is
±32124 and its smallest is 0 (codes 0xFF and 0x7F, the "positive" and "negative" zero).
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from media import g711
from media.g711 import (
    ALAW_TO_LINEAR,
    ALAW_TO_ULAW,
    ALAW_TO_ULAW_BYTES,
    LINEAR_TO_ALAW,
    LINEAR_TO_ULAW,
    ULAW_TO_ALAW,
    ULAW_TO_ALAW_BYTES,
    ULAW_TO_LINEAR,
    alaw_to_ulaw,
    decode_alaw,
    decode_ulaw,
    encode_alaw,
    encode_ulaw,
    ulaw_to_alaw,
)

ALL_CODES = bytes(range(256))
ALL_SAMPLES = np.arange(1 << 16, dtype=np.uint16).view(np.int16)  # every int16, by bit pattern
Encoder = Callable[[npt.NDArray[np.int16]], bytes]
Decoder = Callable[[bytes], npt.NDArray[np.int16]]
HalfStep = Callable[[npt.NDArray[np.uint8]], npt.NDArray[np.int64]]
ULAW_CLIP = 32635  # µ-law saturates past this (biased magnitude 0x7FFF, G.711 Table 2 overload)


def ulaw_half_step(codes: npt.NDArray[np.uint8]) -> npt.NDArray[np.int64]:
    """Half the µ-law quantisation interval of each code: 4 << segment (16-bit scale)."""
    segment = (~codes.astype(np.int64) & 0x70) >> 4
    half: npt.NDArray[np.int64] = 4 << segment
    return half


def alaw_half_step(codes: npt.NDArray[np.uint8]) -> npt.NDArray[np.int64]:
    """Half the A-law quantisation interval: 8 in segments 0 and 1, 8 << (segment-1) after."""
    segment = ((codes.astype(np.int64) ^ 0x55) & 0x70) >> 4
    half: npt.NDArray[np.int64] = 8 << np.maximum(segment - 1, 0)
    return half


# --- tables -------------------------------------------------------------------------------------


def test_table_shapes_and_types() -> None:
    for table in (ULAW_TO_LINEAR, ALAW_TO_LINEAR):
        assert table.dtype == np.int16 and table.shape == (256,)
    for encoder in (LINEAR_TO_ULAW, LINEAR_TO_ALAW):
        assert encoder.dtype == np.uint8 and encoder.shape == (65536,)
    for transcoder in (ULAW_TO_ALAW, ALAW_TO_ULAW):
        assert transcoder.dtype == np.uint8 and transcoder.shape == (256,)
    assert isinstance(ULAW_TO_ALAW_BYTES, bytes) and len(ULAW_TO_ALAW_BYTES) == 256
    assert isinstance(ALAW_TO_ULAW_BYTES, bytes) and len(ALAW_TO_ULAW_BYTES) == 256


def test_tables_are_read_only() -> None:
    for table in (ULAW_TO_LINEAR, ALAW_TO_LINEAR, LINEAR_TO_ULAW, LINEAR_TO_ALAW, ULAW_TO_ALAW):
        with pytest.raises(ValueError):
            table[0] = 1


@pytest.mark.parametrize(
    ("code", "value"),
    [
        (0xFF, 0),  # µ-law positive zero (all bits inverted: sign 1, segment 0, step 0)
        (0x7F, 0),  # µ-law negative zero
        (0x00, -32124),  # µ-law most negative: -8031 x 4
        (0x80, 32124),  # µ-law most positive
        (0xFE, 8),  # µ-law smallest positive step: 2 x 4
        (0x7E, -8),
    ],
)
def test_ulaw_known_values(code: int, value: int) -> None:
    assert ULAW_TO_LINEAR[code] == value
    assert decode_ulaw(bytes([code])).tolist() == [value]


@pytest.mark.parametrize(
    ("code", "value"),
    [
        (0xD5, 8),  # A-law smallest positive: 1 x 8 (even bits inverted: 0x80 ^ 0x55)
        (0x55, -8),  # A-law smallest negative; A-law has no zero
        (0x2A, -32256),  # A-law most negative: -4032 x 8 (0x7F ^ 0x55)
        (0xAA, 32256),  # A-law most positive (0xFF ^ 0x55)
        (0xC5, 264),  # first step of segment 1: 33 x 8
    ],
)
def test_alaw_known_values(code: int, value: int) -> None:
    assert ALAW_TO_LINEAR[code] == value
    assert decode_alaw(bytes([code])).tolist() == [value]


@pytest.mark.parametrize(
    ("table", "positive", "negative"),
    [(ULAW_TO_LINEAR, 0xFF, 0x7F), (ALAW_TO_LINEAR, 0xD5, 0x55)],
    ids=["ulaw", "alaw"],
)
def test_decode_monotonic_and_symmetric_per_sign_half(
    table: npt.NDArray[np.int16], positive: int, negative: int
) -> None:
    # Code = mask ^ k, k = 0..127 the magnitude index (bit inversion per G.711 Tables 1 and 2).
    k = np.arange(128)
    pos = table[positive ^ k].astype(np.int64)
    neg = table[negative ^ k].astype(np.int64)
    assert np.all(np.diff(pos) > 0)
    assert np.all(np.diff(neg) < 0)
    assert np.array_equal(neg, -pos)
    assert pos.min() >= 0


def test_ulaw_encode_decode_roundtrip_all_codes() -> None:
    back = LINEAR_TO_ULAW[ULAW_TO_LINEAR.view(np.uint16)]
    expected = np.arange(256, dtype=np.uint8)
    # 0x7F (negative zero) decodes to 0, which encodes as positive zero 0xFF: the only exception.
    expected[0x7F] = 0xFF
    assert np.array_equal(back, expected)


def test_alaw_encode_decode_roundtrip_all_codes() -> None:
    back = LINEAR_TO_ALAW[ALAW_TO_LINEAR.view(np.uint16)]
    assert np.array_equal(back, np.arange(256, dtype=np.uint8))


def test_encode_table_indexing_by_uint16_view() -> None:
    assert LINEAR_TO_ULAW[0] == 0xFF and LINEAR_TO_ALAW[0] == 0xD5
    assert LINEAR_TO_ULAW[0xFFFF] == 0x7F  # -1: µ-law negative zero
    assert LINEAR_TO_ALAW[0xFFFF] == 0x55  # -1: A-law smallest negative
    assert LINEAR_TO_ULAW[0x7FFF] == 0x80 and LINEAR_TO_ULAW[0x8000] == 0x00  # saturation
    assert LINEAR_TO_ALAW[0x7FFF] == 0xAA and LINEAR_TO_ALAW[0x8000] == 0x2A


def test_ulaw_exhaustive_error_bound() -> None:
    codes = LINEAR_TO_ULAW[ALL_SAMPLES.view(np.uint16)]
    x = ALL_SAMPLES.astype(np.int64)
    error = np.abs(ULAW_TO_LINEAR[codes].astype(np.int64) - x)
    in_range = np.abs(x) <= ULAW_CLIP
    assert np.all(error[in_range] <= ulaw_half_step(codes)[in_range])
    assert np.all(codes[x > ULAW_CLIP] == 0x80)
    assert np.all(codes[x < -ULAW_CLIP] == 0x00)


def test_alaw_exhaustive_error_bound() -> None:
    # A-law's 13-bit range covers every int16: no saturation, every sample within half a step.
    codes = LINEAR_TO_ALAW[ALL_SAMPLES.view(np.uint16)]
    error = np.abs(ALAW_TO_LINEAR[codes].astype(np.int64) - ALL_SAMPLES)
    assert np.all(error <= alaw_half_step(codes))


@pytest.mark.parametrize(
    ("to_code", "to_linear", "skip"),
    [
        # µ-law zeros share one interval; the extremes also take the saturated samples.
        (LINEAR_TO_ULAW, ULAW_TO_LINEAR, {0xFF, 0x7F, 0x00, 0x80}),
        (LINEAR_TO_ALAW, ALAW_TO_LINEAR, set()),
    ],
    ids=["ulaw", "alaw"],
)
def test_decoded_value_is_the_middle_of_its_interval(
    to_code: npt.NDArray[np.uint8], to_linear: npt.NDArray[np.int16], skip: set[int]
) -> None:
    # G.711 Tables 1 and 2: each code covers one contiguous interval between decision values and
    # decodes to its middle. (Not always the nearest level: at a segment edge the step doubles,
    # so e.g. µ-law sample 124 is coded as 132, not 120, as Table 2 says.)
    codes = to_code[ALL_SAMPLES.view(np.uint16)]
    order = np.argsort(codes, kind="stable")
    x_sorted = ALL_SAMPLES.astype(np.int64)[order]
    bounds = np.searchsorted(codes[order], np.arange(257))
    for code in range(256):
        if code in skip:
            continue
        xs = np.sort(x_sorted[bounds[code] : bounds[code + 1]])
        lo, hi = int(xs[0]), int(xs[-1])
        assert len(xs) == hi - lo + 1, hex(code)  # contiguous
        assert abs(2 * int(to_linear[code]) - (lo + hi)) <= 1, hex(code)


# --- codecs -------------------------------------------------------------------------------------


def _sweep(amplitude: float) -> npt.NDArray[np.int16]:
    """One second of a linear chirp 50 Hz -> 3950 Hz at 8 kHz."""
    t = np.arange(8000) / 8000
    phase = 2 * np.pi * (50 * t + (3950 - 50) * t**2 / 2)
    return np.round(amplitude * np.sin(phase)).astype(np.int16)


@pytest.mark.parametrize(
    ("amplitude", "min_snr_db"),
    # G.711 holds roughly 38 dB SQNR over a wide range of levels (that is what companding buys);
    # measured here: µ 39.1 / A 38.9 dB at 32000, µ 36.1 / A 38.7 at 1000, µ 29.2 / A 23.2 at 100.
    [(32000, 37.0), (1000, 34.0), (100, 20.0)],
)
@pytest.mark.parametrize(
    ("encode", "decode", "half_step"),
    [(encode_ulaw, decode_ulaw, ulaw_half_step), (encode_alaw, decode_alaw, alaw_half_step)],
    ids=["ulaw", "alaw"],
)
def test_sine_sweep_quantisation_error(
    encode: Encoder, decode: Decoder, half_step: HalfStep, amplitude: float, min_snr_db: float
) -> None:
    x = _sweep(amplitude)
    payload = encode(x)
    y = decode(payload)
    error = y.astype(np.int64) - x
    assert np.all(np.abs(error) <= half_step(np.frombuffer(payload, np.uint8)))
    snr = 10 * np.log10(np.sum(x.astype(np.float64) ** 2) / np.sum(error.astype(np.float64) ** 2))
    assert snr >= min_snr_db


def test_frame_of_160_round_trip() -> None:
    # RFC 3551 §4.5.14 / §4.2: 20 ms at 8000 Hz is 160 samples, one octet each.
    t = np.arange(160) / 8000
    frame = np.round(12000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
    for encode, decode, half_step in (
        (encode_ulaw, decode_ulaw, ulaw_half_step),
        (encode_alaw, decode_alaw, alaw_half_step),
    ):
        payload = encode(frame)
        assert isinstance(payload, bytes) and len(payload) == 160
        samples = decode(payload)
        assert samples.dtype == np.int16 and samples.shape == (160,)
        codes = np.frombuffer(payload, np.uint8)
        assert np.all(np.abs(samples.astype(np.int64) - frame) <= half_step(codes))
        assert encode(samples) == payload  # decoded samples sit on levels: re-encode is exact


def test_decode_into_preallocated_buffer() -> None:
    mix = np.zeros(320, dtype=np.int16)
    payload = encode_ulaw(np.arange(-160, 160, 2, dtype=np.int16) * 100)
    result = decode_ulaw(payload, out=mix[160:])
    assert np.shares_memory(result, mix)
    assert np.array_equal(mix[160:], decode_ulaw(payload))
    assert not mix[:160].any()
    buf = np.empty(256, np.int16)
    decode_alaw(ALL_CODES, out=buf)
    assert np.array_equal(buf, ALAW_TO_LINEAR)


def test_decode_accepts_buffer_types_and_empty() -> None:
    for payload in (ALL_CODES, bytearray(ALL_CODES), memoryview(ALL_CODES)):
        assert np.array_equal(decode_ulaw(payload), ULAW_TO_LINEAR)
        assert np.array_equal(decode_alaw(payload), ALAW_TO_LINEAR)
    assert decode_ulaw(b"").shape == (0,)
    assert encode_alaw(np.zeros(0, np.int16)) == b""


def test_decoded_array_is_a_private_copy() -> None:
    samples = decode_ulaw(b"\x00\x80")
    samples[0] = 1  # must not write through to the shared table
    assert ULAW_TO_LINEAR[0] == -32124


def test_encode_rejects_other_dtypes() -> None:
    with pytest.raises(TypeError, match="int16"):
        encode_ulaw(np.zeros(4, np.int32))
    with pytest.raises(TypeError, match="int16"):
        encode_alaw(np.zeros(4, np.float64))


def test_encode_non_contiguous_and_2d() -> None:
    x = _sweep(20000)
    assert encode_ulaw(x[::2]) == encode_ulaw(np.ascontiguousarray(x[::2]))
    assert encode_alaw(x.reshape(50, 160)) == encode_alaw(x)


# --- transcoding --------------------------------------------------------------------------------


def test_transcoding_tables_equal_encode_of_decode() -> None:
    assert np.array_equal(ULAW_TO_ALAW, LINEAR_TO_ALAW[ULAW_TO_LINEAR.view(np.uint16)])
    assert np.array_equal(ALAW_TO_ULAW, LINEAR_TO_ULAW[ALAW_TO_LINEAR.view(np.uint16)])
    assert ulaw_to_alaw(ALL_CODES) == encode_alaw(decode_ulaw(ALL_CODES))
    assert alaw_to_ulaw(ALL_CODES) == encode_ulaw(decode_alaw(ALL_CODES))


def test_translate_path_equals_numpy_path() -> None:
    payload = bytes(np.random.default_rng(711).integers(0, 256, 160, dtype=np.uint8))
    codes = np.frombuffer(payload, np.uint8)
    assert payload.translate(ULAW_TO_ALAW_BYTES) == ULAW_TO_ALAW[codes].tobytes()
    assert payload.translate(ALAW_TO_ULAW_BYTES) == ALAW_TO_ULAW[codes].tobytes()
    assert ULAW_TO_ALAW.tobytes() == ULAW_TO_ALAW_BYTES
    for buffer in (payload, bytearray(payload), memoryview(payload)):
        out = ulaw_to_alaw(buffer)
        assert type(out) is bytes and out == ULAW_TO_ALAW[codes].tobytes()
        assert alaw_to_ulaw(buffer) == ALAW_TO_ULAW[codes].tobytes()


def test_transcoding_error_within_one_step() -> None:
    # Tandem through linear: the transcoded value is within half a step of the target law.
    from_ulaw = ALAW_TO_LINEAR[ULAW_TO_ALAW].astype(np.int64) - ULAW_TO_LINEAR
    assert np.all(np.abs(from_ulaw) <= alaw_half_step(ULAW_TO_ALAW))
    from_alaw = ULAW_TO_LINEAR[ALAW_TO_ULAW].astype(np.int64) - ALAW_TO_LINEAR
    assert np.all(np.abs(from_alaw) <= ulaw_half_step(ALAW_TO_ULAW))


def test_transcoding_round_trips() -> None:
    # A->µ->A and µ->A->µ are lossless for 240 of the 256 codes each (as with G.711 Tables 3, 4).
    codes = np.arange(256)
    assert np.count_nonzero(ULAW_TO_ALAW[ALAW_TO_ULAW] == codes) == 240
    assert np.count_nonzero(ALAW_TO_ULAW[ULAW_TO_ALAW] == codes) == 240


# --- property tests -----------------------------------------------------------------------------


@given(arrays(np.int16, st.integers(0, 400)))
def test_encode_arbitrary_int16_is_within_step(samples: npt.NDArray[np.int16]) -> None:
    x = samples.astype(np.int64)
    ulaw = encode_ulaw(samples)
    alaw = encode_alaw(samples)
    assert len(ulaw) == len(alaw) == len(samples)
    u_codes = np.frombuffer(ulaw, np.uint8)
    u_err = np.abs(decode_ulaw(ulaw).astype(np.int64) - x)
    in_range = np.abs(x) <= ULAW_CLIP
    assert np.all(u_err[in_range] <= ulaw_half_step(u_codes)[in_range])
    assert np.all(np.abs(decode_ulaw(ulaw)[~in_range]) == 32124)  # saturated at full scale
    a_codes = np.frombuffer(alaw, np.uint8)
    assert np.all(np.abs(decode_alaw(alaw).astype(np.int64) - x) <= alaw_half_step(a_codes))


@given(st.binary(max_size=400))
def test_transcode_arbitrary_payload(payload: bytes) -> None:
    assert ulaw_to_alaw(payload) == encode_alaw(decode_ulaw(payload))
    assert alaw_to_ulaw(payload) == encode_ulaw(decode_alaw(payload))


# --- sans-I/O -----------------------------------------------------------------------------------


def test_module_is_sans_io() -> None:
    tree = ast.parse(Path(g711.__file__).read_text())
    imported = {
        alias.name.split(".")[0]
        for n in ast.walk(tree)
        if isinstance(n, ast.Import)
        for alias in n.names
    }
    imported |= {
        n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module
    }
    assert not imported & {"asyncio", "socket", "time", "selectors"}
