"""`SimulatedEngine`: a model without a GPU, for embedded mode, demos and load tests.

It is a complete `Engine`, not a test double: it counts prompt tokens with a real BPE tokenizer,
enforces a context length, streams real token ids decoded into whole characters, honours
`max_tokens`, `stop`, `seed`, `temperature` and `top_p`, paces its output like a GPU (time to first
token, then tokens per second) and stops promptly when cancelled.

The "model" writes English-looking prose: sentences of words drawn with Zipf-like frequencies from
a built-in word list (so "the", "and", "." and line breaks occur naturally, which makes `stop`
testable) that also holds non-ASCII words ("café", "日本語") whose tokens split multi-byte
characters. An answer ends by itself at the end of the first sentence after a random natural
length of 20–200 tokens (finish_reason "stop") unless `max_tokens` or the context ends it first
("length", after exactly that many tokens).

Embeddings (`embed`) are deterministic unit vectors of `embedding_dim` (default 256) seeded by a
hash of each text: the same text always gets the same vector and different texts nearly orthogonal
ones, with no model at all; `dimensions` shortens them (truncated and renormalised).

Fault injection for tests of the layers above (`faults`): markers in a prompt crash the process,
fail the request, fail it once, or raise an unexpected error.

Every optional OpenAI parameter is honoured, deterministically for a seeded request: tools
(`engines.structured` plans the calls and writes arguments valid for the declared parameters),
`response_format` (a document valid for the schema), logprobs (each piece's probability under the
word distribution), penalties and `logit_bias` (they reshape that distribution, see
`engines.prose`). The `lacks` option withholds some capabilities, to stand for a model without them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
from collections.abc import AsyncGenerator, Iterator, Mapping, Sequence
from typing import NamedTuple

from gpucloud.engines import vectors
from gpucloud.engines.capabilities import Capabilities
from gpucloud.engines.faults import Faults
from gpucloud.engines.pacing import Pacer
from gpucloud.engines.prose import Penalties, Vocabulary, prose
from gpucloud.engines.protocol import (
    Delta,
    EmbeddingResult,
    EngineError,
    FinishReason,
    GenerationRequest,
    TokenLogprob,
    ToolCallDelta,
)
from gpucloud.engines.simulated_options import check_non_negative, engine_kwargs
from gpucloud.engines.stops import StopScanner
from gpucloud.engines.structured import PlannedCall, plan_tool_calls, structured_answer
from gpucloud.engines.tokenizer import Tokenizer

log = logging.getLogger(__name__)


_NATURAL_LENGTH = (20, 200)
_ARGUMENT_TOKENS = 4  # tool-call arguments stream in pieces of this many tokens


def _check_numbers(**values: float) -> None:
    for name, value in values.items():
        check_non_negative(name, value)


def _check_sizes(**sizes: int) -> None:
    for name, size in sizes.items():
        if size < 1:
            raise ValueError(f"{name} must be at least 1, got {size}")


class SimulatedEngine:
    """A simulated model (see module docstring)."""

    def __init__(
        self,
        model: str,
        *,
        ttft_ms: float = 0.0,
        tokens_per_s: float = 0.0,
        max_model_tokens: int = 4096,
        tokenizer: Tokenizer | None = None,
        faults: Faults | None = None,
        natural_end: bool = True,
        embedding_dim: int = 256,
        load_s: float = 0.0,
        capabilities: Capabilities | None = None,
    ) -> None:
        _check_numbers(ttft_ms=ttft_ms, tokens_per_s=tokens_per_s, load_s=load_s)
        _check_sizes(max_model_tokens=max_model_tokens, embedding_dim=embedding_dim)
        self._capabilities = capabilities or Capabilities.everything()
        self._embedding_dim = embedding_dim
        self._load_s = load_s  # how long `start` takes: stands for loading weights
        self._model = model
        self._ttft_s = ttft_ms / 1000.0
        self._interval_s = 1.0 / tokens_per_s if tokens_per_s > 0 else 0.0
        self._max_model_tokens = max_model_tokens
        self._tokenizer = tokenizer if tokenizer is not None else Tokenizer()
        self._faults = faults or Faults()
        self._running = 0  # choices being generated now
        # False: every answer runs to its token limit (load tests, cancellation tests).
        self._natural_end = natural_end
        # The vocabulary is small and fixed, so this cache of piece -> token ids stays small.
        self._piece_tokens: dict[str, tuple[int, ...]] = {}

    @classmethod
    def from_options(cls, model: str, options: Mapping[str, str]) -> SimulatedEngine:
        """Build from string options (`--engine-option KEY=VALUE`); ValueError names a bad one."""
        kwargs = engine_kwargs(options)
        return cls(model, **kwargs)

    @property
    def model(self) -> str:
        return self._model

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    @property
    def max_model_tokens(self) -> int:
        return self._max_model_tokens

    @property
    def embedding_dimensions(self) -> int:
        return self._embedding_dim

    @property
    def shortens_embeddings(self) -> bool:
        return True

    async def start(self) -> None:
        if self._load_s:
            await asyncio.sleep(self._load_s)
        self._tokenizer.load()

    async def stop(self) -> None:
        """Nothing to release: the tokenizer is plain memory."""

    def count_prompt_tokens(self, request: GenerationRequest) -> int:
        if request.kind == "chat":
            return self._tokenizer.count_chat(request.messages or [])
        if request.kind == "embedding":
            return sum(self._tokenizer.count(text) for text in request.input or ())
        return self._tokenizer.count(request.prompt or "")

    async def embed(self, texts: Sequence[str], dimensions: int | None) -> EmbeddingResult:
        """Hash-seeded unit vectors (see the module docstring); tokens as the tokenizer counts."""
        packed = []
        for text in texts:
            rng = random.Random(hashlib.sha256(text.encode()).digest())
            values = vectors.normalised([rng.gauss(0.0, 1.0) for _ in range(self._embedding_dim)])
            packed.append(vectors.pack(vectors.shortened(values, dimensions)))
        tokens = sum(self._tokenizer.count(text) for text in texts)
        return EmbeddingResult(vectors=packed, prompt_tokens=tokens)

    async def load_metrics(self) -> dict[str, float]:
        """What the worker puts in its heartbeats, like an engine server's reading."""
        return {"running_requests": float(self._running)}

    async def generate(self, request: GenerationRequest, index: int) -> AsyncGenerator[Delta, None]:
        """Stream choice `index` of `request` (see `_stream`), counted in `load_metrics`."""
        self._running += 1
        stream = self._stream(request, index)
        try:
            async for delta in stream:
                yield delta
        finally:
            self._running -= 1
            await stream.aclose()

    async def _stream(self, request: GenerationRequest, index: int) -> AsyncGenerator[Delta, None]:
        """Stream choice `index` of `request`: tool calls, JSON (`response_format`) or prose.

        Token accounting: every delta's `tokens` is the number of tokens generated since the
        previous delta, so the deltas add up to all generated tokens. Text held back because it
        might begin a stop sequence is reported with the delta that releases it; when a stop
        sequence matches, the tokens that produced it (and any text after it in the same token)
        are counted in the final delta although their text is not emitted, as OpenAI bills them.
        """
        self._faults.inject(request)
        limit = self._completion_limit(request)
        rng = _rng_for(request, index)
        natural_length = rng.randint(*_NATURAL_LENGTH)
        if not self._natural_end:
            natural_length = limit + 1
        pacer = Pacer(self._ttft_s, self._interval_s)
        calls = plan_tool_calls(request, rng)
        if calls:
            async for delta in self._stream_calls(calls, limit, pacer):
                yield delta
            return
        structured = structured_answer(request, rng)
        if structured is not None:
            tokens, natural_length = self._text_tokens(structured), 0  # JSON ends where it ends
        else:
            tokens = self._answer_tokens(rng, self._vocabulary(request), request.top_logprobs or 0)
        async for delta in self._stream_text(request, tokens, limit, natural_length, pacer):
            yield delta

    async def _stream_text(
        self,
        request: GenerationRequest,
        tokens: Iterator[_Token],
        limit: int,
        natural_length: int,
        pacer: Pacer,
    ) -> AsyncGenerator[Delta, None]:
        decoder = self._tokenizer.incremental_decoder()
        stops = StopScanner(request.stop)
        unreported = 0
        logprobs: list[TokenLogprob] = []
        for generated, token in enumerate(tokens, start=1):
            await pacer.wait(generated - 1)
            unreported += 1
            if request.logprobs:
                logprobs.append(self._logprob(token, request.top_logprobs or 0))
            text, stopped = stops.push(decoder.feed(token.id))
            finish = _finish_reason(stopped, generated, limit, natural_length, token.sentence_end)
            if finish is not None and not stopped:
                tail, stopped = stops.push(decoder.flush())
                text += tail if stopped else tail + stops.release()
                finish = "stop" if stopped else finish
            if text or finish is not None:
                yield Delta(text=text, tokens=unreported, finish_reason=finish, logprobs=tuple(logprobs))
                unreported, logprobs = 0, []
            if finish is not None:
                return

    async def _stream_calls(
        self, calls: list[PlannedCall], limit: int, pacer: Pacer
    ) -> AsyncGenerator[Delta, None]:
        """Tool calls as OpenAI streams them: id and name first, then the arguments in pieces."""
        generated = 0
        for number, call in enumerate(calls):
            name_tokens = len(self._tokens_of(call.name))
            generated += name_tokens
            await pacer.wait(generated - 1)
            yield Delta("", name_tokens, tool_calls=(ToolCallDelta(number, "", call.id, call.name),))
            ids = self._tokenizer.encode(call.arguments)
            decoder = self._tokenizer.incremental_decoder()  # pieces never split a character
            for start in range(0, len(ids), _ARGUMENT_TOKENS):
                piece = ids[start : start + _ARGUMENT_TOKENS]
                cut = generated + len(piece) >= limit  # the token limit cuts the arguments short
                piece = piece[: max(0, limit - generated)] if cut else piece
                generated += len(piece)
                await pacer.wait(generated - 1)
                text = "".join(decoder.feed(token) for token in piece)
                if cut or start + _ARGUMENT_TOKENS >= len(ids):
                    text += decoder.flush()
                pieces = (ToolCallDelta(number, text),)
                yield Delta("", len(piece), "length" if cut else None, tool_calls=pieces)
                if cut:
                    return
        yield Delta("", 0, "tool_calls")

    def _vocabulary(self, request: GenerationRequest) -> Vocabulary:
        bias = {int(token): value for token, value in (request.logit_bias or {}).items()}
        penalties = Penalties(request.presence_penalty or 0.0, request.frequency_penalty or 0.0, bias)
        return Vocabulary(request.temperature, request.top_p, penalties, self._first_tokens)

    def _first_tokens(self, word: str) -> set[int]:
        """The first token of a word as the prose writes it (after a space, or capitalised)."""
        forms = (" " + word, word[0].upper() + word[1:])
        return {self._tokens_of(form)[0] for form in forms}

    def _logprob(self, token: _Token, top_n: int) -> TokenLogprob:
        raw = self._tokenizer.token_bytes(token.id)
        top = [(text, lp, list(text.encode())) for text, lp in token.top[:top_n]]
        return TokenLogprob(raw.decode(errors="replace"), token.logprob, list(raw), top)

    def _text_tokens(self, text: str) -> Iterator[_Token]:
        ids = self._tokenizer.encode(text)
        for position, token in enumerate(ids):
            piece = self._tokenizer.token_bytes(token).decode(errors="replace")
            yield _Token(token, position == len(ids) - 1, 0.0, [(piece, 0.0)])

    def _completion_limit(self, request: GenerationRequest) -> int:
        """Most completion tokens this request may produce; EngineError if it cannot fit."""
        prompt = self.count_prompt_tokens(request)
        where = "messages" if request.kind == "chat" else "prompt"
        context = f"This model's maximum context length is {self._max_model_tokens} tokens."
        wanted = request.max_tokens
        if wanted is None:
            if prompt >= self._max_model_tokens:
                raise EngineError(
                    f"{context} However, your {where} resulted in {prompt} tokens, which leaves no "
                    f"room for the completion. Please reduce the length of the {where}.",
                    code="context_length_exceeded",
                )
            return self._max_model_tokens - prompt
        if wanted < 1:
            raise EngineError(f"max_tokens must be at least 1, got {wanted}.", code="invalid_request")
        if prompt + wanted > self._max_model_tokens:
            raise EngineError(
                f"{context} However, you requested {prompt + wanted} tokens ({prompt} in the {where}, "
                f"{wanted} in the completion). Please reduce the length of the {where} or completion.",
                code="context_length_exceeded",
            )
        return wanted

    def _answer_tokens(self, rng: random.Random, words: Vocabulary, top_n: int) -> Iterator[_Token]:
        """Tokens of an endless answer; a piece's first token carries the piece's probability."""
        for piece in prose(rng, words, top_n):
            ids = self._tokens_of(piece.text)
            for position, token in enumerate(ids):
                last = position == len(ids) - 1
                if position == 0:
                    yield _Token(token, piece.ends_sentence and last, piece.logprob, piece.top)
                else:  # the rest of a word follows from its start
                    text = self._tokenizer.token_bytes(token).decode(errors="replace")
                    yield _Token(token, piece.ends_sentence and last, 0.0, [(text, 0.0)])

    def _tokens_of(self, piece: str) -> tuple[int, ...]:
        ids = self._piece_tokens.get(piece)
        if ids is None:
            ids = self._piece_tokens[piece] = tuple(self._tokenizer.encode(piece))
        return ids


class _Token(NamedTuple):
    id: int
    sentence_end: bool
    logprob: float
    top: list[tuple[str, float]]


def _finish_reason(
    stopped: bool, generated: int, limit: int, natural_length: int, sentence_end: bool
) -> FinishReason | None:
    if stopped:
        return "stop"
    if generated >= limit:
        return "length"
    if generated >= natural_length and sentence_end:
        return "stop"
    return None


def _rng_for(request: GenerationRequest, index: int) -> random.Random:
    """Seeded requests are reproducible per (seed, choice, prompt); `temperature: 0` is greedy, so
    the prompt alone decides the answer (every choice and seed alike); others are fresh randomness."""
    if request.temperature == 0:
        identity: list[object] = ["greedy", request.kind, request.prompt, request.messages]
    elif request.seed is None:
        return random.Random()
    else:
        identity = [request.seed, index, request.kind, request.prompt, request.messages]
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).digest()
    return random.Random(int.from_bytes(digest[:16], "big"))
