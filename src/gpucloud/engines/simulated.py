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

Fault injection for tests of the layers above: a prompt containing `crash_marker` makes the engine
kill its whole process (exit code 86) when generation starts; one containing `fail_marker` makes it
raise a non-retryable `EngineError`; one containing `flaky_marker` raises a retryable one the first
time this engine sees that prompt (as an engine server that died would), and succeeds after.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import logging
import math
import os
import random
from collections.abc import AsyncGenerator, Iterator, Mapping, Sequence
from typing import Any

from gpucloud.engines import vectors
from gpucloud.engines.protocol import Delta, EmbeddingResult, EngineError, FinishReason, GenerationRequest
from gpucloud.engines.stops import StopScanner
from gpucloud.engines.tokenizer import Tokenizer

log = logging.getLogger(__name__)

CRASH_EXIT_CODE = 86

# Most frequent first: a word's weight falls with its rank (Zipf). The non-ASCII words sit at ranks
# where a typical answer contains a few of them; 日本語, 東京, 世界 and Ελλάδα have tokens that end
# in the middle of a character.
# fmt: off
_WORDS: tuple[str, ...] = (
    "the", "and", "of", "to", "a", "in", "is", "that", "it", "for",
    "as", "with", "was", "on", "be", "by", "this", "are", "from", "at",
    "or", "an", "not", "which", "but", "café", "have", "they", "日本語", "one",
    "naïve", "all", "their", "has", "more", "résumé", "can", "東京", "about", "over",
    "Zürich", "into", "will", "世界", "other", "façade", "time", "Ελλάδα", "system", "model",
    "people", "data", "new", "first", "also", "after", "many", "each", "some", "these",
    "would", "through", "between", "world", "work", "while", "before", "where", "every", "small",
    "large", "city", "water", "river", "light", "morning", "evening", "history", "language", "music",
    "garden", "market", "window", "question", "answer", "problem", "result", "process", "number", "part",
    "simple", "careful", "quiet", "bright", "ancient", "modern", "gentle", "quick", "steady", "clear",
    "engine", "signal", "network", "machine", "memory", "token", "request", "server", "cluster", "queue",
    "travels", "builds", "writes", "reads", "finds", "keeps", "moves", "grows", "opens", "carries",
    "often", "always", "rarely", "slowly", "together", "again", "almost", "already", "perhaps", "nearly",
    "mountain", "forest", "ocean", "valley", "island", "bridge", "station", "library", "kitchen", "harbor",
    "theory", "method", "pattern", "measure", "example", "detail", "picture", "story", "reason", "idea",
    "crème", "jalapeño", "señor", "smörgåsbord", "déjà", "piñata", "fiancée", "Kraków", "São", "brûlée",
)
# fmt: on

_ZIPF_EXPONENT = 0.8  # flatter than natural English, so that text is varied
_TEMPERATURE_RANGE = (0.7, 1.5)  # temperature nudges the exponent; it never makes text degenerate
_MIN_NUCLEUS = 24  # top_p keeps at least this many words
_NATURAL_LENGTH = (20, 200)
_SENTENCE_WORDS = (4, 16)
_YIELD_EVERY = 8  # with no pacing, let other tasks (and cancellation) in this often

