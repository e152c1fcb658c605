"""`Seen`: an applied outcome is counted once in the metrics (retries, rejections and repeats
apart from endings), its queue wait, TTFT and inter-token latency derived from its times, and
logged as one lifecycle line."""

from __future__ import annotations

import logging

import pytest

from gpucloud.jobs.seen import Seen
from gpucloud.observability.metrics import Metrics
from gpucloud.queue.protocol import Outcome, OutcomeStatus


def _outcome(status: OutcomeStatus = OutcomeStatus.COMPLETED, **fields: object) -> Outcome:
    values: dict[str, object] = {"worker_id": "w1", "prompt_tokens": 3, "completion_tokens": 5, "at": 110.0}
    return Outcome("job_1", 2, status, "gw", "m", **(values | fields))  # type: ignore[arg-type]


def _value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_an_ending_counts_outcome_tokens_and_derived_latencies() -> None:
    metrics = Metrics()
    # Created at 100, ran 4 s ending at 110 (started at 106: waited 6 s), first token 7 s after start.
    Seen(_outcome(duration_ms=4000.0, ttft_ms=7000.0), created_at=100.0, latency_ms=10_000.0).record(metrics)
    assert _value(metrics, "gpucloud_job_outcomes_total", model="m", status="completed") == 1
    assert _value(metrics, "gpucloud_tokens_total", model="m", kind="prompt") == 3
    assert _value(metrics, "gpucloud_tokens_total", model="m", kind="completion") == 5
    assert _value(metrics, "gpucloud_job_duration_seconds_sum", model="m", status="completed") == 10.0
    assert _value(metrics, "gpucloud_queue_wait_seconds_sum", model="m") == pytest.approx(6.0)
    assert _value(metrics, "gpucloud_time_to_first_token_seconds_sum", model="m") == pytest.approx(7.0)
    # Generating took 4 s less the TTFT not spent waiting (1 s): 3 s over 4 gaps.
    assert _value(metrics, "gpucloud_inter_token_latency_seconds_sum", model="m") == pytest.approx(0.75)


def test_an_ending_that_never_ran_has_no_wait_or_token_latencies() -> None:
    metrics = Metrics()
    Seen(_outcome(OutcomeStatus.EXPIRED, completion_tokens=0), created_at=100.0).record(metrics)
    assert _value(metrics, "gpucloud_job_outcomes_total", model="m", status="expired") == 1
    assert _value(metrics, "gpucloud_queue_wait_seconds_count", model="m") is None
    assert _value(metrics, "gpucloud_time_to_first_token_seconds_count", model="m") is None


def test_retries_rejections_and_repeats_are_counted_apart_or_not_at_all() -> None:
    metrics = Metrics()
    Seen(_outcome(OutcomeStatus.STARTED), retry=True).record(metrics)
    Seen(_outcome(OutcomeStatus.FAILED), rejected=True).record(metrics)
    Seen(_outcome(), repeat=True).record(metrics)
    assert _value(metrics, "gpucloud_job_retries_total", model="m") == 1
    assert _value(metrics, "gpucloud_outcomes_rejected_total", status="failed") == 1
    assert _value(metrics, "gpucloud_job_outcomes_total", model="m", status="completed") is None
    assert _value(metrics, "gpucloud_tokens_total", model="m", kind="prompt") is None


def test_the_lifecycle_line_names_the_job_attempt_worker_and_status(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="gpucloud.jobs.lifecycle"):
        Seen(_outcome()).log()
        Seen(_outcome(OutcomeStatus.STARTED, worker_id=""), retry=True).log()
        Seen(_outcome(), repeat=True).log()
        Seen(_outcome(), rejected=True).log()
    assert [r.getMessage() for r in caplog.records] == [
        "job ended job_1 attempt 2 on w1: completed",
        "job restarted job_1 attempt 2 on -: started",
        "job ending re-sent job_1 attempt 2 on w1: completed",
    ]
    assert caplog.records[0].__dict__["completion_tokens"] == 5
