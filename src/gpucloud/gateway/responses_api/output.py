"""The Responses API's answers: the `response` object, and its stream of typed events.

A chat-shaped result (the worker's choice: text, tool calls, finish reason) becomes `output`
items: a `message` with one `output_text` part, and/or `function_call` items. A stream is
`event: <type>` / `data: <json>` pairs, each with a `sequence_number`: `response.created`,
`response.in_progress`, then per item `response.output_item.added`, its content
(`response.content_part.added`, `response.output_text.delta`…`.done`, `response.content_part.done`;
or `response.function_call_arguments.delta`…`.done`) and `response.output_item.done`, and last
`response.completed` (or `response.incomplete` when the token limit cut the answer).

With `include: ["message.output_text.logprobs"]` the text's tokens come with their logprobs: in
`output_text.logprobs` (`{token, logprob, bytes, top_logprobs}`, as chat's) and, streamed, on each
text delta and its `.done` event (the events' `{token, logprob, top_logprobs}` shape, no bytes).
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson

from gpucloud.engines.protocol import ToolCallDelta
from gpucloud.errors import GpucloudError
from gpucloud.gateway import noops
from gpucloud.gateway.formats import logprob_entries
from gpucloud.gateway.responses_api.schemas import ResponsesRequest
from gpucloud.queue.protocol import DeltaEvent


def echoed(body: ResponsesRequest) -> dict[str, Any]:
    """The request's settings as a response object repeats them."""
    fmt = body.text.format if body.text is not None and body.text.format is not None else None
    choice = body.tool_choice
    return {
        "instructions": body.instructions,
        "max_output_tokens": body.max_output_tokens,
        "parallel_tool_calls": body.parallel_tool_calls is not False,
        "previous_response_id": None,
        "store": False,
        "temperature": body.temperature if body.temperature is not None else 1.0,
        "top_p": body.top_p if body.top_p is not None else 1.0,
        "text": {"format": fmt.model_dump(by_alias=True, exclude_none=True) if fmt else {"type": "text"}},
        "tool_choice": choice.model_dump()
        if choice is not None and not isinstance(choice, str)
        else (choice or "auto"),
        "tools": [
            tool.model_dump(exclude_none=True) | {"strict": bool(tool.strict)} for tool in body.tools or []
        ],
        "truncation": "disabled",
        "metadata": {},
        "error": None,
    } | _named(body)


def _named(body: ResponsesRequest) -> dict[str, Any]:
    """What the request named that the response repeats; typed as strings, so absent, not null."""
    named = {
        "user": body.user,
        "safety_identifier": body.safety_identifier,
        "prompt_cache_key": body.prompt_cache_key,
        "service_tier": noops.SERVED_TIER if body.service_tier is not None else None,
    }
    return {key: value for key, value in named.items() if value is not None}


def usage(final: dict[str, Any]) -> dict[str, Any]:
    prompt, completion = int(final.get("prompt_tokens", 0)), int(final.get("completion_tokens", 0))
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": prompt + completion,
    }


def response_object(
    stem: str, created: int, model: str, echo: dict[str, Any], final: dict[str, Any] | None
) -> dict[str, Any]:
    """The response; without `final` it is the in-progress shell a stream opens with."""
    body: dict[str, Any] = {
        "id": f"resp_{stem}",
        "object": "response",
        "created_at": created,
        "model": model,
        "status": "in_progress",
        "incomplete_details": None,
        "output": [],
        **echo,
    }  # `usage` only once known: the specification types it as an object
    if final is not None:
        choice = (final.get("choices") or [{}])[0]
        cut = choice.get("finish_reason") == "length"
        body["status"] = "incomplete" if cut else "completed"
        body["incomplete_details"] = {"reason": "max_output_tokens"} if cut else None
        body["output"] = output_items(stem, choice)
        body["usage"] = usage(final)
    return body


def output_items(stem: str, choice: dict[str, Any]) -> list[dict[str, Any]]:
    items = []
    if choice.get("text") or not choice.get("tool_calls"):
        logprobs = logprob_entries(choice.get("logprobs"))
        items.append(message_item(stem, choice.get("text") or "", "completed", logprobs))
    for i, call in enumerate(choice.get("tool_calls") or []):
        items.append(call_item(stem, i, call, call["arguments"], "completed"))
    return items


