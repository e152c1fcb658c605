"""What a client gets for a job that ended without a result (gateway/job_errors.py), from its ERROR
event or from the stored row of a repeated idempotent request."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from gpucloud.db import Job, JobStatus
from gpucloud.errors import EngineFailed, GpucloudError, InvalidRequest, RetryableError, Unavailable
from gpucloud.gateway.job_errors import error_of, stored_error
from gpucloud.queue.protocol import ErrorEvent


def event(**data: Any) -> ErrorEvent:
    return msgspec.convert({**data, "job_id": "job_1", "attempt": 1}, ErrorEvent)


@pytest.mark.parametrize(
    ("data", "kind", "code", "param"),
    [
        ({"status": "expired"}, Unavailable, "queue_timeout", None),
        ({"status": "dead"}, EngineFailed, "dead_lettered", None),
        ({"status": "interrupted"}, EngineFailed, "worker_lost", None),
        ({"status": "cancelled"}, Unavailable, "cancelled", None),
        ({"status": "failed", "error_code": "invalid_request", "error": "bad"}, InvalidRequest, None, None),
        ({"error_code": "embeddings_unsupported"}, InvalidRequest, "model_not_supported", "model"),
        ({"error_code": "invalid_dimensions"}, InvalidRequest, "invalid_value", "dimensions"),
        ({"error_code": "invalid_logit_bias"}, InvalidRequest, "invalid_value", "logit_bias"),
        ({"error_code": "context_length_exceeded"}, InvalidRequest, "context_length_exceeded", "messages"),
        ({"error_code": "oom", "error": "out of memory"}, EngineFailed, "oom", None),
        ({}, EngineFailed, "engine_error", None),
    ],
)
def test_error_events_become_client_errors(
    data: dict[str, Any], kind: type[GpucloudError], code: str | None, param: str | None
) -> None:
    error = error_of(event(**data))
    assert type(error) is kind
    assert isinstance(error, GpucloudError)
    assert (error.code, error.param) == (code, param)


def test_retry_hints_and_messages() -> None:
    expired = error_of(event(status="expired"))
    assert isinstance(expired, RetryableError)
    assert expired.retry_after_s == 10
    assert str(error_of(event(error_code="invalid_request"))) == "The model refused the request."
    assert str(error_of(event(error_code="x", error="engine said no"))) == "engine said no"


def row(status: JobStatus, error_code: str | None, error: str | None = None) -> Job:
    return Job(id="job_1", status=status.value, error_code=error_code, error=error, attempts=2)


@pytest.mark.parametrize(
    ("stored", "code"),
    [
        (row(JobStatus.FAILED, "queue_timeout"), "queue_timeout"),
        (row(JobStatus.FAILED, "worker_lost"), "worker_lost"),
        (row(JobStatus.FAILED, "dead_lettered"), "dead_lettered"),
        (row(JobStatus.CANCELLED, None), "cancelled"),
        (row(JobStatus.FAILED, "context_length_exceeded", "too long"), "context_length_exceeded"),
        (row(JobStatus.FAILED, None, "crashed"), "engine_error"),
    ],
)
def test_a_stored_row_gives_the_same_error_again(stored: Job, code: str) -> None:
    error = stored_error(stored)
    assert isinstance(error, GpucloudError)
    assert error.code == code
