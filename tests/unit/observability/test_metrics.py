"""The Prometheus series (observability/metrics.py): bounded model labels, a registry per instance,
remembered label children, and cluster gauges that clear together."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from gpucloud.observability.metrics import OTHER_MODEL, Metrics, model_label


def test_unserved_model_names_share_one_label() -> None:
    served = {"llama"}.__contains__
    assert model_label("llama", served) == "llama"
    assert model_label("sk-secret-as-model", served) == OTHER_MODEL
    assert model_label("llama", None) == OTHER_MODEL


def test_each_instance_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first.http_requests.labels("/v1/models", "GET", "200").inc()
    assert b'route="/v1/models"' in generate_latest(first.registry)
    assert b'route="/v1/models"' not in generate_latest(second.registry)
    registry = CollectorRegistry()
    assert Metrics(registry).registry is registry


def test_series_are_remembered_per_metric_and_labels() -> None:
    metrics = Metrics()
    child = metrics.series(metrics.http_requests, "/r", "GET", "200")
    assert metrics.series(metrics.http_requests, "/r", "GET", "200") is child
    assert metrics.series(metrics.http_requests, "/r", "GET", "500") is not child
    child.inc(3)
    assert (
        metrics.registry.get_sample_value(
            "gpucloud_http_requests_total", {"route": "/r", "method": "GET", "status": "200"}
        )
        == 3
    )


def test_cluster_gauges_clear_together_and_counters_stay() -> None:
    metrics = Metrics()
    metrics.workers.labels(state="live").set(2)
    metrics.gpu_memory_used.labels(worker="w", gpu="0").set(10)
    metrics.queue_depth.labels(model="m", priority="interactive").set(4)
    metrics.http_requests.labels("/r", "GET", "200").inc()
    metrics.clear_cluster_gauges()
    text = generate_latest(metrics.registry).decode()
    assert "gpucloud_workers{" not in text
    assert "gpucloud_gpu_memory_used_bytes{" not in text
    assert "gpucloud_queue_depth{" not in text
    assert 'gpucloud_http_requests_total{method="GET",route="/r",status="200"} 1.0' in text
