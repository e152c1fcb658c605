"""OpenAI response bodies and SSE chunks for chat and text completions: pure rendering.

Bytes are produced with orjson; a chunk is `data: <json>\n\n`, the stream ends with
`data: [DONE]\n\n`, and an error after the stream began is `data: {"error": …}\n\n` (docs/architecture.md §5).
`StreamWriter` is what any API's stream renderer offers (`ChunkWriter` here, the Responses API's
`ResponseStream`); waiting for the events it renders is `gateway.stream.ClientJob`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import msgspec
import orjson

from gpucloud.errors import GpucloudError
from gpucloud.gateway.errors import envelope, status_of
from gpucloud.queue.protocol import DeltaEvent

DONE = b"data: [DONE]\n\n"


class JobMeta(Protocol):
    """What a response body needs to know of its job (a live `ClientJob` or a stored row)."""

    @property
    def job_id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def created(self) -> int: ...
    @property
    def n(self) -> int: ...


@dataclass(frozen=True, slots=True)
class StoredJob:
    job_id: str
    kind: str
    model: str
    created: int
    n: int


def response_id(job: JobMeta) -> str:
    stem = job.job_id.removeprefix("job_")
    return f"chatcmpl-{stem}" if job.kind == "chat" else f"cmpl-{stem}"


def usage_of(data: dict[str, Any]) -> dict[str, int]:
    prompt, completion = int(data.get("prompt_tokens", 0)), int(data.get("completion_tokens", 0))
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def completion_body(job: JobMeta, final: dict[str, Any]) -> dict[str, Any]:
    choices = [
        _chat_choice(c) if job.kind == "chat" else _text_choice(c)
        for c in sorted(final.get("choices", []), key=lambda c: int(c["index"]))
    ]
    # No `system_fingerprint`: OpenAI types it as a string, and there is no backend fingerprint.
    return {
        "id": response_id(job),
        "object": "chat.completion" if job.kind == "chat" else "text_completion",
        "created": job.created,
        "model": job.model,
        "choices": choices,
        "usage": usage_of(final),
    }


def _chat_choice(choice: dict[str, Any]) -> dict[str, Any]:
    calls = choice.get("tool_calls") or []
    message: dict[str, Any] = {
        "role": "assistant",
        "content": None if calls and not choice["text"] else choice["text"],
        "refusal": None,
    }
    if calls:
        message["tool_calls"] = [
            {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
            for c in calls
        ]
    return {
        "index": choice["index"],
        "message": message,
        "logprobs": chat_logprobs(choice.get("logprobs")),
        "finish_reason": choice.get("finish_reason") or "stop",
    }


def _text_choice(choice: dict[str, Any]) -> dict[str, Any]:
    return {
        "index": choice["index"],
        "text": choice["text"],
        "logprobs": text_logprobs(choice.get("logprobs"), 0),
        "finish_reason": choice.get("finish_reason") or "stop",
    }


def chat_logprobs(items: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    """Chat's `logprobs`: `{"content": [{token, logprob, bytes, top_logprobs}], "refusal": null}`."""
    if not items:
        return None
    return {"content": logprob_entries(items), "refusal": None}


