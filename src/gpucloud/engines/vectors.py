"""Embedding vectors as bytes: little-endian float32, the OpenAI API's base64 payload.

Engines hand vectors over in this form (`EmbeddingResult.vectors`) so that the queue, the stored
result and the base64 answer carry the model's exact float32 values, four bytes each, and only the
gateway's `encoding_format="float"` answer turns them into JSON numbers. Plain Python (`struct`),
so that the gateway and the simulated engine need no numpy.
"""

from __future__ import annotations

import base64
import math
import struct
from collections.abc import Sequence

_FLOAT32 = 4


def pack(values: Sequence[float]) -> bytes:
    """Little-endian float32 bytes of `values`."""
    return struct.pack(f"<{len(values)}f", *values)


def unpack(data: bytes) -> list[float]:
    """The floats of little-endian float32 bytes (exactly: a float32 is exact as a Python float)."""
    if len(data) % _FLOAT32:
        raise ValueError(f"a float32 vector has a multiple of 4 bytes, not {len(data)}")
    return list(struct.unpack(f"<{len(data) // _FLOAT32}f", data))


def to_base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def from_base64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def normalised(values: Sequence[float]) -> list[float]:
    """`values` scaled to unit length (a zero vector stays zero)."""
    norm = math.sqrt(math.fsum(v * v for v in values))
    if norm == 0.0:
        return list(values)
    return [v / norm for v in values]


def shortened(values: Sequence[float], dimensions: int | None) -> list[float]:
    """The first `dimensions` values renormalised to unit length (how Matryoshka-trained models,
    and OpenAI's `dimensions`, shorten an embedding); the vector as is without `dimensions`."""
    if dimensions is None or dimensions >= len(values):
        return list(values)
    return normalised(values[:dimensions])
