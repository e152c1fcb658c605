"""The engine server's stream reading (engines/server/stream.py): vLLM's per-chunk usage
(`continuous_usage_stats`), the final usage chunk, and the trimming of upstream error messages."""

from __future__ import annotations

import httpx
import pytest

from gpucloud.engines.protocol import EngineError
from gpucloud.engines.server.stream import UsageStream, upstream_error


def test_engine_server_continuous_usage_counts_exactly() -> None:
    stream = UsageStream(continuous_usage=True)
    usage = {"prompt_tokens": 9, "completion_tokens": 0}
    first = stream.feed({"choices": [{"delta": {"role": "assistant"}}], "usage": usage})
    assert first is not None
    assert (first.text, first.tokens, first.prompt_tokens) == ("", 0, 9)
    two = stream.feed({"choices": [{"delta": {"content": "ab"}}], "usage": {**usage, "completion_tokens": 2}})
    assert two is not None
    assert (two.text, two.tokens, two.prompt_tokens) == ("ab", 2, None)
    stream.feed(
        {"choices": [{"delta": {}, "finish_reason": "length"}], "usage": {**usage, "completion_tokens": 3}}
    )
    final = stream.final()
    assert (final.tokens, final.finish_reason, final.prompt_tokens) == (0, "length", 9)


def test_engine_server_final_usage_corrects_the_chunk_count() -> None:
    stream = UsageStream(continuous_usage=False)
    for piece in ("a", "b"):
        stream.feed({"choices": [{"text": piece}]})
    stream.feed({"choices": [{"text": "", "finish_reason": "stop"}]})
    stream.feed({"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 5}})
    final = stream.final()
    assert (final.tokens, final.finish_reason, final.prompt_tokens) == (3, "stop", 4)


def test_engine_server_stream_without_finish_is_retryable() -> None:
    stream = UsageStream(continuous_usage=False)
    stream.feed({"choices": [{"text": "a"}]})
    with pytest.raises(EngineError) as caught:
        stream.final()
    assert caught.value.retryable


async def test_engine_server_upstream_errors_are_mapped_and_trimmed() -> None:
    body = {"error": {"message": "model /srv/models/llama-3/weights too long " + "x" * 500}}
    refused = await upstream_error(httpx.Response(400, json=body))
    assert refused.code == "invalid_request"
    assert not refused.retryable
    assert "/srv/models" not in str(refused)
    assert len(str(refused)) < 400
    failed = await upstream_error(httpx.Response(503, json={"detail": "overloaded"}))
    assert failed.retryable
    assert "overloaded" in str(failed)