def logprob_entries(items: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Tokens as `{token, logprob, bytes, top_logprobs}`: chat's shape, and the Responses API's
    `output_text.logprobs`."""
    return [
        {
            "token": item["token"],
            "logprob": item["logprob"],
            "bytes": item["bytes"],
            "top_logprobs": [{"token": t, "logprob": lp, "bytes": b} for t, lp, b in item.get("top") or []],
        }
        for item in items or []
    ]


def text_logprobs(items: list[dict[str, Any]] | None, offset: int) -> dict[str, Any] | None:
    """The completions API's parallel lists; `offset` is where the first token's text begins."""
    if not items:
        return None
    offsets = []
    for item in items:
        offsets.append(offset)
        offset += len(item["token"])
    return {
        "tokens": [item["token"] for item in items],
        "token_logprobs": [item["logprob"] for item in items],
        "top_logprobs": [{t: lp for t, lp, _ in item.get("top") or []} for item in items],
        "text_offset": offsets,
    }


def tool_call_chunks(pieces: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Streamed tool-call pieces in OpenAI's form: the first of a call has id, type and name."""
    out = []
    for piece in pieces:
        function: dict[str, Any] = {"arguments": piece.get("arguments") or ""}
        entry: dict[str, Any] = {"index": piece["index"], "function": function}
        if piece.get("id"):
            entry["id"], entry["type"] = piece["id"], "function"
            function["name"] = piece.get("name")
        out.append(entry)
    return out


class ChunkWriter:
    """Turns a job's events into SSE bytes for one client."""

    def __init__(self, job: JobMeta, include_usage: bool) -> None:
        self._job = job
        self._include_usage = include_usage
        self._id = response_id(job)
        self._object = "chat.completion.chunk" if job.kind == "chat" else "text_completion"
        self._attempt: int | None = None  # deltas are relayed from one attempt only
        self._offsets: dict[int, int] = {}  # completions' text_offset, per choice

    def _chunk(self, choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> bytes:
        body: dict[str, Any] = {
            "id": self._id,
            "object": self._object,
            "created": self._job.created,
            "model": self._job.model,
            "choices": choices,
        }
        if self._include_usage:
            body["usage"] = usage
        return b"data: " + orjson.dumps(body) + b"\n\n"

    def opening(self) -> bytes:
        if self._job.kind != "chat":
            return b""
        return b"".join(
            self._chunk(
                [
                    {
                        "index": i,
                        "delta": {"role": "assistant", "content": ""},
                        "logprobs": None,
                        "finish_reason": None,
                    }
                ]
            )
            for i in range(self._job.n)
        )

    def delta(self, event: DeltaEvent) -> bytes:
        if self._attempt is None:
            self._attempt = event.attempt
        elif event.attempt != self._attempt:
            return b""  # a stale attempt that woke up late: the client follows the first one
        index, finish = event.index, event.finish_reason
        out = b""
        if event.text or event.tool_calls or event.logprobs:
            out += self._chunk([self._piece(event)])
        if finish:
            if self._job.kind == "chat":
                choice = {"index": index, "delta": {}, "logprobs": None, "finish_reason": finish}
            else:
                choice = {"index": index, "text": "", "logprobs": None, "finish_reason": finish}
            out += self._chunk([choice])
        return out

    def _piece(self, event: DeltaEvent) -> dict[str, Any]:
        index, text = event.index, event.text
        # Tool calls and log probabilities are rare: rendered from their plain form, as stored ones.
        items = msgspec.to_builtins(event.logprobs) if event.logprobs else None
        if self._job.kind == "chat":
            delta: dict[str, Any] = {"content": text} if text else {}
            if event.tool_calls:
                delta["tool_calls"] = tool_call_chunks(msgspec.to_builtins(event.tool_calls))
            logprobs = chat_logprobs(items)
            return {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": None}
        offset = self._offsets.get(index, 0)
        self._offsets[index] = offset + len(text)
        logprobs = text_logprobs(items, offset)
        return {"index": index, "text": text, "logprobs": logprobs, "finish_reason": None}

    def closing(self, final: dict[str, Any]) -> bytes:
        out = self._chunk([], usage_of(final)) if self._include_usage else b""
        return out + DONE

    def error(self, exc: Exception) -> bytes:
        return error_chunk(exc)


def error_chunk(exc: Exception) -> bytes:
    if isinstance(exc, GpucloudError):
        body = envelope(exc.message, exc.error_type, param=exc.param, code=exc.code)
        body["error"]["status"] = status_of(exc)
    else:
        body = envelope("The server had an error while streaming the response.", "server_error")
    return b"data: " + orjson.dumps(body) + b"\n\n"


class StreamWriter(Protocol):
    """What turns a job's events into one API's SSE bytes (chat/completions chunks, or the
    Responses API's typed events)."""

    def opening(self) -> bytes: ...
    def delta(self, event: DeltaEvent) -> bytes: ...
    def closing(self, final: dict[str, Any]) -> bytes: ...
    def error(self, exc: Exception) -> bytes: ...


def replay(writer: StreamWriter, job_id: str, final: dict[str, Any]) -> bytes:
    """A whole stream for a job that already ended (an idempotent repeat of a streamed request):
    each choice as one delta, its tool calls each in one piece."""
    out = writer.opening()
    for choice in sorted(final.get("choices", []), key=lambda c: int(c["index"])):
        out += writer.delta(replayed_delta(job_id, choice))
    return out + writer.closing(final)


def replayed_delta(job_id: str, choice: dict[str, Any]) -> DeltaEvent:
    """A stored choice as one delta of a replayed stream (its tool calls each in one piece)."""
    pieces = replayed_calls(choice.get("tool_calls"))
    return msgspec.convert({**choice, "tool_calls": pieces, "job_id": job_id, "attempt": 0}, DeltaEvent)


def replayed_calls(calls: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Whole stored tool calls as the stream's pieces (each in one piece)."""
    return [{"index": i, **call} for i, call in enumerate(calls or [])]
