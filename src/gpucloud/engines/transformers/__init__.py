"""The in-process `transformers` engine: a Hugging Face causal LM behind the `Engine` protocol.

Modules, one concept each: `options` (string options → typed), `loading` (model, tokenizer,
device, dtype, limits), `prompts` (chat templates), `detokenizer` (token ids → whole characters),
`stops` (stop strings), `sampling` (per-sequence temperature/top-p/seed), `sequence` (one choice
in flight), `kvcache` (the padded cache of a changing batch), `batcher` (the continuous-batching
thread) and `engine` (`TransformersEngine`). Needs the `transformers` extra (torch, transformers).
"""

from gpucloud.engines.transformers.batcher import BatcherStats
from gpucloud.engines.transformers.engine import TransformersEngine
from gpucloud.engines.transformers.options import TransformersOptions, parse_options

__all__ = ["BatcherStats", "TransformersEngine", "TransformersOptions", "parse_options"]
