"""The OpenAI-compatible answers (`/v1`): models, completions, embeddings and jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from gpucloud.gateway.views.base import JobStatus, Priority, View

# OpenAI's fields that are always null here are typed as OpenAI types them (`str | None`, …), not as
# `None`: the dashboard's client (openapi-fetch) drops null-only fields from response types.


class ModelCard(View):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(View):
    object: Literal["list"]
    data: list[ModelCard]


class CompletionUsage(View):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class CalledFunction(View):
    name: str
    arguments: str = Field(description="JSON text of the arguments")


class ToolCallView(View):
    id: str
    type: Literal["function"]
    function: CalledFunction


class AssistantMessage(View):
    role: Literal["assistant"]
    content: str | None = Field(description="null when the answer is tool calls only")
    refusal: str | None = Field(description="always null here")
    tool_calls: list[ToolCallView] | None = None


class ChatChoice(View):
    index: int
    message: AssistantMessage
    logprobs: dict[str, Any] | None = Field(description="with `logprobs: true`: {content, refusal}")
    finish_reason: str


class ChatCompletion(View):
    """A non-streamed chat completion (`stream: true` answers `text/event-stream` chunks instead)."""

    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChatChoice]
    usage: CompletionUsage


class TextChoice(View):
    index: int
    text: str
    logprobs: dict[str, Any] | None = Field(description="with `logprobs`: tokens and their logprobs")
    finish_reason: str


class TextCompletion(View):
    """A non-streamed text completion (`stream: true` answers `text/event-stream` chunks instead)."""

    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    choices: list[TextChoice]
    usage: CompletionUsage


class Embedding(View):
    object: Literal["embedding"]
    index: int
    embedding: list[float] | str = Field(description="floats, or base64 little-endian float32")


class EmbeddingUsage(View):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(View):
    object: Literal["list"]
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage


class JobError(View):
    message: str
    code: str | None


class JobView(View):
    """A job (`routes.jobs.job_view`); `queue_position`/`estimated_wait_s` while queued and `result`
    once completed are filled on single-job answers only."""

    id: str
    object: Literal["job"]
    endpoint: Literal["chat.completions", "completions", "embeddings"]
    model: str
    status: JobStatus
    priority: Priority
    stream: bool
    attempts: int
    key_id: str
    worker_id: str | None
    request_id: str | None
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    queue_position: int | None
    estimated_wait_s: float | None
    error: JobError | None
    result: ChatCompletion | TextCompletion | EmbeddingList | None


class JobList(View):
    object: Literal["list"]
    data: list[JobView]
