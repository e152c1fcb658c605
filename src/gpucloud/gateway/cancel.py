"""The gateway's one way to cancel a job: the jobs API's `DELETE /v1/jobs/{id}`, a client that went
away (`gateway.stream.ClientJob`) and a job the gateway gave up waiting for all go through
`cancel_job` (docs/architecture.md §4, "Cancellation").
"""

from __future__ import annotations

import contextlib
import time

from gpucloud.queue.protocol import JobMessage, Jobs, Outcome, OutcomeStatus, QueueUnavailable, carried


async def cancel_job(queue: Jobs, job_id: str, ending: Outcome | None = None) -> None:
    """Mark the job cancelled, so that a worker running it stops (the tokens it generated are
    billed) and one about to start it skips it; then report `ending` for a job no worker started
    yet. The fence ignores that ending if a worker did start it meanwhile (that worker sees the
    mark and stops). A queue that is down loses only the mark: the job still ends by itself."""
    with contextlib.suppress(QueueUnavailable):
        await queue.cancel(job_id)
    if ending is not None:
        await queue.report(ending)


def unstarted_ending(
    job_id: str,
    model: str,
    status: OutcomeStatus,
    error: str,
    code: str,
    message: JobMessage | None = None,
) -> Outcome:
    """The ending of a job that no worker started (attempt 0). `message` is the queued job when it
    has no database row yet: the finalizer writes the row from it."""
    return Outcome(
        job_id=job_id,
        attempt=0,
        status=status,
        reply_to="",
        model=model,
        error=error,
        error_code=code,
        at=time.time(),
        job=carried(message) if message is not None else None,
    )
