"""OpenAI response bodies and SSE chunks for chat and text completions.

Bytes are produced with orjson; a chunk is `data: <json>\n\n`, the stream ends with
`data: [DONE]\n\n`, and an error after the stream began is `data: {"error": …}\n\n` (docs/architecture.md §5).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from gpucloud.errors import GpucloudError
from gpucloud.gateway.errors import envelope, status_of
from gpucloud.gateway.inference import Inference, Submitted, error_of, events_until_end
from gpucloud.gateway.middleware import RequestFacts
from gpucloud.queue.protocol import EventKind, JobEvent

DONE = b"data: [DONE]\n\n"


class JobMeta(Protocol):
    """What a response body needs to know of its job (a live `Submitted` or a stored row)."""

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
    choices: list[dict[str, Any]] = []
    for choice in sorted(final.get("choices", []), key=lambda c: int(c["index"])):
        if job.kind == "chat":
            message = {"role": "assistant", "content": choice["text"], "refusal": None}
            choices.append(
                {
                    "index": choice["index"],
                    "message": message,
                    "logprobs": None,
                    "finish_reason": choice.get("finish_reason") or "stop",
                }
            )
        else:
            choices.append(
                {
                    "index": choice["index"],
                    "text": choice["text"],
                    "logprobs": None,
                    "finish_reason": choice.get("finish_reason") or "stop",
                }
            )
    return {
        "id": response_id(job),
        "object": "chat.completion" if job.kind == "chat" else "text_completion",
        "created": job.created,
        "model": job.model,
        "choices": choices,
        "usage": usage_of(final),
        "system_fingerprint": None,
    }


class ChunkWriter:
    """Turns a job's events into SSE bytes for one client."""

    def __init__(self, job: JobMeta, include_usage: bool) -> None:
        self._job = job
        self._include_usage = include_usage
        self._id = response_id(job)
        self._object = "chat.completion.chunk" if job.kind == "chat" else "text_completion"
        self._attempt: int | None = None  # deltas are relayed from one attempt only

    def _chunk(self, choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> bytes:
        body: dict[str, Any] = {
            "id": self._id,
            "object": self._object,
            "created": self._job.created,
            "model": self._job.model,
            "choices": choices,
            "system_fingerprint": None,
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

    def delta(self, event: JobEvent) -> bytes:
        if self._attempt is None:
            self._attempt = event.attempt
        elif event.attempt != self._attempt:
            return b""  # a stale attempt that woke up late: the client follows the first one
        data = event.data
        index, text, finish = int(data["index"]), str(data.get("text", "")), data.get("finish_reason")
        out = b""
        if text:
            if self._job.kind == "chat":
                choice = {"index": index, "delta": {"content": text}, "logprobs": None, "finish_reason": None}
            else:
                choice = {"index": index, "text": text, "logprobs": None, "finish_reason": None}
            out += self._chunk([choice])
        if finish:
            if self._job.kind == "chat":
                choice = {"index": index, "delta": {}, "logprobs": None, "finish_reason": finish}
            else:
                choice = {"index": index, "text": "", "logprobs": None, "finish_reason": finish}
            out += self._chunk([choice])
        return out

    def closing(self, final: dict[str, Any]) -> bytes:
        out = self._chunk([], usage_of(final)) if self._include_usage else b""
        return out + DONE


def error_chunk(exc: Exception) -> bytes:
    if isinstance(exc, GpucloudError):
        body = envelope(exc.message, exc.error_type, param=exc.param, code=exc.code)
        body["error"]["status"] = status_of(exc)
    else:
        body = envelope("The server had an error while streaming the response.", "server_error")
    return b"data: " + orjson.dumps(body) + b"\n\n"


async def sse(
    inference: Inference,
    job: Submitted,
    first: JobEvent,
    include_usage: bool,
    facts: RequestFacts | None = None,
) -> AsyncIterator[bytes]:
    """The SSE body; if it is closed before the end (client gone), the job is cancelled."""
    writer = ChunkWriter(job, include_usage)
    finished = False
    try:
        yield writer.opening()
        async for batch in events_until_end(inference, job, first):
            out = b""
            for event in batch:
                if event.kind is EventKind.STARTED:
                    job.started_at = job.started_at or time.time()
                elif event.kind is EventKind.DELTA:
                    out += writer.delta(event)
                elif event.kind is EventKind.FINAL:
                    out += writer.closing(event.data)
                    if facts is not None:
                        facts.prompt_tokens = event.data.get("prompt_tokens")
                        facts.completion_tokens = event.data.get("completion_tokens")
                    finished = True
                elif event.kind is EventKind.ERROR:
                    out += error_chunk(error_of(event))
                    finished = True
            if out:
                yield out
    except GpucloudError as exc:  # timed out mid-stream
        finished = True
        yield error_chunk(exc)
    finally:
        job.watch.close()
        if not finished:
            await inference.cancel(job)


def replay_sse(job: JobMeta, final: dict[str, Any], include_usage: bool) -> bytes:
    """A whole stream for a job that already ended (an idempotent repeat of a streamed request)."""
    writer = ChunkWriter(job, include_usage)
    out = writer.opening()
    for choice in sorted(final.get("choices", []), key=lambda c: int(c["index"])):
        data = {
            "index": choice["index"],
            "text": choice["text"],
            "finish_reason": choice.get("finish_reason"),
        }
        out += writer.delta(JobEvent(job.job_id, EventKind.DELTA, 0, data))
    return out + writer.closing(final)