_OPTION_NAMES = (
    "load_s",
    "ttft_ms",
    "tokens_per_s",
    "max_model_tokens",
    "crash_marker",
    "fail_marker",
    "flaky_marker",
    "natural_end",
    "embedding_dim",
)


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
        crash_marker: str | None = None,
        fail_marker: str | None = None,
        flaky_marker: str | None = None,
        natural_end: bool = True,
        embedding_dim: int = 256,
        load_s: float = 0.0,
    ) -> None:
        if embedding_dim < 1:
            raise ValueError(f"embedding_dim must be at least 1, got {embedding_dim}")
        self._embedding_dim = embedding_dim
        _check_non_negative("load_s", load_s)
        self._load_s = load_s  # how long `start` takes: stands for loading weights
        _check_non_negative("ttft_ms", ttft_ms)
        _check_non_negative("tokens_per_s", tokens_per_s)
        if max_model_tokens < 1:
            raise ValueError(f"max_model_tokens must be at least 1, got {max_model_tokens}")
        markers = (
            ("crash_marker", crash_marker),
            ("fail_marker", fail_marker),
            ("flaky_marker", flaky_marker),
        )
        for name, marker in markers:
            if marker is not None and not marker:
                raise ValueError(f"{name} must not be empty (it would match every prompt)")
        self._model = model
        self._ttft_s = ttft_ms / 1000.0
        self._interval_s = 1.0 / tokens_per_s if tokens_per_s > 0 else 0.0
        self._max_model_tokens = max_model_tokens
        self._tokenizer = tokenizer if tokenizer is not None else Tokenizer()
        self._crash_marker = crash_marker
        self._fail_marker = fail_marker
        self._flaky_marker = flaky_marker
        self._flaked: set[str] = set()  # prompts that already failed once (flaky_marker)
        self._running = 0  # choices being generated now
        # False: every answer runs to its token limit (load tests, cancellation tests).
        self._natural_end = natural_end
        # The vocabulary is small and fixed, so this cache of piece -> token ids stays small.
        self._piece_tokens: dict[str, tuple[int, ...]] = {}

    @classmethod
    def from_options(cls, model: str, options: Mapping[str, str]) -> SimulatedEngine:
        """Build from string options (`--engine-option KEY=VALUE`); ValueError names a bad one."""
        unknown = sorted(set(options) - set(_OPTION_NAMES))
        if unknown:
            raise ValueError(
                f"unknown simulated engine option(s) {', '.join(unknown)}; "
                f"known options: {', '.join(_OPTION_NAMES)}"
            )
        kwargs: dict[str, Any] = {}
        for key in ("load_s", "ttft_ms", "tokens_per_s"):
            if key in options:
                kwargs[key] = _parse_number(key, options[key])
        for key in ("max_model_tokens", "embedding_dim"):
            if key in options:
                kwargs[key] = _parse_int(key, options[key])
        for key in ("crash_marker", "fail_marker", "flaky_marker"):
            if key in options:
                kwargs[key] = options[key]
        if "natural_end" in options:
            value = options["natural_end"].strip().lower()
            if value not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(f"natural_end must be true or false, got {options['natural_end']!r}")
            kwargs["natural_end"] = value in ("true", "1", "yes")
        return cls(model, **kwargs)

    @property
    def model(self) -> str:
        return self._model

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
        """Stream choice `index` of `request`.

        Token accounting: every delta's `tokens` is the number of tokens generated since the
        previous delta, so the deltas add up to all generated tokens. Text held back because it
        might begin a stop sequence is reported with the delta that releases it; when a stop
        sequence matches, the tokens that produced it (and any text after it in the same token)
        are counted in the final delta although their text is not emitted, as OpenAI bills them.
        """
        self._inject_faults(request)
        limit = self._completion_limit(request)
        rng = _rng_for(request, index)
        natural_length = rng.randint(*_NATURAL_LENGTH)
        if not self._natural_end:
            natural_length = limit + 1
        words = _Vocabulary(request.temperature, request.top_p)
        decoder = self._tokenizer.incremental_decoder()
        stops = StopScanner(request.stop)
        pacer = _Pacer(self._ttft_s, self._interval_s)
        unreported = 0
        for generated, (token, sentence_end) in enumerate(self._answer_tokens(rng, words), start=1):
            await pacer.wait(generated - 1)
            unreported += 1
            text, stopped = stops.push(decoder.feed(token))
            finish = _finish_reason(stopped, generated, limit, natural_length, sentence_end)
            if finish is not None and not stopped:
                tail, stopped = stops.push(decoder.flush())
                text += tail if stopped else tail + stops.release()
                finish = "stop" if stopped else finish
            if text or finish is not None:
                yield Delta(text=text, tokens=unreported, finish_reason=finish)
                unreported = 0
            if finish is not None:
                return

    def _inject_faults(self, request: GenerationRequest) -> None:
        if self._crash_marker is None and self._fail_marker is None and self._flaky_marker is None:
            return
        text = "\n".join(itertools.chain(_strings(request.prompt), _strings(request.messages)))
        if self._flaky_marker is not None and self._flaky_marker in text and text not in self._flaked:
            self._flaked.add(text)
            raise EngineError("simulated transient failure", retryable=True)
        if self._crash_marker is not None and self._crash_marker in text:
            log.critical("simulated crash: the prompt holds the crash marker; exit %d", CRASH_EXIT_CODE)
            os._exit(CRASH_EXIT_CODE)
        if self._fail_marker is not None and self._fail_marker in text:
            raise EngineError("simulated failure", retryable=False)

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

    def _answer_tokens(self, rng: random.Random, words: _Vocabulary) -> Iterator[tuple[int, bool]]:
        """Token ids of an endless answer; the flag marks the last token of a sentence."""
        for piece, ends_sentence in _prose(rng, words):
            ids = self._tokens_of(piece)
            for position, token in enumerate(ids):
                yield token, ends_sentence and position == len(ids) - 1

    def _tokens_of(self, piece: str) -> tuple[int, ...]:
        ids = self._piece_tokens.get(piece)
        if ids is None:
            ids = self._piece_tokens[piece] = tuple(self._tokenizer.encode(piece))
        return ids


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


