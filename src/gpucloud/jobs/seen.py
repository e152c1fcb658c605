"""`Seen`: one outcome the finalizer applied, logged and counted in metrics after the commit.

Counting after the commit (not while applying) means a batch whose transaction failed and ran
again is counted once.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from gpucloud.admission import Ticket
from gpucloud.observability.metrics import Metrics
from gpucloud.queue.protocol import Outcome

# One line per job start after the first and per ending (`gpucloud.jobs.lifecycle`), with job id,
# attempt and worker; the worker's own lines for the job carry the client's request id.
lifecycle_log = logging.getLogger("gpucloud.jobs.lifecycle")


@dataclass(slots=True)
class Seen:
    """One applied outcome."""

    outcome: Outcome
    retry: bool = False
    rejected: bool = False
    repeat: bool = False  # the accepted ending delivered again: settled again, not counted again
    created_at: float = 0.0
    latency_ms: float = 0.0
    ticket: Ticket | None = None  # admission's reservation, settled after the commit
    cost_micros: int = 0

    def log(self) -> None:
        """The job's lifecycle line: id, attempt, worker, how it ended, what it was billed."""
        o = self.outcome
        if self.rejected:
            return  # logged where it was rejected
        what = "job restarted" if self.retry else "job ended" if not self.repeat else "job ending re-sent"
        lifecycle_log.info(
            "%s %s attempt %d on %s: %s",
            what,
            o.job_id,
            o.attempt,
            o.worker_id or "-",
            o.status.value,
            extra={
                "job_id": o.job_id,
                "attempt": o.attempt,
                "worker_id": o.worker_id or None,
                "status": o.status.value,
                "prompt_tokens": o.prompt_tokens,
                "completion_tokens": o.completion_tokens,
                "error_code": o.error_code,
            },
        )

    def record(self, m: Metrics) -> None:
        o = self.outcome
        if self.repeat:
            return
        if self.retry:
            m.series(m.job_retries, o.model).inc()
            return
        if self.rejected:
            m.series(m.outcomes_rejected, o.status.value).inc()
            return
        m.series(m.job_outcomes, o.model, o.status.value).inc()
        m.series(m.job_seconds, o.model, o.status.value).observe(self.latency_ms / 1000.0)
        m.series(m.tokens, o.model, "prompt").inc(o.prompt_tokens)
        m.series(m.tokens, o.model, "completion").inc(o.completion_tokens)
        if o.duration_ms is None:
            return  # it never ran (expired, dead, cancelled while queued)
        started = (o.at or time.time()) - o.duration_ms / 1000.0
        wait = max(0.0, started - self.created_at)
        m.series(m.queue_wait, o.model).observe(wait)
        if o.ttft_ms is not None and o.completion_tokens > 0:
            m.series(m.ttft, o.model).observe(o.ttft_ms / 1000.0)
            generating = o.duration_ms / 1000.0 - max(0.0, o.ttft_ms / 1000.0 - wait)
            if o.completion_tokens > 1:
                m.series(m.itl, o.model).observe(max(0.0, generating) / (o.completion_tokens - 1))
