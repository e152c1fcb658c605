"""Jobs in the database and the finalizer that ends them exactly once (DESIGN.md §4).

`JobStore` records a job before it is queued and answers who may see it. `Finalizer` is the
control plane's consumer of outcomes: it applies a batch of them in one transaction, fenced by
attempt so that exactly one terminal outcome per job is accepted and exactly one usage row is
written, then tells the gateway holding the client (FINAL or ERROR event) — after the commit, so
a client never gets a result that was not billed, nor one from an attempt that lost the fence.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    String,
    Update,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from gpucloud.admission import Admission, Pricing, Ticket
from gpucloud.background import Background
from gpucloud.db import Database, Job, JobStatus, UsageRecord
from gpucloud.db.models import UTCDateTime, utcnow
from gpucloud.errors import NotFound
from gpucloud.keys import Principal
from gpucloud.observability.metrics import Metrics
from gpucloud.queue.protocol import EventKind, JobEvent, JobQueue, Outcome, OutcomeStatus, QueueError
from gpucloud.settings import ModelPrice

log = logging.getLogger(__name__)
# One line per job start after the first and per ending (`gpucloud.jobs.lifecycle`), with job id,
# attempt and worker; the worker's own lines for the job carry the client's request id.
lifecycle_log = logging.getLogger("gpucloud.jobs.lifecycle")

_ACTIVE = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)
# Times the finalizer applies a batch whose transaction failed before leaving it to redelivery.
_APPLY_TRIES = 3
# A stored result keeps embedding vectors (base64 float32) only up to this many characters, about
# 750 KiB of floats: bigger ones are answered once, and the stored result keeps their usage only.
_MAX_STORED_EMBEDDING_CHARS = 1 << 20
EMBEDDINGS_OMITTED = "embeddings_omitted"  # the stored result's flag for vectors not kept

# How each ending outcome leaves the job, and whether what it generated is billed.
_ENDINGS: dict[OutcomeStatus, JobStatus] = {
    OutcomeStatus.COMPLETED: JobStatus.COMPLETED,
    OutcomeStatus.CANCELLED: JobStatus.CANCELLED,
    OutcomeStatus.FAILED: JobStatus.FAILED,
    OutcomeStatus.EXPIRED: JobStatus.FAILED,
    OutcomeStatus.DEAD: JobStatus.DEAD,
    OutcomeStatus.INTERRUPTED: JobStatus.FAILED,
}


def new_job_id() -> str:
    return f"job_{uuid.uuid4().hex}"


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
        async with self._db.transaction() as connection:
            await connection.execute(self._insert, row)

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


class Finalizer:
    """Reads outcomes from the queue and applies them to the database (see module docstring)."""

    def __init__(
        self,
        db: Database,
        queue: JobQueue,
        consumer: str,
        *,
        batch: int = 256,
        metrics: Metrics | None = None,
        admission: Admission | None = None,
        start_linger_s: float = 0.25,
    ) -> None:
        self._db = db
        self._start_linger_s = start_linger_s
        self._starts: dict[str, tuple[Outcome, float]] = {}  # job id → (held STARTED, when read)
        self._end_statement = _end_statement()
        self._insert_usage = insert(UsageRecord)
        self._metrics = metrics
        self._admission = admission
        self._pricing = admission.pricing if admission is not None else Pricing({}, ModelPrice())
        self._queue = queue
        self._consumer = consumer
        self._batch = batch
        self._loop = Background("finalizer", self._run)

    async def start(self) -> None:
        self._loop.start()

    async def close(self) -> None:
        await self._loop.close()

    async def _run(self) -> None:
        held: list[Outcome] = []  # a batch whose transaction failed: applied again first
        tries = 0
        while True:
            try:
                if not held:
                    held = await self._next_batch()
                if held:
                    await self.apply(held)
                held, tries = [], 0
            except QueueError as exc:
                log.warning("finalizer: queue unavailable, retrying: %s", exc)
                held, tries = [], 0  # unacknowledged: the queue delivers them again
                self._starts.clear()
                await asyncio.sleep(0.5)
            except Exception:
                # A database hiccup must not kill the consumer. The batch is applied again at once
                # (the queue would redeliver it only after OUTCOME_REDELIVERY_S, and its clients
                # would wait that long); after a few tries it is left to that redelivery. The
                # fence makes re-applying harmless.
                log.exception("finalizer: applying outcomes failed, retrying")
                tries += 1
                if tries >= _APPLY_TRIES:
                    held, tries = [], 0
                await asyncio.sleep(0.5)

    async def _next_batch(self) -> list[Outcome]:
        """The next outcomes to apply. A STARTED outcome waits up to `start_linger_s` for its job's
        ending: a short job then costs one write transaction instead of two (the ending's UPDATE
        records the start too). Held outcomes are unacknowledged, so a crash loses none of them."""
        now = time.monotonic()
        timeout = 1.0
        if self._starts:
            timeout = max(0.0, min(at for _, at in self._starts.values()) + self._start_linger_s - now)
        batch: list[Outcome] = []
        for outcome in await self._queue.read_outcomes(self._consumer, self._batch, timeout):
            if outcome.status is OutcomeStatus.STARTED and self._start_linger_s > 0:
                previous = self._starts.get(outcome.job_id)
                if previous is not None:
                    batch.append(previous[0])  # an older attempt's start: no reason to wait for it
                self._starts[outcome.job_id] = (outcome, time.monotonic())
            else:
                batch.append(outcome)
        # Released starts go first: applied before a stale attempt's ending of the same job, a newer
        # start still fences that ending out (apply keeps this order within a job).
        starts: list[Outcome] = []
        for outcome in batch:
            held = self._starts.pop(outcome.job_id, None)
            if held is not None:
                starts.append(held[0])
        due = time.monotonic() - self._start_linger_s
        for job_id, (outcome, at) in list(self._starts.items()):
            if at <= due:
                starts.append(outcome)
                del self._starts[job_id]
        return starts + batch

    async def apply(self, outcomes: Sequence[Outcome]) -> None:
        """Apply, commit, acknowledge, then notify — in that order."""
        events: list[tuple[str, JobEvent]] = []
        seen: list[_Seen] = []  # what to count in metrics, once the transaction has committed
        ending = _endings_by_job(outcomes)
        async with self._db.transaction() as session:
            # In job id order (stable: a job's own outcomes keep theirs), so that finalizers of
            # several gateways lock job rows in one order and cannot deadlock each other.
            for outcome in sorted(outcomes, key=lambda o: o.job_id):
                if (
                    outcome.status is OutcomeStatus.STARTED
                    and ending.get(outcome.job_id, -1) >= outcome.attempt
                ):
                    continue  # the same batch ends this attempt: one UPDATE does both (see _end)
                event = await self._apply_one(session, outcome, seen)
                if event is not None:
                    events.append((outcome.reply_to, event))
        for observation in seen:
            observation.log()
            if self._metrics is not None:
                observation.record(self._metrics)
        if self._admission is not None:
            for observation in seen:
                if observation.ticket is not None:
                    o = observation.outcome
                    await self._admission.settle(
                        observation.ticket, o.prompt_tokens, o.completion_tokens, observation.cost_micros
                    )
        await self._queue.ack_outcomes(outcomes)
        by_channel: dict[str, list[JobEvent]] = {}
        for reply_to, event in events:
            by_channel.setdefault(reply_to, []).append(event)
        for reply_to, batch in by_channel.items():
            if reply_to:
                await self._queue.publish(reply_to, batch)

    async def _apply_one(
        self, session: AsyncConnection, outcome: Outcome, seen: list[_Seen]
    ) -> JobEvent | None:
        if outcome.status is OutcomeStatus.STARTED:
            if await self._record_start(session, outcome) and outcome.attempt > 1:
                seen.append(_Seen(outcome, retry=True))
            return None
        job = await self._end(session, outcome)
        if job is None:
            return await self._reject(session, outcome, seen)
        latency_ms = (utcnow() - job.created_at).total_seconds() * 1000.0
        cost = self._pricing.cost_micros(
            outcome.model, outcome.prompt_tokens, outcome.completion_tokens, _is_batch(job.idempotency_key)
        )
        ticket = Ticket.from_dict(job.admission) if job.admission else None
        seen.append(
            _Seen(
                outcome,
                created_at=job.created_at.timestamp(),
                latency_ms=latency_ms,
                ticket=ticket,
                cost_micros=cost,
            )
        )
        await session.execute(
            self._insert_usage, _usage_row(outcome, key_id=job.key_id, latency_ms=latency_ms, cost=cost)
        )
        return _event(outcome, latency_ms)

    async def _reject(self, session: AsyncConnection, outcome: Outcome, seen: list[_Seen]) -> JobEvent | None:
        """A refused ending. If it is the accepted ending delivered again (its first application
        committed, but the finalizer failed before acknowledging it), tell the client again and
        settle again (both are idempotent): else a failure between the commit and the publish
        would leave the client waiting for its whole request timeout."""
        t = Job.__table__.c
        row = (
            await session.execute(
                select(t.status, t.attempts, t.created_at, t.admission, t.idempotency_key).where(
                    t.id == outcome.job_id
                )
            )
        ).first()
        if row is None or row.status != _ENDINGS[outcome.status].value or row.attempts != outcome.attempt:
            seen.append(_Seen(outcome, rejected=True))
            log.info(
                "finalizer: rejected outcome",
                extra={"job_id": outcome.job_id, "attempt": outcome.attempt, "status": outcome.status.value},
            )
            return None
        ticket = Ticket.from_dict(row.admission) if row.admission else None
        cost = self._pricing.cost_micros(
            outcome.model, outcome.prompt_tokens, outcome.completion_tokens, _is_batch(row.idempotency_key)
        )
        seen.append(_Seen(outcome, repeat=True, ticket=ticket, cost_micros=cost))
        return _event(outcome, (utcnow() - row.created_at).total_seconds() * 1000.0)

    async def _record_start(self, session: AsyncConnection, outcome: Outcome) -> bool:
        result = await session.execute(
            update(Job)
            .where(Job.id == outcome.job_id, Job.attempts < outcome.attempt, Job.status.in_(_ACTIVE))
            .values(
                status=JobStatus.RUNNING.value,
                attempts=outcome.attempt,
                worker_id=outcome.worker_id or None,
                started_at=_at(outcome),
            )
        )
        return bool(result.rowcount)

    async def _end(self, session: AsyncConnection, outcome: Outcome) -> _Ended | None:
        """The fence: end the job only if it is active and no later attempt has started."""
        result = await session.execute(
            self._end_statement,
            {
                "b_id": outcome.job_id,
                "b_attempt": outcome.attempt,
                "b_status": _ENDINGS[outcome.status].value,
                "b_started": _started_at(outcome),
                "b_worker": outcome.worker_id or None,
                "b_ran": outcome.duration_ms is not None,
                "b_finished": _at(outcome),
                "b_error": outcome.error,
                "b_error_code": outcome.error_code,
                "b_result": _result_of(outcome),
            },
        )
        row = result.first()
        return _Ended(row[0], row[1], row[2], row[3]) if row is not None else None


@dataclass(frozen=True, slots=True)
class _Ended:
    """What the fence's UPDATE returns about a job it just ended."""

    key_id: str
    created_at: datetime
    admission: dict[str, Any] | None
    idempotency_key: str | None  # "batch:…" marks a Batch API request (its own price)


