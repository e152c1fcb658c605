"""`JobStore`: job rows — recording a job before it is queued, and reading who may see it.

Asynchronous and idempotent jobs are recorded before they are queued (their clients poll them,
repeats find them); the insert is an operation of the group-commit writer, so concurrent
submissions share a transaction. Synchronous jobs are queued without a row; the finalizer writes
it (see `queue.protocol.Unrecorded`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import Connection, and_, case, delete, func, insert, or_, select, update

from gpucloud.db import Database, Job, JobStatus, UsageRecord
from gpucloud.db.models import utcnow
from gpucloud.engines.protocol import GenerationRequest
from gpucloud.errors import NotFound
from gpucloud.keys import Principal
from gpucloud.queue.messages import JobMessage, Priority


def new_job_id() -> str:
    return f"job_{uuid.uuid4().hex}"


def request_document(request: GenerationRequest) -> dict[str, Any]:
    """A job's request as its row's JSON column holds it."""
    document: dict[str, Any] = msgspec.to_builtins(request)
    return document


def stored_request(document: dict[str, Any]) -> GenerationRequest:
    """A row's request as the queue carries it (rows hold what a validated request became)."""
    return msgspec.convert(document, GenerationRequest)


def message_of(job: Job, deadline: float) -> JobMessage:
    """A recorded job as the queue carries it again (a retry, a lost queue state, a job whose
    gateway died before queueing it); its attempts so far stay counted (`attempt_base`)."""
    return JobMessage(
        job_id=job.id,
        model=job.model,
        priority=Priority(job.priority),
        request=stored_request(job.request),
        reply_to=job.reply_to or "",
        stream=job.stream,
        enqueued_at=job.created_at.timestamp(),
        deadline=deadline,
        request_id=job.request_id,
        attempt_base=job.attempts,
    )


_RANK_SQL = {"high": 0, "normal": 1, "low": 2}


@dataclass(frozen=True, slots=True)
class JobFilter:
    key_id: str | None = None
    status: str | None = None
    model: str | None = None
    limit: int = 50


@dataclass(frozen=True, slots=True)
class NewJob:
    id: str
    key_id: str
    model: str
    endpoint: str
    priority: str
    stream: bool
    request: dict[str, Any]
    request_id: str
    idempotency_key: str | None = None
    queue_epoch: str | None = None
    reply_to: str | None = None
    deadline_at: datetime | None = None
    admission: dict[str, Any] | None = None


class JobStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._insert = insert(Job)  # values come with each execute: built once

    async def create(self, new: NewJob) -> None:
        row = {
            "id": new.id,
            "key_id": new.key_id,
            "model": new.model,
            "endpoint": new.endpoint,
            "priority": new.priority,
            "status": JobStatus.QUEUED.value,
            "stream": new.stream,
            "attempts": 0,
            "request": new.request,
            "request_id": new.request_id,
            "idempotency_key": new.idempotency_key,
            "queue_epoch": new.queue_epoch,
            "reply_to": new.reply_to,
            "deadline_at": new.deadline_at,
            "admission": new.admission,
            "created_at": utcnow(),
        }
        await self._db.writer.write(lambda connection: self._write(connection, row))

    def _write(self, connection: Connection, row: dict[str, Any]) -> None:
        connection.execute(self._insert, row)

    async def discard(self, job_id: str) -> None:
        """Forget a job the queue refused: it never reached a worker, so nothing else holds it."""
        async with self._db.transaction() as session:
            await session.execute(delete(Job).where(Job.id == job_id, Job.status == JobStatus.QUEUED.value))

    async def find_idempotent(self, key_id: str, idempotency_key: str) -> Job | None:
        async with self._db.session() as session:
            query = select(Job).where(Job.key_id == key_id, Job.idempotency_key == idempotency_key)
            return (await session.execute(query)).scalar()

    async def load(self, job_id: str) -> Job | None:
        async with self._db.session() as session:
            return await session.get(Job, job_id)

    async def position(self, job: Job) -> int:
        """Jobs ahead of `job` in its model's queue: higher classes, then older in its own class."""
        rank = case(_RANK_SQL, value=Job.priority, else_=1)
        mine = _RANK_SQL.get(job.priority, 1)
        query = select(func.count()).where(
            Job.status == JobStatus.QUEUED.value,
            Job.model == job.model,
            or_(rank < mine, and_(rank == mine, Job.created_at < job.created_at)),
        )
        async with self._db.session() as session:
            return int((await session.execute(query)).scalar_one())

    async def mean_service_s(self, model: str, sample: int = 50) -> float | None:
        """Mean latency of the model's last `sample` completed jobs, for wait estimates."""
        recent = (
            select(UsageRecord.latency_ms)
            .where(UsageRecord.model == model, UsageRecord.status == JobStatus.COMPLETED.value)
            .order_by(UsageRecord.id.desc())
            .limit(sample)
            .subquery()
        )
        async with self._db.session() as session:
            mean = (await session.execute(select(func.avg(recent.c.latency_ms)))).scalar()
        return float(mean) / 1000.0 if mean is not None else None

    async def list(self, where: JobFilter) -> list[Job]:
        query = select(Job).order_by(Job.created_at.desc()).limit(where.limit)
        if where.key_id is not None:
            query = query.where(Job.key_id == where.key_id)
        if where.status is not None:
            query = query.where(Job.status == where.status)
        if where.model is not None:
            query = query.where(Job.model == where.model)
        async with self._db.session() as session:
            return list((await session.execute(query)).scalars())

    async def requeue_dead(self, job_id: str) -> Job | None:
        """Mark a dead-lettered job queued again (attempts keep counting); None if it is not dead."""
        async with self._db.transaction() as session:
            result = await session.execute(
                update(Job)
                .where(Job.id == job_id, Job.status == JobStatus.DEAD.value)
                .values(status=JobStatus.QUEUED.value, error=None, error_code=None, finished_at=None)
            )
            if result.rowcount == 0:
                return None
            # A dead job's ledger row billed nothing; the retry's own ending writes the row again.
            await session.execute(delete(UsageRecord).where(UsageRecord.job_id == job_id))
        return await self.load(job_id)

    async def get(self, job_id: str, principal: Principal) -> Job:
        """The job if `principal` owns it or is an admin; `NotFound` otherwise (no existence leak)."""
        async with self._db.session() as session:
            job = await session.get(Job, job_id)
        if job is None or (not principal.is_admin and job.key_id != principal.key_id):
            raise NotFound(f"No job with id {job_id!r}.")
        return job