def message_item(
    stem: str, text: str | None, status: str, logprobs: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    content = [] if text is None else [text_part(text, logprobs)]
    return {"type": "message", "id": f"msg_{stem}", "status": status, "role": "assistant", "content": content}


def text_part(text: str, logprobs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": logprobs or []}


def event_logprobs(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`output_text.logprobs` entries in the stream events' shape (the specification gives the
    text delta and done events tokens without their bytes)."""
    return [
        {
            "token": entry["token"],
            "logprob": entry["logprob"],
            "top_logprobs": [
                {"token": top["token"], "logprob": top["logprob"]} for top in entry["top_logprobs"]
            ],
        }
        for entry in entries
    ]


def call_item(stem: str, index: int, call: dict[str, Any], arguments: str, status: str) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": f"fc_{stem}_{index}",
        "call_id": call["id"],
        "name": call["name"],
        "arguments": arguments,
        "status": status,
    }


class ResponseStream:
    """Turns a job's events into the Responses API's typed SSE events for one client."""

    def __init__(self, stem: str, created: int, model: str, echo: dict[str, Any]) -> None:
        self._stem, self._created, self._model, self._echo = stem, created, model, echo
        self._sequence = 0
        self._attempt: int | None = None  # deltas are relayed from one attempt only
        self._index = -1  # output index of the open item
        self._text: str | None = None  # the open message's text so far
        self._logprobs: list[dict[str, Any]] = []  # the open message's token logprobs so far
        self._unsent = 0  # how many of those no text delta carried yet (a token without text)
        # Items completed so far: a streamed job's FINAL carries no text, so the closing response
        # lists what the deltas brought.
        self._output: list[dict[str, Any]] = []
        self._call: dict[str, Any] | None = None  # the open function call

    def _event(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"

    def opening(self) -> bytes:
        shell = response_object(self._stem, self._created, self._model, self._echo, None)
        return self._event("response.created", response=shell) + self._event(
            "response.in_progress", response=shell
        )

    def delta(self, event: DeltaEvent) -> bytes:
        if self._attempt is None:
            self._attempt = event.attempt
        elif event.attempt != self._attempt or event.index != 0:
            return b""  # a stale attempt that woke up late, or a choice beyond the first
        out = b""
        text = event.text
        if event.logprobs:
            self._logprobs += logprob_entries(msgspec.to_builtins(event.logprobs))
            self._unsent += len(event.logprobs)
        if text:
            out += self._open_message()
            fresh = self._logprobs[len(self._logprobs) - self._unsent :] if self._unsent else []
            self._unsent = 0
            out += self._event(
                "response.output_text.delta", **self._where(), delta=text, logprobs=event_logprobs(fresh)
            )
            self._text = (self._text or "") + text
        for piece in event.tool_calls:
            out += self._call_piece(piece)
        return out

    def _where(self) -> dict[str, Any]:
        return {"item_id": f"msg_{self._stem}", "output_index": self._index, "content_index": 0}

    def _open_message(self) -> bytes:
        if self._text is not None:
            return b""
        out = self._close()
        self._index += 1
        self._text = ""
        item = message_item(self._stem, None, "in_progress")
        out += self._event("response.output_item.added", output_index=self._index, item=item)
        return out + self._event("response.content_part.added", **self._where(), part=text_part(""))

    def _call_piece(self, piece: ToolCallDelta) -> bytes:
        out = b""
        if piece.id:  # a new call begins
            out += self._close()
            self._index += 1
            self._call = {"id": piece.id, "name": piece.name, "number": piece.index, "arguments": ""}
            item = call_item(self._stem, piece.index, self._call, "", "in_progress")
            out += self._event("response.output_item.added", output_index=self._index, item=item)
        if self._call is not None and piece.arguments:
            self._call["arguments"] += piece.arguments
            item_id = f"fc_{self._stem}_{self._call['number']}"
            out += self._event(
                "response.function_call_arguments.delta",
                item_id=item_id,
                output_index=self._index,
                delta=piece.arguments,
            )
        return out

    def _close(self) -> bytes:
        """The done events of the open item, if any."""
        out = b""
        if self._text is not None:
            where, text, logprobs = self._where(), self._text, self._logprobs
            out += self._event(
                "response.output_text.done", **where, text=text, logprobs=event_logprobs(logprobs)
            )
            out += self._event("response.content_part.done", **where, part=text_part(text, logprobs))
            item = message_item(self._stem, text, "completed", logprobs)
            out += self._event("response.output_item.done", output_index=self._index, item=item)
            self._output.append(item)
            self._text, self._logprobs, self._unsent = None, [], 0
        if self._call is not None:
            call, arguments = self._call, self._call["arguments"]
            item = call_item(self._stem, call["number"], call, arguments, "completed")
            out += self._event(
                "response.function_call_arguments.done",
                item_id=item["id"],
                output_index=self._index,
                name=call["name"],
                arguments=arguments,
            )
            out += self._event("response.output_item.done", output_index=self._index, item=item)
            self._output.append(item)
            self._call = None
        return out

    def closing(self, final: dict[str, Any]) -> bytes:
        # Nothing streamed: an empty answer is still one message.
        out = self._open_message() if self._index < 0 else b""
        out += self._close()
        body = response_object(self._stem, self._created, self._model, self._echo, final)
        body["output"] = self._output
        kind = "response.incomplete" if body["status"] == "incomplete" else "response.completed"
        return out + self._event(kind, response=body)

    def error(self, exc: Exception) -> bytes:
        if isinstance(exc, GpucloudError):
            return self._event("error", code=exc.code, message=exc.message, param=exc.param)
        return self._event("error", code="server_error", message="The server had an error.", param=None)