def _is_batch(idempotency_key: str | None) -> bool:
    # Clients cannot send this prefix (gateway.inference.idempotency_key refuses it).
    return idempotency_key is not None and idempotency_key.startswith("batch:")


@dataclass(slots=True)
class _Seen:
    """One applied outcome, counted in metrics after the commit (a retried batch counts once)."""

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
            m.job_retries.labels(model=o.model).inc()
            return
        if self.rejected:
            m.outcomes_rejected.labels(status=o.status.value).inc()
            return
        m.job_outcomes.labels(model=o.model, status=o.status.value).inc()
        m.job_seconds.labels(model=o.model, status=o.status.value).observe(self.latency_ms / 1000.0)
        m.tokens.labels(model=o.model, kind="prompt").inc(o.prompt_tokens)
        m.tokens.labels(model=o.model, kind="completion").inc(o.completion_tokens)
        if o.duration_ms is None:
            return  # it never ran (expired, dead, cancelled while queued)
        started = (o.at or time.time()) - o.duration_ms / 1000.0
        wait = max(0.0, started - self.created_at)
        m.queue_wait.labels(model=o.model).observe(wait)
        if o.ttft_ms is not None and o.completion_tokens > 0:
            m.ttft.labels(model=o.model).observe(o.ttft_ms / 1000.0)
            generating = o.duration_ms / 1000.0 - max(0.0, o.ttft_ms / 1000.0 - wait)
            if o.completion_tokens > 1:
                m.itl.labels(model=o.model).observe(max(0.0, generating) / (o.completion_tokens - 1))


