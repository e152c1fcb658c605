"""Reading an engine server's Prometheus exposition (engines/server/metrics.py)."""

from __future__ import annotations

from gpucloud.engines.server.metrics import parse_prometheus
from gpucloud.engines.server.presets import PRESETS

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