class _Vocabulary:
    """The word distribution of one request: Zipf weights shaped by temperature and top_p."""

    def __init__(self, temperature: float | None, top_p: float | None) -> None:
        low, high = _TEMPERATURE_RANGE
        effective = min(max(1.0 if temperature is None else temperature, low), high)
        exponent = _ZIPF_EXPONENT / effective
        weights = [1.0 / (rank + 1) ** exponent for rank in range(len(_WORDS))]
        if top_p is not None and 0 < top_p < 1:
            weights = _nucleus(weights, top_p)
        self._words = _WORDS[: len(weights)]
        self._cumulative = list(itertools.accumulate(weights))

    def sentence(self, rng: random.Random) -> list[str]:
        return rng.choices(self._words, cum_weights=self._cumulative, k=rng.randint(*_SENTENCE_WORDS))


def _nucleus(weights: list[float], top_p: float) -> list[float]:
    """The most likely words whose probability adds up to `top_p` (at least `_MIN_NUCLEUS`)."""
    total = sum(weights)
    kept = 0.0
    for count, weight in enumerate(weights, start=1):
        kept += weight
        if kept / total >= top_p:
            return weights[: max(count, _MIN_NUCLEUS)]
    return weights


def _prose(rng: random.Random, words: _Vocabulary) -> Iterator[tuple[str, bool]]:
    """Endless text in pieces (a word with its leading separator, or punctuation).

    The flag is True for a piece that ends a sentence, where an answer may end naturally.
    """
    separator = ""
    while True:
        sentence = words.sentence(rng)
        for position, word in enumerate(sentence):
            if position == 0:
                word = word[0].upper() + word[1:]
            yield separator + word, False
            separator = " "
            if position < len(sentence) - 1 and rng.random() < 0.08:
                yield ",", False
        yield rng.choices((".", "?", "!"), weights=(85, 8, 7))[0], True
        roll = rng.random()
        separator = "\n\n" if roll < 0.1 else "\n" if roll < 0.15 else " "


class _Pacer:
    """Paces tokens like a GPU: token i is due `ttft + i * interval` after generation started.

    Due times are absolute (not a sleep per token) so that high rates do not drift by the cost of
    each sleep.
    """

    def __init__(self, ttft_s: float, interval_s: float) -> None:
        self._ttft_s = ttft_s
        self._interval_s = interval_s
        self._loop = asyncio.get_running_loop()
        self._started = self._loop.time()

    async def wait(self, index: int) -> None:
        delay = self._started + self._ttft_s + index * self._interval_s - self._loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        elif index % _YIELD_EVERY == 0:
            await asyncio.sleep(0)


def _rng_for(request: GenerationRequest, index: int) -> random.Random:
    """Seeded requests are reproducible per (seed, choice, prompt); others are fresh randomness."""
    if request.seed is None:
        return random.Random()
    identity = [request.seed, index, request.kind, request.prompt, request.messages]
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).digest()
    return random.Random(int.from_bytes(digest[:16], "big"))


def _strings(value: object) -> Iterator[str]:
    """Every string inside a prompt or a message list, for marker matching."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def _check_non_negative(name: str, value: float) -> None:
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


def _parse_number(key: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"engine option {key}={raw!r}: expected a number") from None


def _parse_int(key: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"engine option {key}={raw!r}: expected a whole number") from None
