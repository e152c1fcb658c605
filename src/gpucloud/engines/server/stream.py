"""Reading an engine server's streamed answer: SSE chunks in, `Delta`s out, usage accounted.

`UsageStream` turns the chunks of one `stream=true` request (chat or text completion) into
deltas. Token counts follow the server's own usage report (`stream_options.include_usage`):
- with usage on every chunk (vLLM's `continuous_usage_stats`) each delta carries exactly the
  tokens the server counted since the last one, and the first one carries the prompt's tokens;
- otherwise each chunk with text counts one token (servers send one chunk per generated token,
  fewer where a token ends mid-character), and the final delta adds the difference to the
  reported total, so the deltas add up to what the server billed.
A request cancelled midway has counted the tokens it received. The final delta carries the
finish reason and the reported prompt tokens (`Delta.prompt_tokens`).

`upstream_error` maps an HTTP error answer: 4xx (but 408/429) is the request's fault, not
retryable, 400/413/422 with code "invalid_request" (a 400 for the client); 5xx, 408 and 429 are
retryable. Messages are trimmed and stripped of filesystem paths before anyone sees them.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx

from gpucloud.engines.protocol import (
    Delta,
    EngineError,
    FinishReason,
    GenerationRequest,
    TokenLogprob,
    ToolCallDelta,
)

log = logging.getLogger(__name__)

_MESSAGE_CHARS = 300
_PATH = re.compile(r"(?:/[\w.@+-]+){2,}/?")
_CLIENT_FAULTS = frozenset({400, 413, 422})
_RETRYABLE_4XX = frozenset({408, 429})


async def sse_chunks(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """The JSON objects of an SSE body, up to `[DONE]` or the end of the body."""
    async for line in response.aiter_lines():
        if not line.startswith("data:"):
            continue  # blank separators, comments, `event:` lines
        data = line[5:].strip()
        if data == "[DONE]":
            return
        try:
            chunk = json.loads(data)
        except ValueError:
            raise EngineError("the engine server sent a malformed event", retryable=True) from None
        if isinstance(chunk, dict):
            yield chunk


class UsageStream:
    """The accounting of one streamed request (see module docstring)."""

    def __init__(self, continuous_usage: bool) -> None:
        self._continuous = continuous_usage
        self._counted = 0
        self._prompt_sent = False
        self.usage: dict[str, Any] | None = None
        self.finish: str | None = None

    def feed(self, chunk: dict[str, Any]) -> Delta | None:
        """The delta of one chunk, or None when it carries nothing to pass on."""
        if "error" in chunk:
            raise EngineError(f"The model server failed mid-stream: {_clean(_message_of(chunk))}")
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.usage = usage
        text, calls, logprobs = "", [], []
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta")
            piece = delta.get("content") if isinstance(delta, dict) else choice.get("text")
            text += piece or ""
            if isinstance(delta, dict):
                calls += [tool_call_piece(c) for c in delta.get("tool_calls") or []]
            logprobs += logprobs_of(choice.get("logprobs"))
            if choice.get("finish_reason"):
                self.finish = str(choice["finish_reason"])
        tokens = self._tokens_of(text or bool(calls))
        prompt = self._early_prompt()
        if not text and not calls and not logprobs and not tokens and prompt is None:
            return None
        return Delta(text, tokens, prompt_tokens=prompt, tool_calls=tuple(calls), logprobs=tuple(logprobs))

    def _tokens_of(self, produced: str | bool) -> int:
        if self._continuous and self.usage is not None:
            tokens = max(0, int(self.usage.get("completion_tokens") or 0) - self._counted)
        else:
            tokens = 1 if produced else 0
        self._counted += tokens
        return tokens

    def _early_prompt(self) -> int | None:
        """The prompt's tokens, once, as soon as a continuous usage report gives them."""
        if self._prompt_sent or not self._continuous or self.usage is None:
            return None
        self._prompt_sent = True
        return int(self.usage.get("prompt_tokens") or 0)

    def final(self) -> Delta:
        """The last delta (finish reason, the rest of the reported tokens, the prompt's tokens)."""
        if self.finish is None:
            raise EngineError("the engine server ended the stream before the answer finished", retryable=True)
        extra = 0
        prompt: int | None = None
        if self.usage is not None:
            extra = int(self.usage.get("completion_tokens") or 0) - self._counted
            prompt = int(self.usage.get("prompt_tokens") or 0)
            if extra < 0:  # more text chunks than tokens: keep what was counted, say so
                log.warning("engine server reported %d fewer tokens than chunks received", -extra)
                extra = 0
        reason: FinishReason = "stop"
        if self.finish in ("length", "tool_calls"):
            reason = "length" if self.finish == "length" else "tool_calls"
        return Delta(text="", tokens=extra, finish_reason=reason, prompt_tokens=prompt)


