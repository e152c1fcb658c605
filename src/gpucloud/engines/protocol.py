"""The `Engine` protocol: one model's inference, independent of queues, keys and HTTP.

An engine turns a `GenerationRequest` into a stream of `Delta`s for one choice. The worker calls
`generate` once per choice (`n` of them), so an engine never has to know about `n`. Token counts
come from the engine's own tokenizer so that what is billed is what the model saw.

Embedding models implement `EmbeddingEngine` as well (a request of kind "embedding" carries its
texts in `input`); the worker runs such a job with one `embed` call instead of `generate`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import msgspec

from gpucloud.engines.capabilities import Capabilities

RequestKind = Literal["chat", "completion", "embedding"]
FinishReason = Literal["stop", "length", "tool_calls"]


class GenerationRequest(msgspec.Struct, frozen=True, omit_defaults=True):
    """What a model is asked to do; the OpenAI request after validation, engine-neutral.

    The gateway builds it from a validated body (the one validation, at the edge); it travels in
    `JobMessage.request` as is, and the worker decodes it typed (`gpucloud.queue.codec`) without
    checking it again. Parameters left at their default are not encoded, so a plain payload stays
    small.
    """

    kind: RequestKind
    model: str
    messages: list[dict[str, Any]] | None = None  # chat: [{"role": ..., "content": ...}]
    prompt: str | None = None  # completion
    input: list[str] | None = None  # embedding: the texts; extra["dimensions"] may shorten vectors
    max_tokens: int | None = None  # None: until the engine's own limit
    stop: tuple[str, ...] = ()
    n: int = 1
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    user: str | None = None
    extra: dict[str, Any] = msgspec.field(default_factory=dict)
    # Tool calling: OpenAI's `tools` list, `tool_choice` ("none"/"auto"/"required" or
    # {"type": "function", "function": {"name": ...}}) and `parallel_tool_calls`.
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = None  # {"type": "json_object"} or a json_schema one
    logprobs: bool = False
    top_logprobs: int | None = None  # alternatives per token (completions: its `logprobs` number)
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, float] | None = None  # token id (as a string) → bias in -100..100

    def json_schema(self) -> dict[str, Any] | None:
        """The JSON schema the answer must validate against (`response_format` json_schema)."""
        fmt = self.response_format or {}
        if fmt.get("type") != "json_schema":
            return None
        schema = (fmt.get("json_schema") or {}).get("schema")
        return schema if isinstance(schema, dict) else {"type": "object"}


class ToolCallDelta(msgspec.Struct, frozen=True):
    """A piece of one tool call in a choice: the first piece of call `index` carries its `id` and
    `name`, later ones only more of the JSON `arguments` text."""

    index: int
    arguments: str = ""
    id: str | None = None
    name: str | None = None


class TokenLogprob(msgspec.Struct, frozen=True):
    """One generated token's log probability and the most likely alternatives at its position."""

    token: str
    logprob: float
    bytes: list[int]
    top: list[tuple[str, float, list[int]]] = msgspec.field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Delta:
    """A piece of one choice's output.

    `text` is always whole characters (never half of a multi-byte sequence); `tokens` is how many
    completion tokens it carries. The last delta of a choice has `finish_reason` set (its text may
    be empty).
    """

    text: str
    tokens: int
    finish_reason: FinishReason | None = None
    # The prompt as the model's own server counted it (an engine server's reported usage), when
    # the engine learns it while generating; the worker bills it instead of `count_prompt_tokens`.
    prompt_tokens: int | None = None
    tool_calls: tuple[ToolCallDelta, ...] = ()
    logprobs: tuple[TokenLogprob, ...] = ()  # one per generated token, when the request asked


class EngineError(Exception):
    """An engine could not serve a request; `retryable` says whether another attempt may help.

    `code` names the kind of failure where the client should see it (e.g. "invalid_request": the
    model refused the request itself, a client error); None is a plain engine failure.
    """

    def __init__(self, message: str, *, retryable: bool = False, code: str | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.code = code


@runtime_checkable
class Engine(Protocol):
    """One loaded model. Implementations: simulated (this package), later transformers and servers."""

    @property
    def model(self) -> str:
        """The model id clients use."""
        ...

    @property
    def capabilities(self) -> Capabilities:
        """The optional request parameters this engine honours (the gateway refuses the rest)."""
        ...

    async def start(self) -> None:
        """Load the model; returns when it can serve."""
        ...

    async def stop(self) -> None:
        """Release the model's resources."""
        ...

    def count_prompt_tokens(self, request: GenerationRequest) -> int:
        """Prompt tokens as the model's tokenizer counts them (chat: with the chat framing)."""
        ...

    def generate(self, request: GenerationRequest, index: int) -> AsyncIterator[Delta]:
        """Stream choice number `index` of `request`.

        Cancellation is by closing the iterator (`aclose`) or cancelling the task consuming it;
        an engine must stop its work promptly when that happens.
        """
        ...


@dataclass(frozen=True, slots=True)
class EmbeddingResult:
    """What `EmbeddingEngine.embed` returns: one vector per text, and the tokens they cost.

    `vectors` are little-endian float32 bytes (4 × dimension bytes each): the exact values the
    model produced, compact on the queue and in the stored result, and what the OpenAI API's
    `encoding_format="base64"` returns as is.
    """

    vectors: list[bytes]
    prompt_tokens: int


@runtime_checkable
class EmbeddingEngine(Protocol):
    """An engine that embeds texts (besides, or instead of, generating)."""

    @property
    def embedding_dimensions(self) -> int:
        """The length of the vectors the model makes."""
        ...

    @property
    def shortens_embeddings(self) -> bool:
        """Whether `dimensions` may ask for shorter vectors (models trained for truncation)."""
        ...

    async def embed(self, texts: Sequence[str], dimensions: int | None) -> EmbeddingResult:
        """Embed `texts` (normalised vectors); with `dimensions`, truncated and renormalised."""
        ...
