"""Loading a causal LM and its tokenizer: device and dtype choice, limits, special tokens.

Blocking (it reads weights and may fetch from a hub), so the engine calls `load_model` in a
thread. Remote code is never trusted: a model directory or hub repository must not be able to run
code on a worker by being loaded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from gpucloud.engines.sources import split_revision
from gpucloud.engines.transformers.options import TransformersOptions

log = logging.getLogger(__name__)

# Models whose config names no context length (rare) get this one.
DEFAULT_CONTEXT = 2048
_CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length")


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """A model ready for batched decoding, with what the batcher needs to know about it."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    device: torch.device
    max_model_len: int
    eos_token_ids: frozenset[int]
    pad_token_id: int


def resolve_device(requested: str) -> torch.device:
    """`auto` picks CUDA when present; an explicit device that is missing is an error, not a fallback."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {requested!r} was asked for but CUDA is not available on this machine")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device 'mps' was asked for but MPS is not available on this machine")
    return device


def resolve_dtype(requested: str, device: torch.device) -> torch.dtype | str:
    """A torch dtype, or "auto" (the checkpoint's own) on accelerators.

    On CPU "auto" means float32: half precision there is slow and poorly supported by kernels.
    """
    if requested == "auto":
        return torch.float32 if device.type == "cpu" else "auto"
    dtype: torch.dtype = getattr(torch, requested)
    return dtype


def load_model(source: Path | str, options: TransformersOptions) -> LoadedModel:
    """Load `source` (a resolved local directory or a hub id) as `options` say."""
    device = resolve_device(options.device)
    dtype = resolve_dtype(options.dtype, device)
    kwargs: dict[str, Any] = {"trust_remote_code": False}
    if isinstance(source, Path):
        name, kwargs["local_files_only"] = str(source), True
    else:
        name, kwargs["revision"] = split_revision(source)
    tokenizer = AutoTokenizer.from_pretrained(name, **kwargs)
    if options.attn_implementation is not None:
        kwargs["attn_implementation"] = options.attn_implementation
    model: PreTrainedModel = AutoModelForCausalLM.from_pretrained(name, dtype=dtype, **kwargs)
    # transformers' typing of `to`/`eval` (decorated nn.Module methods) is incomplete.
    module: Any = model
    module.to(device)
    module.eval()
    max_len = _max_model_len(model, options.max_model_len)
    eos = _eos_token_ids(model, tokenizer)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(eos, default=0)
    log.info("loaded %s on %s (%s), context %d tokens", name, device, model.dtype, max_len)
    return LoadedModel(model, tokenizer, device, max_len, eos, int(pad))


def _max_model_len(model: PreTrainedModel, requested: int | None) -> int:
    config = model.config.get_text_config()
    native = next((int(v) for k in _CONTEXT_KEYS if isinstance(v := getattr(config, k, None), int)), None)
    if requested is None:
        return native or DEFAULT_CONTEXT
    if native is not None and requested > native:
        raise ValueError(f"max_model_len={requested} exceeds the model's context length of {native} tokens")
    return requested


def _eos_token_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> frozenset[int]:
    """Every id that ends a generation: the tokenizer's and the generation config's (often a list)."""
    ids: set[int] = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    configured = model.generation_config.eos_token_id if model.generation_config is not None else None
    if isinstance(configured, int):
        ids.add(configured)
    elif isinstance(configured, list):
        ids.update(int(token) for token in configured)
    return frozenset(ids)