def _end_statement() -> Update:
    """The fence's UPDATE, with bind parameters: built once per finalizer, compiled once.

    `started_at` and `worker_id`: the ending attempt's STARTED may not be recorded (coalesced into
    this write, see `Finalizer._next_batch`); the row then still names an older attempt — the worker
    that was lost, and when it began — so the ending attempt's own values replace them (`b_ran`:
    the attempt ran at all, unlike a dead letter or an expiry). Otherwise what its STARTED recorded
    stays. SQL sees the row as it was before the UPDATE.
    """
    t = Job.__table__.c
    newer = t.attempts < bindparam("b_attempt")
    started = bindparam("b_started", type_=UTCDateTime())
    worker = bindparam("b_worker", type_=String())
    return (
        update(Job)
        .where(t.id == bindparam("b_id"), t.status.in_(_ACTIVE), t.attempts <= bindparam("b_attempt"))
        .values(
            status=bindparam("b_status"),
            attempts=bindparam("b_attempt"),
            started_at=case(
                (and_(newer, bindparam("b_ran", type_=Boolean())), started),
                else_=func.coalesce(t.started_at, started),
            ),
            worker_id=case(
                (and_(newer, worker.is_not(None)), worker), else_=func.coalesce(t.worker_id, worker)
            ),
            finished_at=bindparam("b_finished", type_=UTCDateTime()),
            error=bindparam("b_error"),
            error_code=bindparam("b_error_code"),
            result=bindparam("b_result", type_=JSON()),
        )
        .returning(t.key_id, t.created_at, t.admission, t.idempotency_key)
    )


