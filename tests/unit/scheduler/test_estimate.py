"""Memory estimates (scheduler/estimate.py): parameter counts from a Hugging Face config and the GPU
memory a model needs per dtype."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from gpucloud.scheduler import estimate_from_config, estimate_gpu_memory_gb, estimate_parameters

# --- memory estimates --------------------------------------------------------------------------

LLAMA_2_7B = {
    "architectures": ["LlamaForCausalLM"],
    "hidden_act": "silu",
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 32,
    "tie_word_embeddings": False,
    "vocab_size": 32000,
}
MISTRAL_7B = {**LLAMA_2_7B, "intermediate_size": 14336, "num_key_value_heads": 8}
MIXTRAL_8X7B = {**MISTRAL_7B, "num_local_experts": 8}


@pytest.mark.parametrize(
    ("config", "parameters"),
    [
        # The published parameter counts of these checkpoints.
        (LLAMA_2_7B, 6_738_415_616),
        (MISTRAL_7B, 7_241_732_096),
        (MIXTRAL_8X7B, 46_702_792_704),
        ({k: v for k, v in LLAMA_2_7B.items() if k != "num_key_value_heads"}, 6_738_415_616),
        ({**LLAMA_2_7B, "tie_word_embeddings": True}, 6_738_415_616 - 32000 * 4096),
        # Without a gated activation the MLP has two matrices.
        ({**LLAMA_2_7B, "hidden_act": "relu"}, 6_738_415_616 - 32 * 4096 * 11008),
    ],
)
def test_parameters_from_config(config: Mapping[str, object], parameters: int) -> None:
    assert estimate_parameters(config) == parameters


def test_llama_2_7b_needs_about_13_5_gb_in_fp16() -> None:
    assert estimate_from_config(LLAMA_2_7B, "float16", overhead=1.0) == pytest.approx(13.48, abs=0.01)
    assert estimate_from_config(LLAMA_2_7B, "float16") == pytest.approx(13.48 * 1.2, abs=0.02)
    assert estimate_from_config(LLAMA_2_7B, "int4", overhead=1.0) == pytest.approx(3.37, abs=0.01)


@pytest.mark.parametrize(
    ("billions", "dtype", "overhead", "gb"),
    [
        (7, "float32", 1.0, 28.0),
        (7, "float16", 1.0, 14.0),
        (7, "BF16", 1.0, 14.0),
        (7, "bfloat16", 1.2, 16.8),
        (70, "int8", 1.0, 70.0),
        (70, "fp8", 1.2, 84.0),
        (70, "int4", 1.0, 35.0),
        (0, "float16", 1.2, 0.0),
    ],
)
def test_estimate_gpu_memory(billions: float, dtype: str, overhead: float, gb: float) -> None:
    assert estimate_gpu_memory_gb(billions, dtype, overhead) == pytest.approx(gb)


def test_estimates_reject_what_they_cannot_price() -> None:
    with pytest.raises(ValueError, match="unknown dtype 'int3'"):
        estimate_gpu_memory_gb(7, "int3")
    with pytest.raises(ValueError, match="overhead"):
        estimate_gpu_memory_gb(7, "float16", overhead=0.5)
    with pytest.raises(ValueError, match="lacks num_hidden_layers"):
        estimate_from_config({"hidden_size": 8, "vocab_size": 8, "num_attention_heads": 1}, "float16")
