"""Structured outputs by grammar-constrained decoding, with llguidance.

Why llguidance: it compiles a JSON schema to a grammar in milliseconds, computes the mask of
allowed tokens for the next step in microseconds from the tokenizer's own vocabulary (no
precomputed per-schema tables, so a new schema costs nothing up front), supports the JSON-schema
features OpenAI's strict mode uses (`$ref`/`$defs`, `anyOf`, enums, consts, bounds), ships as a
self-contained wheel on PyPI (a Rust core, no compiler at install time) and is maintained by the
Guidance team and used by llama.cpp and vLLM. xgrammar is comparable but ties itself to specific
torch builds.

`Grammars` (one per loaded model) wraps the tokenizer once (about a second, so lazily, at the
first structured request). Each structured sequence gets its own `Constraint`: before sampling,
`restrict` sets the logits of every token the grammar forbids to -inf (in the sequence's own row
of the batch); after, `advance` feeds it the chosen token. When the document is complete the
grammar allows only the end-of-sequence token, so the answer ends there, parsed and valid.
"""

from __future__ import annotations

import threading
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from gpucloud.engines.protocol import EngineError, GenerationRequest


# One layout, no free whitespace: a model cannot spend its tokens on blanks between values.
_LAYOUT: Any = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}


class Constraint:
    """One sequence's grammar state."""

    def __init__(self, matcher: Any) -> None:
        self._matcher = matcher

    def restrict(self, row: torch.Tensor) -> torch.Tensor:
        """`row` (float32, CPU) with the forbidden tokens' logits at -inf."""
        allowed = torch.frombuffer(bytearray(self._matcher.compute_logit_bias()), dtype=torch.uint8)
        size = min(allowed.shape[0], row.shape[0])
        out = torch.full_like(row, float("-inf"))
        keep = allowed[:size].bool()
        out[:size][keep] = row[:size][keep]
        return out

    def advance(self, token: int) -> None:
        if not self._matcher.consume_token(token):
            raise EngineError(f"structured output: the grammar refused a token ({self._matcher.get_error()})")


class Grammars:
    """Makes `Constraint`s for one model's tokenizer (see module docstring)."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, vocab_size: int, eos_ids: frozenset[int]) -> None:
        self._tokenizer = tokenizer
        self._vocab_size = vocab_size
        self._eos_ids = sorted(eos_ids)
        self._lock = threading.Lock()
        self._wrapped: Any = None

    def constraint(self, request: GenerationRequest) -> Constraint | None:
        """The request's constraint (None without a JSON response format); EngineError with code
        "invalid_request" for a schema the grammar compiler refuses."""
        kind = (request.response_format or {}).get("type")
        if kind not in ("json_object", "json_schema"):
            return None
        import llguidance

        schema = request.json_schema() if kind == "json_schema" else {"type": "object"}
        try:
            grammar = llguidance.LLMatcher.grammar_from_json_schema(
                schema or {"type": "object"}, overrides=_LAYOUT
            )
        except ValueError as exc:
            raise EngineError(f"The JSON schema cannot be used: {exc}", code="invalid_request") from None
        matcher = llguidance.LLMatcher(self._llguidance_tokenizer(), grammar, log_level=0)
        if matcher.is_error():
            message = matcher.get_error()
            raise EngineError(f"The JSON schema cannot be used: {message}", code="invalid_request")
        return Constraint(matcher)

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
            return self._wrapped
