"""One benchmark request over httpx, timed as vLLM's benchmark times it.

Streamed: TTFT is the time to the first chunk that carries text; every later chunk with text adds
one inter-token latency (the gap since the previous one). Output tokens are the server's
`usage.completion_tokens` (asked for with `stream_options.include_usage`), else the number of chunks
with text. Not streamed: only the end-to-end latency and the usage are measured.

A failure is recorded, never raised: its `status` is the HTTP status, `stream_error` for an error
event after a 200, `timeout` or `connect_error`, so the summary can count errors by status.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from gpucloud.bench.workload import BenchRequest


@dataclass(slots=True)
class RequestResult:
    ok: bool = False
    status: str = ""
    error: str = ""
    latency_s: float = 0.0
    ttft_s: float | None = None
    itl_s: list[float] = field(default_factory=list)
    prompt_tokens: int | None = None
    output_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Target:
    """Where and how to send: `endpoint` is `chat` or `completions`."""

    base_url: str
    model: str
    endpoint: str = "chat"
    stream: bool = False

    def url(self) -> str:
        path = "chat/completions" if self.endpoint == "chat" else "completions"
        return f"{self.base_url.rstrip('/')}/{path}"

    def body(self, request: BenchRequest) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "max_tokens": request.max_tokens}
        if self.endpoint == "chat":
            body["messages"] = request.messages
        else:
            body["prompt"] = request.prompt
        if self.stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body


async def send(client: httpx.AsyncClient, target: Target, request: BenchRequest) -> RequestResult:
    result = RequestResult()
    start = time.perf_counter()
    try:
        if target.stream:
            await _streamed(client, target, request, result, start)
        else:
            await _whole(client, target, request, result)
    except httpx.TimeoutException:
        result.ok, result.status, result.error = False, "timeout", "the request timed out"
    except httpx.TransportError as exc:
        result.ok, result.status, result.error = False, "connect_error", type(exc).__name__
    result.latency_s = time.perf_counter() - start
    return result


async def _whole(
    client: httpx.AsyncClient, target: Target, request: BenchRequest, result: RequestResult
) -> None:
    response = await client.post(target.url(), json=target.body(request))
    result.status = str(response.status_code)
    if response.status_code != 200:
        result.error = _message(response.content)
        return
    _usage(orjson.loads(response.content).get("usage"), result)
    result.ok = True


async def _streamed(
    client: httpx.AsyncClient, target: Target, request: BenchRequest, result: RequestResult, start: float
) -> None:
    async with client.stream("POST", target.url(), json=target.body(request)) as response:
        result.status = str(response.status_code)
        if response.status_code != 200:
            result.error = _message(await response.aread())
            return
        chunks, last = 0, start
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                break
            event = orjson.loads(data)
            if "error" in event:
                result.status, result.error = "stream_error", str(event["error"].get("message", ""))
                return
            now = time.perf_counter()
            if _text(event):
                chunks += 1
                if result.ttft_s is None:
                    result.ttft_s = now - start
                else:
                    result.itl_s.append(now - last)
                last = now
            _usage(event.get("usage"), result)
    result.output_tokens = result.output_tokens or chunks
    result.ok = True


def _text(event: dict[str, Any]) -> str:
    choices = event.get("choices") or []
    if not choices:
        return ""
    choice = choices[0]
    delta = choice.get("delta")
    text = delta.get("content") if isinstance(delta, dict) else choice.get("text")
    return text if isinstance(text, str) else ""


def _usage(usage: object, result: RequestResult) -> None:
    if isinstance(usage, dict):
        result.prompt_tokens = usage.get("prompt_tokens")
        result.output_tokens = int(usage.get("completion_tokens") or 0)


def _message(content: bytes) -> str:
    try:
        return str(orjson.loads(content)["error"]["message"])[:300]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return content[:300].decode("utf-8", "replace")
