"""The request id of the work at hand, for every log line written while doing it.

A `contextvars.ContextVar` follows a request through its awaits and into the tasks it starts; the
worker binds a job's request id (carried in the job message) while running it, so the id of the
HTTP response appears in the gateway's lines and the worker's lines alike. `ContextFilter` copies
it (and the job id) onto each log record.
"""

from __future__ import annotations

import contextvars
import logging

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("gpucloud_request_id", default=None)
_job_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("gpucloud_job_id", default=None)


def bind_request(request_id: str | None, job_id: str | None = None) -> None:
    """Set the ids for the current task (and tasks it starts from now on)."""
    _request_id.set(request_id)
    if job_id is not None:
        _job_id.set(job_id)


def current_request_id() -> str | None:
    return _request_id.get()


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = _request_id.get()
        if not hasattr(record, "job_id"):
            record.job_id = _job_id.get()
        return True
