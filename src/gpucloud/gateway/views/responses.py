"""The Responses API's answer (`POST /v1/responses`): the `response` object."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from gpucloud.gateway.views.base import View


class OutputText(View):
    type: Literal["output_text"]
    text: str
    annotations: list[Any]
    logprobs: list[Any]


class MessageOutput(View):
    type: Literal["message"]
    id: str
    status: Literal["in_progress", "completed", "incomplete"]
    role: Literal["assistant"]
    content: list[OutputText]


class FunctionCallOutput(View):
    type: Literal["function_call"]
    id: str
    call_id: str
    name: str
    arguments: str = Field(description="JSON text of the arguments")
    status: Literal["in_progress", "completed", "incomplete"]


class ResponseUsage(View):
    input_tokens: int
    input_tokens_details: dict[str, int]
    output_tokens: int
    output_tokens_details: dict[str, int]
    total_tokens: int


class IncompleteDetails(View):
    reason: Literal["max_output_tokens"]


class ResponseObject(View):
    """A response (`stream: true` answers typed `text/event-stream` events instead)."""

    id: str
    object: Literal["response"]
    created_at: int
    model: str
    status: Literal["in_progress", "completed", "incomplete"]
    incomplete_details: IncompleteDetails | None
    output: list[MessageOutput | FunctionCallOutput]
    usage: ResponseUsage | None = Field(None, description="absent until the answer is complete")
    instructions: str | None
    max_output_tokens: int | None
    parallel_tool_calls: bool
    previous_response_id: str | None = Field(description="always null here (responses are not stored)")
    store: bool = Field(description="always false here")
    temperature: float
    top_p: float
    text: dict[str, Any]
    tool_choice: str | dict[str, Any]
    tools: list[dict[str, Any]]
    truncation: Literal["disabled"]
    metadata: dict[str, str]
    error: dict[str, Any] | None
    user: str | None = None
