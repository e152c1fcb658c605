"""`TransformersOptions`: the transformers engine's settings, parsed from string options.

Options arrive as strings (`--engine-option KEY=VALUE`, a deployment's `engine_options`); this
module turns them into a typed, validated value and says clearly which one is wrong. It does not
import torch: the control plane can validate a deployment's options without the heavy extra.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

DType = Literal["auto", "float32", "float16", "bfloat16"]
AttentionKind = Literal["sdpa", "eager"]

DTYPES: tuple[DType, ...] = ("auto", "float32", "float16", "bfloat16")
ATTENTION_KINDS: tuple[AttentionKind, ...] = ("sdpa", "eager")
OPTION_NAMES = ("device", "dtype", "max_batch_size", "max_model_len", "attn_implementation")

# Far beyond what one process batches usefully; a typo like 10000 would exhaust memory instead.
MAX_BATCH_SIZE = 1024
_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?|mps")


@dataclass(frozen=True, slots=True)
class TransformersOptions:
    """How to load and batch one model (see `parse_options` for the string forms)."""

    device: str = "auto"  # "auto": CUDA when available, else CPU
    dtype: DType = "auto"  # "auto": the checkpoint's dtype on a GPU, float32 on CPU
    max_batch_size: int = 16  # sequences in one forward pass; more requests wait their turn
    max_model_len: int | None = None  # None: the model's own context length
    attn_implementation: AttentionKind | None = None  # None: transformers' default (sdpa)

    def __post_init__(self) -> None:
        if not _DEVICE.fullmatch(self.device):
            raise ValueError(f"device must be auto, cpu, cuda, cuda:N or mps, got {self.device!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if not 1 <= self.max_batch_size <= MAX_BATCH_SIZE:
            raise ValueError(
                f"max_batch_size must be between 1 and {MAX_BATCH_SIZE}, got {self.max_batch_size}"
            )
        if self.max_model_len is not None and self.max_model_len < 2:
            raise ValueError(f"max_model_len must be at least 2, got {self.max_model_len}")
        if self.attn_implementation is not None and self.attn_implementation not in ATTENTION_KINDS:
            raise ValueError(
                f"attn_implementation must be one of {', '.join(ATTENTION_KINDS)}, "
                f"got {self.attn_implementation!r}"
            )


def parse_options(options: Mapping[str, str]) -> TransformersOptions:
    """Typed options from strings; ValueError naming the unknown or malformed option."""
    unknown = sorted(set(options) - set(OPTION_NAMES))
    if unknown:
        raise ValueError(
            f"unknown transformers engine option(s) {', '.join(unknown)}; "
            f"known options: {', '.join(OPTION_NAMES)}"
        )
    device = options.get("device", "auto").strip().lower()
    dtype = options.get("dtype", "auto").strip().lower()
    if dtype not in DTYPES:
        raise ValueError(f"engine option dtype={options['dtype']!r}: expected one of {', '.join(DTYPES)}")
    attention = options.get("attn_implementation", "").strip().lower() or None
    if attention is not None and attention not in ATTENTION_KINDS:
        raise ValueError(
            f"engine option attn_implementation={options['attn_implementation']!r}: "
            f"expected one of {', '.join(ATTENTION_KINDS)}"
        )
    max_len = options.get("max_model_len", "").strip()
    return TransformersOptions(
        device=device,
        dtype=dtype,  # checked against DTYPES above
        max_batch_size=_parse_int("max_batch_size", options.get("max_batch_size", "16")),
        max_model_len=_parse_int("max_model_len", max_len) if max_len else None,
        attn_implementation=attention,  # checked above
    )


def _parse_int(key: str, raw: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise ValueError(f"engine option {key}={raw!r}: expected a whole number") from None