def passed_through(request: GenerationRequest) -> dict[str, Any]:
    """The request's optional parameters in the server's (OpenAI's) request shape."""
    body: dict[str, Any] = {}
    for name in (
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "user",
    ):
        value = getattr(request, name)
        if value is not None:
            body[name] = value
    if request.logprobs and request.kind == "chat":
        body["logprobs"] = True
        if request.top_logprobs:
            body["top_logprobs"] = request.top_logprobs
    elif request.logprobs:  # completions: the number of alternatives is the `logprobs` value
        body["logprobs"] = request.top_logprobs or 0
    return body


def tool_call_piece(data: dict[str, Any]) -> ToolCallDelta:
    function = data.get("function") or {}
    return ToolCallDelta(
        index=int(data.get("index") or 0),
        arguments=str(function.get("arguments") or ""),
        id=data.get("id") or None,
        name=function.get("name") or None,
    )


def logprobs_of(data: object) -> list[TokenLogprob]:
    """Chat's `{"content": [...]}` or completions' parallel lists, as `TokenLogprob`s."""
    if not isinstance(data, dict):
        return []
    if isinstance(data.get("content"), list):
        return [
            TokenLogprob(
                str(item["token"]),
                float(item["logprob"]),
                list(item.get("bytes") or str(item["token"]).encode()),
                [
                    (str(t["token"]), float(t["logprob"]), list(t.get("bytes") or []))
                    for t in item.get("top_logprobs") or []
                ],
            )
            for item in data["content"]
        ]
    tokens, values = data.get("tokens") or [], data.get("token_logprobs") or []
    tops = data.get("top_logprobs") or [None] * len(tokens)
    return [
        TokenLogprob(
            str(t),
            float(v or 0.0),
            list(str(t).encode()),
            [(k, float(x), list(k.encode())) for k, x in (top or {}).items()],
        )
        for t, v, top in zip(tokens, values, tops, strict=False)
    ]


async def upstream_error(response: httpx.Response) -> EngineError:
    """The EngineError for an HTTP error answer (see module docstring)."""
    body = (await response.aread())[:4096].decode(errors="replace")
    try:
        message = _message_of(json.loads(body))
    except ValueError:
        message = body
    message = _clean(message) or response.reason_phrase
    status = response.status_code
    if 400 <= status < 500 and status not in _RETRYABLE_4XX:
        code = "invalid_request" if status in _CLIENT_FAULTS else None
        return EngineError(f"The model server refused the request: {message}", code=code)
    return EngineError(f"The model server failed ({status}): {message}", retryable=True)


def _message_of(data: object) -> str:
    """The message of OpenAI-style (`error.message`), FastAPI-style (`detail`) and bare bodies."""
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):
            return str(error.get("message") or error)
        if error is not None:
            return str(error)
        if "detail" in data:
            return str(data["detail"])
        if "message" in data:
            return str(data["message"])
    return str(data)


def _clean(message: str) -> str:
    """One line, no filesystem paths (a server may name its model directory), bounded length."""
    text = _PATH.sub("<path>", " ".join(message.split()))
    return text if len(text) <= _MESSAGE_CHARS else text[: _MESSAGE_CHARS - 1] + "…"
