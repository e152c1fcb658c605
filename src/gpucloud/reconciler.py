"""`Reconciler`: the control plane's housekeeping, run by every gateway.

* **Lost queue state.** Each job row records the queue epoch it was enqueued under
  (`JobQueue.epoch`). When the epoch changes — Redis restarted without persistence, or an embedded
  process restarted with a new in-process queue — jobs the database still holds as queued or
  running are enqueued again (attempts keep counting up, so a late result of an old attempt stays
  fenced), or ended as expired if their deadline passed. A conditional UPDATE claims each job, so
  of several gateways exactly one re-enqueues it.
* **Orphaned synchronous jobs.** A synchronous job has a row only once it started (its client
  waits on a gateway; see `queue.protocol.Unrecorded`), and is never re-enqueued: after a crash its
  client is gone, and running it again would bill an answer nobody receives. A row of such a job
  left active is ended as `interrupted` (billed nothing: what reached the client before the crash
  was never reported) once the gateway holding its client is known to be gone — at once in
  embedded mode, where this process is the only gateway, or after `orphan_after_s` (the longest a
  request may run) in cluster mode, where a live worker would have ended it by then.
* **Stranded rows.** An asynchronous or idempotent job's row is written before the job is queued;
  a gateway killed in between leaves a row that says queued under the current epoch and nothing
  on the queue. Every pass submits again the queued rows that are older than `stranded_after_s`
  (the queue's submit is idempotent per job and attempt base, so a job that is on the queue, or
  leased, is left as it is) — each row once, following a cursor over creation times that starts,
  in a new process, as far back as a queued job can still start.
* **Old results.** Results kept for `GET /v1/jobs/{id}` are dropped after `result_ttl_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, select, update

from gpucloud.background import Background
from gpucloud.db import Database, Job, JobStatus
from gpucloud.db.models import utcnow
from gpucloud.jobs.kept import KEPT_AT, KeptResults
from gpucloud.jobs.store import message_of
from gpucloud.queue.protocol import (
    JobQueue,
    Outcome,
    OutcomeStatus,
    QueueError,
    QueueFull,
)

log = logging.getLogger(__name__)
_ACTIVE = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)


class Reconciler:
    def __init__(
        self,
        db: Database,
        queue: JobQueue,
        *,
        result_ttl_s: float,
        every_s: float = 5.0,
        batch: int = 500,
        reply_to: str = "",
        lone_gateway: bool = False,
        orphan_after_s: float = 3600.0,
        kept: KeptResults | None = None,
        stranded_after_s: float = 30.0,
        longest_wait_s: float = 3600.0,
    ) -> None:
        self._db = db
        self._stranded_after_s = stranded_after_s
        self._stranded_from = utcnow() - timedelta(seconds=longest_wait_s)  # the cursor
        self._kept = kept
        self._reply_to = reply_to
        self._lone_gateway = lone_gateway
        self._orphan_after_s = orphan_after_s
        self._queue = queue
        self._result_ttl_s = result_ttl_s
        self._every_s = every_s
        self._batch = batch
        self._epoch: str | None = None
        self._loop = Background("reconciler", self._run)

    async def current_epoch(self) -> str | None:
        """The queue's epoch as last seen (read once if not yet known); None while it is down."""
        if self._epoch is None:
            with contextlib.suppress(QueueError):
                self._epoch = await self._queue.epoch()
        return self._epoch

    async def start(self) -> None:
        self._loop.start()

    async def close(self) -> None:
        await self._loop.close()

    async def _run(self) -> None:
        last_prune = 0.0
        while True:
            try:
                await self.reconcile()
                if time.monotonic() - last_prune > 60:
                    await self.prune_results()
                    last_prune = time.monotonic()
            except QueueError as exc:
                log.warning("reconciler: queue unavailable: %s", exc)
            except Exception:
                log.exception("reconciler: pass failed; next pass in %.0fs", self._every_s)
            await asyncio.sleep(self._every_s)

    async def reconcile(self) -> int:
        """One pass; returns how many jobs it enqueued again or ended."""
        self._epoch = current = await self._queue.epoch()
        async with self._db.session() as session:
            rows = list(
                (
                    await session.execute(
                        select(Job)
                        .where(Job.status.in_(_ACTIVE), Job.queue_epoch != current)
                        .limit(self._batch)
                    )
                ).scalars()
            )
        handled = 0
        for job in rows:
            if await self._claim(job, current):
                handled += await self._requeue(job, current)
        if handled:
            log.warning("reconciler: re-enqueued or expired %d job(s) from a lost queue state", handled)
        return handled + await self.requeue_stranded(current) + await self.end_orphans()

    async def requeue_stranded(self, current: str) -> int:
        """Submit again the rows left queued by a gateway that died before queueing them (see
        module docstring); how many it queued or ended (a row found on the queue already is not
        counted)."""
        until = utcnow() - timedelta(seconds=self._stranded_after_s)
        query = (
            select(Job)
            .where(
                Job.status == JobStatus.QUEUED.value,
                Job.queue_epoch == current,
                Job.created_at >= self._stranded_from,
                Job.created_at <= until,
            )
            .order_by(Job.created_at)
            .limit(self._batch)
        )
        async with self._db.session() as session:
            rows = list((await session.execute(query)).scalars())
        handled = 0
        for job in rows:
            done = await self._resubmit(job)
            if done is None:
                self._stranded_from = job.created_at  # the queue is full: from here next pass
                break
            handled += done
        else:
            # A full page goes on from its last row next pass (read again: submitting twice is a no-op).
            self._stranded_from = rows[-1].created_at if len(rows) == self._batch else until
        if handled:
            log.warning("reconciler: queued %d job(s) a lost gateway had recorded but not queued", handled)
        return handled

    async def _resubmit(self, job: Job) -> bool | None:
        """Queue the job again unless it is there already (False), or end it if its deadline
        passed (True when queued or ended); None when the queue is full."""
        now = time.time()
        deadline = job.deadline_at.timestamp() if job.deadline_at else now
        if deadline <= now:
            await self._end(job, OutcomeStatus.EXPIRED, "the job was never queued", "queue_timeout")
            return True
        try:
            return await self._queue.submit(message_of(job, deadline))
        except QueueFull:
            return None

    async def end_orphans(self) -> int:
        """End the active rows of synchronous jobs whose client is gone (see module docstring)."""
        query = select(Job.id, Job.attempts, Job.model, Job.reply_to).where(
            Job.status.in_(_ACTIVE), Job.queue_epoch.is_(None)
        )
        if self._lone_gateway:
            query = query.where(Job.reply_to != self._reply_to)
        else:
            query = query.where(Job.started_at < utcnow() - timedelta(seconds=self._orphan_after_s))
        async with self._db.read() as connection:
            rows = (await connection.execute(query.limit(self._batch))).all()
        for row in rows:
            lost = "the gateway holding the client was lost"
            await self._end(row, OutcomeStatus.INTERRUPTED, lost, "interrupted")
        if rows:
            log.warning("reconciler: ended %d synchronous job(s) whose client was lost", len(rows))
        return len(rows)

    async def _end(self, job: Any, status: OutcomeStatus, error: str, code: str) -> None:
        """End `job` (a row with id, attempts, reply_to and model) through the finalizer."""
        await self._queue.report(
            Outcome(
                job_id=job.id,
                attempt=job.attempts,
                status=status,
                reply_to=job.reply_to or "",
                model=job.model,
                error=error,
                error_code=code,
                at=time.time(),
            )
        )

    async def _claim(self, job: Job, current: str) -> bool:
        async with self._db.transaction() as session:
            result = await session.execute(
                update(Job)
                .where(Job.id == job.id, Job.queue_epoch == job.queue_epoch, Job.status.in_(_ACTIVE))
                .values(queue_epoch=current)
            )
        return bool(result.rowcount)

    async def _requeue(self, job: Job, current: str) -> int:
        now = time.time()
        deadline = job.deadline_at.timestamp() if job.deadline_at else now
        if deadline <= now:
            gone = "the queue lost the job and its deadline has passed"
            await self._end(job, OutcomeStatus.EXPIRED, gone, "queue_timeout")
            return 1
        try:
            await self._queue.submit(message_of(job, deadline))
        except QueueFull:
            await self._unclaim(job, current)  # try again on a later pass
            return 0
        return 1

    async def _unclaim(self, job: Job, current: str) -> None:
        async with self._db.transaction() as session:
            await session.execute(
                update(Job)
                .where(Job.id == job.id, Job.queue_epoch == current)
                .values(queue_epoch=job.queue_epoch)
            )

    async def prune_results(self) -> None:
        """Forget results older than their time to live: rows first lose the objects they name
        (a failed delete leaves those rows for a later pass), then their results."""
        cutoff = utcnow() - timedelta(seconds=self._result_ttl_s)
        old = and_(Job.finished_at < cutoff, Job.result.is_not(None))
        if self._kept is not None:
            where = Job.result[KEPT_AT].as_string()
            async with self._db.session() as session:
                keys = [
                    str(k)
                    for k in (await session.execute(select(where).where(old, where.is_not(None)))).scalars()
                ]
            await self._kept.forget(keys)
        async with self._db.transaction() as session:
            await session.execute(update(Job).where(old).values(result=None))


def deadline_at(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)
