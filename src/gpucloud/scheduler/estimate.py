"""How much GPU memory a model needs, estimated from its size or its Hugging Face `config.json`.

Sizes are decimal gigabytes (10⁹ bytes), the unit model cards use ("13.5 GB in fp16"). The
`overhead` factor stands for what the weights alone do not count (KV cache, activations, the
CUDA context); 1.2 suits short contexts, long-context serving needs more. These are estimates to
pre-fill `DeploymentSpec.gpu_memory_gb`; an operator who knows better sets it by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

BYTES_PER_PARAM: Mapping[str, float] = {
    "float32": 4.0,
    "fp32": 4.0,
    "float16": 2.0,
    "fp16": 2.0,
    "half": 2.0,
    "bfloat16": 2.0,
    "bf16": 2.0,
    "int8": 1.0,
    "fp8": 1.0,
    "float8": 1.0,
    "int4": 0.5,
}
DEFAULT_OVERHEAD = 1.2
# Activations whose MLP is gated (LLaMA's SwiGLU, Gemma's GeGLU) when an intermediate_size is
# given: gate, up and down projections. Anything else is the classic two-matrix MLP.
_GATED_ACTIVATIONS = frozenset({"silu", "swish", "swiglu", "gelu", "gelu_pytorch_tanh", "geglu"})
_REQUIRED = ("hidden_size", "num_hidden_layers", "vocab_size", "num_attention_heads")


def bytes_per_param(dtype: str) -> float:
    try:
        return BYTES_PER_PARAM[dtype.lower()]
    except KeyError:
        known = ", ".join(sorted(BYTES_PER_PARAM))
        raise ValueError(f"unknown dtype {dtype!r}; known: {known}") from None


def estimate_gpu_memory_gb(
    parameters_billions: float, dtype: str = "float16", overhead: float = DEFAULT_OVERHEAD
) -> float:
    """Weights (billions of parameters × bytes per parameter) × overhead, in GB."""
    if parameters_billions < 0 or overhead < 1:
        raise ValueError("parameters_billions must be >= 0 and overhead >= 1")
    return parameters_billions * bytes_per_param(dtype) * overhead


def estimate_parameters(config: Mapping[str, Any]) -> int:
    """Parameter count of a decoder-only transformer from its `config.json`.

    Embeddings + per layer (attention q, k, v, o with grouped-query k/v; the MLP, times the
    experts of a Mixtral-style MoE; two norms) + the final norm + the LM head unless its weights
    are tied to the embeddings. Biases and position embeddings are left out (well under 1 %).
    """
    missing = [key for key in _REQUIRED if key not in config]
    if missing:
        raise ValueError(f"config.json lacks {', '.join(missing)}")
    hidden = int(config["hidden_size"])
    vocab = int(config["vocab_size"])
    embeddings = vocab * hidden
    per_layer = _attention_params(config) + _mlp_params(config) + 2 * hidden
    lm_head = 0 if config.get("tie_word_embeddings", False) else vocab * hidden
    return embeddings + int(config["num_hidden_layers"]) * per_layer + hidden + lm_head


def estimate_from_config(
    config: Mapping[str, Any], dtype: str = "float16", overhead: float = DEFAULT_OVERHEAD
) -> float:
    """GB to serve the model in `config` at `dtype`; pass overhead=1.0 for the weights alone."""
    return estimate_gpu_memory_gb(estimate_parameters(config) / 1e9, dtype, overhead)


def _attention_params(config: Mapping[str, Any]) -> int:
    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    kv_heads = int(config.get("num_key_value_heads") or heads)
    head_dim = int(config.get("head_dim") or hidden // heads)
    query_and_out = 2 * hidden * heads * head_dim
    key_and_value = 2 * hidden * kv_heads * head_dim
    return query_and_out + key_and_value


def _mlp_params(config: Mapping[str, Any]) -> int:
    hidden = int(config["hidden_size"])
    intermediate = config.get("intermediate_size")
    activation = str(config.get("hidden_act", "")).lower()
    matrices = 3 if intermediate and activation in _GATED_ACTIVATIONS else 2
    width = int(intermediate or 4 * hidden)
    experts = int(config.get("num_local_experts") or 1)
    router = hidden * experts if experts > 1 else 0
    return experts * matrices * hidden * width + router
