"""The parts of the engine-server path that the `transformers serve` tests cannot reach: vLLM's
Prometheus series and its per-chunk usage (`continuous_usage_stats`), preset commands, and the
trimming of upstream error messages."""

from __future__ import annotations

import httpx
import pytest

from gpucloud.engines.protocol import EngineError
from gpucloud.engines.server.metrics import parse_prometheus
from gpucloud.engines.server.presets import PRESETS, render
from gpucloud.engines.server.stream import UsageStream, upstream_error

VLLM_METRICS = """\
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 3.0
vllm:num_requests_running{engine="1",model_name="m"} 2.0
vllm:num_requests_waiting{engine="0",model_name="m"} 7.0
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.25
vllm:kv_cache_usage_perc{engine="1",model_name="m"} 0.5
vllm:gpu_cache_usage_perc{model_name="a b"} 0.125
vllm:prompt_tokens_total{model_name="m"} 12345.0
"""


def test_engine_server_reads_vllm_metrics() -> None:
    load = parse_prometheus(VLLM_METRICS, PRESETS["vllm"].metrics)
    assert load == {"running_requests": 5.0, "waiting_requests": 7.0, "kv_cache_usage": 0.5}


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


def test_engine_server_preset_commands_bind_loopback() -> None:
    values = {"model": "m x", "source": "/models/m", "host": "127.0.0.1", "port": "8001", "python": "py"}
    argv = render(PRESETS["vllm"].command, values)
    assert argv[:3] == ["vllm", "serve", "/models/m"]
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    assert argv[argv.index("--served-model-name") + 1] == "m x"  # one argument, not two
    for preset in PRESETS.values():
        assert "{host}" in preset.command
