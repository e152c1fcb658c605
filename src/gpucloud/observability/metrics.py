"""`Metrics`: every Prometheus series gpucloud exports, on a registry of its own (no globals).

Who exports what, so that several gateway processes never export conflicting copies:

* per-process counters and histograms (HTTP requests, latencies, tokens, outcomes, rejections):
  every process exports its own; Prometheus sums them across `instance`. Job outcomes and tokens
  are counted by the finalizer that applied them, and each outcome is applied by exactly one
  finalizer, so sums are exact.
* cluster-wide gauges (queue depth, workers, their slots and running jobs, and per-GPU readings
  from the workers' heartbeats): only the process that
  holds the `metrics` leader lease (`JobQueue.lead`) exports them; the others export none of those
  series. Dashboards therefore use `max` or plain selectors on them, never `sum`.

Labels are bounded: a `model` label names a model the platform serves (`model_label`); any other
name a client sends shares the one label `other`, so no client can grow `/metrics` without bound
or put a secret into it by sending it as a model name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

OTHER_MODEL = "other"


def model_label(model: str, serves: Callable[[str], bool] | None) -> str:
    """The `model` label for a name a client sent: itself when the platform serves it, else `other`."""
    return model if serves is not None and serves(model) else OTHER_MODEL


_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_TOKEN_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self._series: dict[tuple[int, tuple[str, ...]], Any] = {}
        self.http_requests = Counter(
            "gpucloud_http_requests",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_seconds = Histogram(
            "gpucloud_http_request_duration_seconds",
            "Time to the end of the response body, by route.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.inference_requests = Counter(
            "gpucloud_inference_requests",
            "Inference requests by model, endpoint, streaming and HTTP status.",
            ["model", "endpoint", "stream", "status"],
            registry=r,
        )
        self.queue_wait = Histogram(
            "gpucloud_queue_wait_seconds",
            "Time from submission to the start of the accepted attempt.",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "gpucloud_time_to_first_token_seconds",
            "Time from submission to the first token.",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.itl = Histogram(
            "gpucloud_inter_token_latency_seconds",
            "Mean time between tokens of a job, one sample per job.",
            ["model"],
            buckets=_TOKEN_BUCKETS,
            registry=r,
        )
        self.job_seconds = Histogram(
            "gpucloud_job_duration_seconds",
            "Time from submission to the end of a job.",
            ["model", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "gpucloud_tokens",
            "Tokens billed, by model and kind (prompt or completion).",
            ["model", "kind"],
            registry=r,
        )
        self.job_outcomes = Counter(
            "gpucloud_job_outcomes",
            "Jobs ended, by model and how (completed, cancelled, failed, expired, dead, interrupted).",
            ["model", "status"],
            registry=r,
        )
        self.job_retries = Counter(
            "gpucloud_job_retries",
            "Attempts after the first (a reclaimed or replayed job started again).",
            ["model"],
            registry=r,
        )
        self.outcomes_rejected = Counter(
            "gpucloud_outcomes_rejected",
            "Outcomes refused by the attempt fence (a stale or duplicate attempt).",
            ["status"],
            registry=r,
        )
        self.write_batch = Histogram(
            "gpucloud_db_write_batch_operations",
            "Operations committed together by the group-commit writer, per transaction",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
            registry=r,
        )
        self.rejections = Counter(
            "gpucloud_rejections",
            "Requests refused before they reached a worker, by reason.",
            ["reason"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "gpucloud_queue_depth",
            "Jobs waiting per model and priority (exported by the metrics leader).",
            ["model", "priority"],
            registry=r,
        )
        self.workers = Gauge(
            "gpucloud_workers",
            "Workers by state: live (announced on the queue now), and healthy, unhealthy, offline "
            "as registered with the control plane (exported by the metrics leader).",
            ["state"],
            registry=r,
        )
        self.worker_slots = Gauge(
            "gpucloud_worker_slots",
            "Job slots per live worker (exported by the metrics leader).",
            ["worker"],
            registry=r,
        )
        self.worker_running = Gauge(
            "gpucloud_worker_running_jobs",
            "Jobs running per live worker (exported by the metrics leader).",
            ["worker"],
            registry=r,
        )
        self.replica_running = Gauge(
            "gpucloud_replica_running_requests",
            "Jobs running per replica (a model on a worker), as announced (exported by the metrics leader).",
            ["worker", "model"],
            registry=r,
        )
        self.model_workers = Gauge(
            "gpucloud_model_workers",
            "Live workers serving each model (exported by the metrics leader).",
            ["model"],
            registry=r,
        )
        self.deployment_replicas = Gauge(
            "gpucloud_deployment_replicas",
            "Replicas of each deployment by state (exported by the metrics leader).",
            ["deployment", "state"],
            registry=r,
        )
        self._gpu_gauges()

    def series(self, metric: Any, *labels: str) -> Any:
        """`metric.labels(*labels)`, remembered: prometheus-client validates and takes a lock on
        every `labels` call, and the request path makes several per request. Label values are
        bounded (routes, statuses, served models), so this cache is too."""
        key = (id(metric), labels)
        child = self._series.get(key)
        if child is None:
            child = self._series[key] = metric.labels(*labels)
        return child

    def _gpu_gauges(self) -> None:
        def gpu_gauge(name: str, text: str) -> Gauge:
            return Gauge(
                name, f"{text} (from heartbeats; metrics leader).", ["worker", "gpu"], registry=self.registry
            )

        self.gpu_memory_used = gpu_gauge("gpucloud_gpu_memory_used_bytes", "GPU memory in use, bytes")
        self.gpu_memory_total = gpu_gauge("gpucloud_gpu_memory_total_bytes", "GPU memory, bytes")
        self.gpu_utilization = gpu_gauge("gpucloud_gpu_utilization_ratio", "GPU busy share, 0..1")
        self.gpu_temperature = gpu_gauge("gpucloud_gpu_temperature_celsius", "GPU temperature, °C")
        self.gpu_power = gpu_gauge("gpucloud_gpu_power_watts", "GPU power draw, watts")

    def clear_cluster_gauges(self) -> None:
        for gauge in (
            self.queue_depth,
            self.workers,
            self.worker_slots,
            self.worker_running,
            self.model_workers,
            self.replica_running,
            self.deployment_replicas,
            self.gpu_memory_used,
            self.gpu_memory_total,
            self.gpu_utilization,
            self.gpu_temperature,
            self.gpu_power,
        ):
            gauge.clear()
