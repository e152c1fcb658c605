"""Structured outputs by grammar-constrained decoding, with llguidance.

Why llguidance: it compiles a JSON schema to a grammar in milliseconds, computes the mask of
allowed tokens for the next step in microseconds from the tokenizer's own vocabulary (no
precomputed per-schema tables, so a new schema costs nothing up front), supports the JSON-schema
features OpenAI's strict mode uses (`$ref`/`$defs`, `anyOf`, enums, consts, bounds), ships as a
self-contained wheel on PyPI (a Rust core, no compiler at install time) and is maintained by the
Guidance team and used by llama.cpp and vLLM. xgrammar is comparable but ties itself to specific
torch builds.

`Grammars` (one per loaded model) wraps the tokenizer once (about a second, so lazily, at the
first structured request). Each structured sequence gets its own `Constraint`. While a step's
forward pass runs, `compute_masks` works out on another thread which tokens each constrained row's
grammar allows next (all rows at once, in parallel, without the GIL), so the masks cost little
more than the forward pass alone; before sampling, `apply_masks` sets every forbidden token's
logit to -inf; after, `advance` feeds each grammar its sequence's chosen token. When the
document is complete the grammar allows only the end-of-sequence token, so the answer ends there,
parsed and valid.
"""

from __future__ import annotations

import threading
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from gpucloud.engines.protocol import EngineError, GenerationRequest
from gpucloud.engines.transformers.tools import tool_grammar, uses_tools

# One layout, no free whitespace: a model cannot spend its tokens on blanks between values.
_LAYOUT: Any = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}


class Constraint:
    """One sequence's grammar state."""

    def __init__(self, matcher: Any, executor: Any, vocab: int) -> None:
        self.matcher = matcher
        self.executor = executor  # the model's, shared: computes a batch's masks in parallel
        self.vocab = vocab  # tokens the grammar knows of (the tokenizer's vocabulary)

    def advance(self, token: int) -> None:
        if not self.matcher.consume_token(token):
            raise EngineError(f"structured output: the grammar refused a token ({self.matcher.get_error()})")


Constrained = list[tuple[int, Constraint]]  # (row of the batch, its sequence's constraint)


def compute_masks(constrained: Constrained) -> torch.Tensor:
    """The allowed next tokens of every constrained row, as bitmasks (32 tokens per int32), in one
    call that runs the rows in parallel and without the GIL. It reads only the grammars' states, so
    the batcher runs it on a thread of its own while the forward pass computes the logits."""
    count, words = len(constrained), (constrained[0][1].vocab + 31) // 32
    bitmask = torch.full((count, words), -1, dtype=torch.int32)
    targets = [(c.matcher, k) for k, (_, c) in enumerate(constrained)]
    constrained[0][1].executor.unsafe_compute_mask_ptr(targets, bitmask.data_ptr(), words * 4, count)
    return bitmask


def apply_masks(rows: torch.Tensor, constrained: Constrained, bitmask: torch.Tensor) -> None:
    """Set the forbidden tokens' logits to -inf in the constrained rows of a batch (in place); a
    logit past the grammar's vocabulary (an embedding matrix padded beyond the tokenizer) is
    forbidden too."""
    count, vocab = len(constrained), rows.shape[1]
    bits = (bitmask.unsqueeze(-1) >> torch.arange(32, dtype=torch.int32)) & 1
    allowed = bits.reshape(count, -1)[:, :vocab].bool()
    if allowed.shape[1] < vocab:
        allowed = torch.nn.functional.pad(allowed, (0, vocab - allowed.shape[1]), value=False)
    index = torch.tensor([row for row, _ in constrained], dtype=torch.long)
    rows[index] = rows[index].masked_fill(~allowed, float("-inf"))


class Grammars:
    """Makes `Constraint`s for one model's tokenizer (see module docstring)."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, vocab_size: int, eos_ids: frozenset[int]) -> None:
        self._tokenizer = tokenizer
        self._vocab_size = vocab_size
        self._eos_ids = sorted(eos_ids)
        self._lock = threading.Lock()
        self._wrapped: Any = None
        self._executor: Any = None

    def constraint(self, request: GenerationRequest) -> Constraint | None:
        """The request's constraint (None without tools to call or a JSON response format);
        EngineError with code "invalid_request" for a schema the grammar compiler refuses."""
        kind = (request.response_format or {}).get("type")
        structured = kind in ("json_object", "json_schema")
        if not structured and not uses_tools(request):
            return None
        import llguidance

        schema = (
            (request.json_schema() if kind == "json_schema" else {"type": "object"}) if structured else None
        )
        try:
            if uses_tools(request):
                grammar = llguidance.LLMatcher.grammar_from_lark(tool_grammar(request, schema))
            else:
                grammar = llguidance.LLMatcher.grammar_from_json_schema(schema or {}, overrides=_LAYOUT)
        except ValueError as exc:
            raise EngineError(f"The JSON schema cannot be used: {exc}", code="invalid_request") from None
        matcher = llguidance.LLMatcher(self._llguidance_tokenizer(), grammar, log_level=0)
        if matcher.is_error():
            message = matcher.get_error()
            raise EngineError(f"The JSON schema cannot be used: {message}", code="invalid_request")
        return Constraint(matcher, self._executor, self._vocab_size)

    def _llguidance_tokenizer(self) -> Any:
        with self._lock:  # built once, by whichever request comes first
            if self._wrapped is None:
                import llguidance.hf

                tokenizer: Any = self._tokenizer  # llguidance needs a fast (Rust) tokenizer
                try:
                    self._wrapped = llguidance.hf.from_tokenizer(
                        tokenizer, n_vocab=self._vocab_size, eos_token=self._eos_ids or None
                    )
                except ValueError as exc:
                    raise EngineError(f"structured output is unavailable for this model: {exc}") from None
                self._executor = llguidance.LLExecutor()
            return self._wrapped
