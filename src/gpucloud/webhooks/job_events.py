"""`job.completed` / `job.failed` events for the jobs of keys whose endpoints subscribe to them:
endpoints of their own, or of their organisation (`gpucloud.webhooks.store`).

The finalizer's transaction that ends a job is the request path's hottest write, so it is left
alone: instead the webhook sender reads ended jobs from the jobs table (committed state, the same
guarantee an outbox row gives) past a cursor, for subscribed keys only, and records one outbox event
per job with an id derived from the job's (`evt_<job hex>`), so reading a job twice — after a
restart, or by a new leader, which starts `LOOKBACK` back — records it once. The event's time is
the job's end, so an endpoint made later is not told of it. Batch lines are announced by their
batch's event instead.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gpucloud.db import ApiKey, Database, Job, JobStatus
from gpucloud.db.models import OutboxEvent, WebhookEndpoint, utcnow

LOOKBACK = timedelta(hours=1)
_PAGE = 500
_JOB_EVENTS = {"job.completed", "job.failed"}


def job_event_id(job_id: str) -> str:
    return "evt_" + job_id.removeprefix("job_")


def job_event(job: Any) -> tuple[str, dict[str, Any]]:
    """The event of an ended job (a row with the columns `record` reads)."""
    completed = job.status == JobStatus.COMPLETED.value
    data = {
        "id": job.id,
        "object": "job",
        "model": job.model,
        "status": job.status,
        "finished_at": int(job.finished_at.timestamp()) if job.finished_at else None,
        "error": None if completed else {"message": job.error, "code": job.error_code},
    }
    return ("job.completed" if completed else "job.failed"), data


class JobEvents:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._cursor: datetime | None = None

    def reset(self) -> None:
        """Forget the cursor (this process lost the lead; whoever leads next starts LOOKBACK back)."""
        self._cursor = None

    async def record(self) -> int:
        """Record events for jobs that ended since the cursor; how many were new."""
        cursor = self._cursor or utcnow() - LOOKBACK
        async with self._db.transaction() as connection:
            keys, orgs = await _subscribers(connection)
            if not keys and not orgs:
                self._cursor = utcnow()
                return 0
            jobs = await _ended_jobs(connection, keys, orgs, cursor)
            if not jobs:
                return 0
            ids = [job_event_id(job.id) for job in jobs]
            found = await connection.execute(select(OutboxEvent.id).where(OutboxEvent.id.in_(ids)))
            known = set(found.scalars())
            rows = [
                _event_row(job, event_id)
                for job, event_id in zip(jobs, ids, strict=True)
                if event_id not in known
            ]
            if rows:
                await connection.execute(insert(OutboxEvent), rows)
        self._cursor = max(job.finished_at for job in jobs if job.finished_at is not None)
        return len(rows)


async def _subscribers(connection: AsyncConnection) -> tuple[set[str], set[str]]:
    """The keys and the organisations with an endpoint subscribed to job events."""
    query = select(WebhookEndpoint.key_id, WebhookEndpoint.org_id, WebhookEndpoint.events).where(
        WebhookEndpoint.disabled_at.is_(None)
    )
    keys: set[str] = set()
    orgs: set[str] = set()
    for key_id, org_id, events in (await connection.execute(query)).all():
        if not _JOB_EVENTS & set(events):
            continue
        if org_id is None:
            keys.add(key_id)
        else:
            orgs.add(org_id)
    return keys, orgs


async def _ended_jobs(
    connection: AsyncConnection, keys: set[str], orgs: set[str], cursor: datetime
) -> list[Any]:
    # An organisation's jobs through its keys' rows (indexed by org_id), in this one query: no list
    # of its keys, revoked ones included (a job may end after its key), is read into Python.
    query = (
        select(Job.id, Job.key_id, Job.model, Job.status, Job.finished_at, Job.error, Job.error_code)
        .join(ApiKey, ApiKey.id == Job.key_id)
        .where(
            or_(Job.key_id.in_(keys), ApiKey.org_id.in_(orgs)),
            Job.finished_at >= cursor,  # equal times past a page's end: the known ids skip repeats
            Job.status.in_([JobStatus.COMPLETED.value, JobStatus.FAILED.value, JobStatus.DEAD.value]),
            or_(Job.idempotency_key.is_(None), Job.idempotency_key.not_like("batch:%")),
        )
        .order_by(Job.finished_at)
        .limit(_PAGE)
    )
    return list((await connection.execute(query)).all())


def _event_row(job: Any, event_id: str) -> dict[str, Any]:
    event_type, data = job_event(job)
    # Dated at the job's end: an endpoint made later is not told of it.
    return {
        "id": event_id,
        "key_id": job.key_id,
        "type": event_type,
        "data": data,
        "created_at": job.finished_at,
    }