def _event(outcome: Outcome, latency_ms: float) -> JobEvent:
    """What the gateway holding the client is told about an accepted ending."""
    data = outcome.to_dict()
    data["latency_ms"] = latency_ms
    if outcome.status is OutcomeStatus.COMPLETED:
        return JobEvent(outcome.job_id, EventKind.FINAL, outcome.attempt, data)
    data.setdefault("code", outcome.error_code)
    return JobEvent(outcome.job_id, EventKind.ERROR, outcome.attempt, data)


def _endings_by_job(outcomes: Sequence[Outcome]) -> dict[str, int]:
    """job id → the latest attempt that a terminal outcome in this batch reports."""
    endings: dict[str, int] = {}
    for outcome in outcomes:
        if outcome.status is not OutcomeStatus.STARTED:
            endings[outcome.job_id] = max(endings.get(outcome.job_id, -1), outcome.attempt)
    return endings


def _result_of(outcome: Outcome) -> dict[str, Any] | None:
    """What is kept for `GET /v1/jobs/{id}` and idempotent repeats: the choices and the usage."""
    if not outcome.choices:
        return None
    result: dict[str, Any] = {
        "choices": outcome.choices,
        "prompt_tokens": outcome.prompt_tokens,
        "completion_tokens": outcome.completion_tokens,
    }
    size = sum(len(c.get("embedding_base64") or "") for c in outcome.choices)
    if size > _MAX_STORED_EMBEDDING_CHARS:
        result["choices"], result[EMBEDDINGS_OMITTED] = [], True
    return result


def _started_at(outcome: Outcome) -> datetime:
    """When the ending attempt started: its end less the time it ran on the worker."""
    end = outcome.at or time.time()
    return datetime.fromtimestamp(end - (outcome.duration_ms or 0.0) / 1000.0, UTC)


def _at(outcome: Outcome) -> datetime:
    return datetime.fromtimestamp(outcome.at or time.time(), UTC)


def _usage_row(outcome: Outcome, *, key_id: str, latency_ms: float, cost: int) -> dict[str, Any]:
    now = utcnow()
    return dict(
        job_id=outcome.job_id,
        key_id=key_id,
        model=outcome.model,
        status=_ENDINGS[outcome.status].value,
        prompt_tokens=outcome.prompt_tokens,
        completion_tokens=outcome.completion_tokens,
        total_tokens=outcome.prompt_tokens + outcome.completion_tokens,
        cost_micros=cost,
        latency_ms=latency_ms,
        ttft_ms=outcome.ttft_ms,
        created_at=now,
        day=now.strftime("%Y-%m-%d"),
        hour=now.strftime("%Y-%m-%dT%H"),
    )
