"""Embedding vectors as float32 bytes and base64 (engines/vectors.py)."""

from __future__ import annotations

import binascii
import math

import pytest

from gpucloud.engines import vectors


def test_pack_is_little_endian_float32_and_round_trips_exactly() -> None:
    assert vectors.pack([1.0]) == b"\x00\x00\x80\x3f"
    values = [0.5, -2.25, 1e-3, 3.0e38]
    back = vectors.unpack(vectors.pack(values))
    assert back[:2] == [0.5, -2.25]
    assert back[2] == pytest.approx(1e-3, rel=1e-7)  # float32 precision, not float64
    assert back[2] != 1e-3
    assert vectors.unpack(vectors.pack(back)) == back  # exact once in float32


def test_unpack_refuses_a_ragged_buffer() -> None:
    with pytest.raises(ValueError, match="multiple of 4 bytes, not 5"):
        vectors.unpack(b"12345")
    assert vectors.unpack(b"") == []


def test_base64_round_trip_and_strict_decoding() -> None:
    data = vectors.pack([1.0, 2.0, 3.0])
    assert vectors.from_base64(vectors.to_base64(data)) == data
    with pytest.raises(binascii.Error):
        vectors.from_base64("not base64!")


def test_normalised_has_unit_length_and_keeps_zero() -> None:
    unit = vectors.normalised([3.0, 4.0])
    assert unit == pytest.approx([0.6, 0.8])
    assert vectors.normalised([0.0, 0.0]) == [0.0, 0.0]


def test_shortened_renormalises_the_prefix() -> None:
    values = [3.0, 4.0, 12.0]
    assert vectors.shortened(values, None) == values
    assert vectors.shortened(values, 3) == values
    assert vectors.shortened(values, 10) == values
    short = vectors.shortened(values, 2)
    assert short == pytest.approx([0.6, 0.8])
    assert math.fsum(v * v for v in short) == pytest.approx(1.0)
