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
    """The series, grouped by concern: HTTP, jobs (per-process), cluster and GPU gauges (leader only)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._series: dict[tuple[int, tuple[str, ...]], Any] = {}
        self._http_series()
        self._job_series()
        self._cluster_gauges()
        self._gpu_gauges()

    def _counter(self, name: str, text: str, labels: list[str]) -> Counter:
        return Counter(name, text, labels, registry=self.registry)

    def _histogram(self, name: str, text: str, labels: list[str], buckets: tuple[float, ...]) -> Histogram:
        return Histogram(name, text, labels, buckets=buckets, registry=self.registry)

    def _gauge(self, name: str, text: str, labels: list[str]) -> Gauge:
        return Gauge(name, text, labels, registry=self.registry)

    def _http_series(self) -> None:
        """Per process: what the gateway answered, and the refusals before a worker saw a request."""
        self.http_requests = self._counter(
            "gpucloud_http_requests",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
        )
        self.http_seconds = self._histogram(
            "gpucloud_http_request_duration_seconds",
            "Time to the end of the response body, by route.",
            ["route"],
            _LATENCY_BUCKETS,
        )
        self.inference_requests = self._counter(
            "gpucloud_inference_requests",
            "Inference requests by model, endpoint, streaming and HTTP status.",
            ["model", "endpoint", "stream", "status"],
        )
        self.rejections = self._counter(
            "gpucloud_rejections", "Requests refused before they reached a worker, by reason.", ["reason"]
        )
        self.write_batch = self._histogram(
            "gpucloud_db_write_batch_operations",
            "Operations committed together by the group-commit writer, per transaction",
            [],
            (1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
        )

    def _job_series(self) -> None:
        """Per process: the latencies and outcomes of the jobs this process's finalizer applied."""
        model = ["model"]
        self.queue_wait = self._histogram(
            "gpucloud_queue_wait_seconds",
            "Time from submission to the start of the accepted attempt.",
            model,
            _LATENCY_BUCKETS,
        )
        self.ttft = self._histogram(
            "gpucloud_time_to_first_token_seconds",
            "Time from submission to the first token.",
            model,
            _LATENCY_BUCKETS,
        )
        self.itl = self._histogram(
            "gpucloud_inter_token_latency_seconds",
            "Mean time between tokens of a job, one sample per job.",
            model,
            _TOKEN_BUCKETS,
        )
        self.job_seconds = self._histogram(
            "gpucloud_job_duration_seconds",
            "Time from submission to the end of a job.",
            ["model", "status"],
            _LATENCY_BUCKETS,
        )
        self._job_counters()

    def _job_counters(self) -> None:
        self.tokens = self._counter(
            "gpucloud_tokens", "Tokens billed, by model and kind (prompt or completion).", ["model", "kind"]
        )
        self.job_outcomes = self._counter(
            "gpucloud_job_outcomes",
            "Jobs ended, by model and how (completed, cancelled, failed, expired, dead, interrupted).",
            ["model", "status"],
        )
        self.job_retries = self._counter(
            "gpucloud_job_retries",
            "Attempts after the first (a reclaimed or replayed job started again).",
            ["model"],
        )
        self.outcomes_rejected = self._counter(
            "gpucloud_outcomes_rejected",
            "Outcomes refused by the attempt fence (a stale or duplicate attempt).",
            ["status"],
        )

    def _cluster_gauges(self) -> None:
        """Cluster-wide, exported by the metrics leader only (see the module's docstring)."""
        self.queue_depth = self._gauge(
            "gpucloud_queue_depth",
            "Jobs waiting per model and priority (exported by the metrics leader).",
            ["model", "priority"],
        )
        self.workers = self._gauge(
            "gpucloud_workers",
            "Workers by state: live (announced on the queue now), and healthy, unhealthy, offline "
            "as registered with the control plane (exported by the metrics leader).",
            ["state"],
        )
        self.worker_slots = self._gauge(
            "gpucloud_worker_slots", "Job slots per live worker (exported by the metrics leader).", ["worker"]
        )
        self.worker_running = self._gauge(
            "gpucloud_worker_running_jobs",
            "Jobs running per live worker (exported by the metrics leader).",
            ["worker"],
        )
        self.replica_running = self._gauge(
            "gpucloud_replica_running_requests",
            "Jobs running per replica (a model on a worker), as announced (exported by the metrics leader).",
            ["worker", "model"],
        )
        self.model_workers = self._gauge(
            "gpucloud_model_workers",
            "Live workers serving each model (exported by the metrics leader).",
            ["model"],
        )
        self.deployment_replicas = self._gauge(
            "gpucloud_deployment_replicas",
            "Replicas of each deployment by state (exported by the metrics leader).",
            ["deployment", "state"],
        )

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
            return self._gauge(name, f"{text} (from heartbeats; metrics leader).", ["worker", "gpu"])

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
