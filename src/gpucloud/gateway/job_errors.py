"""The errors a client gets for a job that ended without a result: from its ERROR event, or, for
a repeated idempotent request, from the job's stored row."""

from __future__ import annotations

from gpucloud.db import Job, JobStatus
from gpucloud.errors import EngineFailed, InvalidRequest, Unavailable
from gpucloud.queue.protocol import ErrorEvent, OutcomeStatus

# Worker error codes that are the client's to fix (400): code → (param, code the client sees).
_CLIENT_ERRORS: dict[str, tuple[str | None, str | None]] = {
    "invalid_request": (None, None),  # an engine server answered 4xx to the request
    "embeddings_unsupported": ("model", "model_not_supported"),
    "invalid_dimensions": ("dimensions", "invalid_value"),
    "invalid_logit_bias": ("logit_bias", "invalid_value"),  # a token beyond the model's vocabulary
}


def error_of(event: ErrorEvent) -> Exception:
    """The domain error a client gets for an ERROR event."""
    code, status = event.error_code, event.status
    if status is OutcomeStatus.EXPIRED:
        return Unavailable(
            "The request waited in the queue too long; retry later.", retry_after_s=10, code="queue_timeout"
        )
    if status is OutcomeStatus.DEAD:
        return EngineFailed(
            "The request failed on every attempt and was set aside for an operator.", code="dead_lettered"
        )
    if status is OutcomeStatus.INTERRUPTED:
        return EngineFailed("The worker serving the request was lost.", code="worker_lost")
    if status is OutcomeStatus.CANCELLED:
        return Unavailable("The request was cancelled.", retry_after_s=1, code="cancelled")
    if code in _CLIENT_ERRORS:  # the model refused the request itself: the client's to fix
        param, public_code = _CLIENT_ERRORS[code]
        return InvalidRequest(event.error or "The model refused the request.", code=public_code, param=param)
    if code == "context_length_exceeded":
        return InvalidRequest(
            event.error or "The prompt is too long for this model.", code=code, param="messages"
        )
    return EngineFailed(event.error or "The model failed to serve the request.", code=code)


def stored_error(row: Job) -> Exception:
    """The error a repeated request gets for a job that ended without a result."""
    status = {
        "queue_timeout": OutcomeStatus.EXPIRED,
        "worker_lost": OutcomeStatus.INTERRUPTED,
        "dead_lettered": OutcomeStatus.DEAD,
    }.get(row.error_code or "", OutcomeStatus.FAILED)
    if row.status == JobStatus.CANCELLED.value:
        status = OutcomeStatus.CANCELLED
    return error_of(ErrorEvent(row.id, row.attempts, status, row.error, row.error_code))
