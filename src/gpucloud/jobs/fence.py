"""The fence: the statements that move a job's row, each accepted at most once per job.

A job's row moves forward only: a STARTED outcome records attempt `a` only while no attempt at or
after `a` started and the job is active; an ending is accepted only while the job is active and no
later attempt has started. So exactly one ending per job is accepted, from the newest attempt that
started, whatever order or repetition the outcomes arrive in (architecture doc, "Delivery").

Two shapes of each statement: an UPDATE for a job whose row the gateway wrote before queueing it
(asynchronous and idempotent jobs), and an INSERT … ON CONFLICT DO UPDATE for a job queued without
a row (`queue.protocol.Unrecorded`): the first of its STARTED or its ending inserts the row; the
conflict branch applies the same fence as the UPDATE. Both RETURN the ended row's owner, creation
time and admission ticket; no row returned means the fence refused the outcome.

All statements are built once with bind parameters (building one costs more than running it) and
run as synchronous Core statements inside the group-commit writer's transaction.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import msgspec
from sqlalchemy import JSON, Boolean, Connection, Insert, String, Update, and_, bindparam, case, func, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement

from gpucloud.db import Job, JobStatus
from gpucloud.db.models import UTCDateTime, utcnow
from gpucloud.jobs.kept import EMBEDDINGS_OMITTED, KEPT_AT, MAX_ROW_CHARS, result_chars
from gpucloud.jobs.store import request_document
from gpucloud.queue.protocol import JobMessage, Outcome, OutcomeStatus

ACTIVE = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)

# How each ending outcome leaves the job.
ENDINGS: dict[OutcomeStatus, JobStatus] = {
    OutcomeStatus.COMPLETED: JobStatus.COMPLETED,
    OutcomeStatus.CANCELLED: JobStatus.CANCELLED,
    OutcomeStatus.FAILED: JobStatus.FAILED,
    OutcomeStatus.EXPIRED: JobStatus.FAILED,
    OutcomeStatus.DEAD: JobStatus.DEAD,
    OutcomeStatus.INTERRUPTED: JobStatus.FAILED,
}


class Fence:
    """The fence's statements for one database dialect, built once."""

    def __init__(self, dialect: str) -> None:
        self._end = _end_update()
        self._start = _start_update()
        self._end_upsert = _end_upsert(dialect)
        self._start_upsert = _start_upsert(dialect)
        t = Job.__table__.c
        self._insert_ended = (
            _insert(dialect)
            .on_conflict_do_nothing(index_elements=[t.id])
            .returning(t.id, t.key_id, t.created_at, t.admission, t.idempotency_key)
        )

    def insert_endings(self, connection: Connection, outcomes: list[Outcome]) -> dict[str, Ended]:
        """The rows of unrecorded jobs that end without a recorded start, inserted ended, in one
        statement (SQLAlchemy sends the rows as multi-row VALUES). A job whose row exists already
        (its start was recorded) is not in the answer: the caller ends it through `end`."""
        rows = [{**new_row(o.job), **_end_values(o)} for o in outcomes if o.job is not None]
        if not rows:
            return {}
        result = connection.execute(self._insert_ended, rows)
        return {row[0]: Ended(row[1], row[2], row[3], row[4]) for row in result}

    def record_start(self, connection: Connection, outcome: Outcome) -> bool:
        """Record that `outcome.attempt` started; False when the fence refuses it."""
        params = {
            "b_attempt": outcome.attempt,
            "b_worker": outcome.worker_id or None,
            "b_started": at(outcome),
        }
        if outcome.job is None:
            return bool(connection.execute(self._start, {**params, "b_id": outcome.job_id}).rowcount)
        row = {**new_row(outcome.job), **_start_values(outcome)}
        return connection.execute(self._start_upsert, {**row, **params}).first() is not None

    def end(self, connection: Connection, outcome: Outcome) -> Ended | None:
        """End the job with `outcome`, or None when the fence refuses it."""
        params = _end_params(outcome)
        if outcome.job is None:
            row = connection.execute(self._end, {**params, "b_id": outcome.job_id}).first()
        else:
            values = {**new_row(outcome.job), **_end_values(outcome)}
            row = connection.execute(self._end_upsert, {**values, **params}).first()
        return Ended(row[0], row[1], row[2], row[3]) if row is not None else None


class Ended:
    """What the fence returns about a job it just ended."""

    __slots__ = ("admission", "created_at", "idempotency_key", "key_id")

    def __init__(
        self,
        key_id: str,
        created_at: datetime,
        admission: dict[str, Any] | None,
        idempotency_key: str | None = None,
    ) -> None:
        self.key_id = key_id
        self.created_at = created_at
        self.admission = admission
        self.idempotency_key = idempotency_key

    @property
    def batch(self) -> bool:
        """A Batch API request (billed at the model's batch price): its idempotency key says so,
        and clients cannot send that prefix (gateway.inference.idempotency_key refuses it)."""
        return self.idempotency_key is not None and self.idempotency_key.startswith("batch:")


def new_row(job: JobMessage) -> dict[str, Any]:
    """The row of a job queued without one (`JobMessage.unrecorded`)."""
    assert job.unrecorded is not None
    return {
        "id": job.job_id,
        "key_id": job.unrecorded.key_id,
        "model": job.model,
        "endpoint": job.unrecorded.endpoint,
        "priority": job.priority.value,
        "stream": job.stream,
        "request_id": job.request_id,
        "request": request_document(job.request),
        "admission": job.unrecorded.admission,
        "reply_to": job.reply_to,
        "deadline_at": datetime.fromtimestamp(job.deadline, UTC) if job.deadline else None,
        "created_at": datetime.fromtimestamp(job.enqueued_at, UTC) if job.enqueued_at else utcnow(),
    }


def _start_values(outcome: Outcome) -> dict[str, Any]:
    return {
        "status": JobStatus.RUNNING.value,
        "attempts": outcome.attempt,
        "worker_id": outcome.worker_id or None,
        "started_at": at(outcome),
    }


def _end_values(outcome: Outcome) -> dict[str, Any]:
    return {
        "status": ENDINGS[outcome.status].value,
        "attempts": outcome.attempt,
        "worker_id": outcome.worker_id or None,
        "started_at": started_at(outcome),
        "finished_at": at(outcome),
        "error": outcome.error,
        "error_code": outcome.error_code,
        "result": result_of(outcome),
    }


def _end_params(outcome: Outcome) -> dict[str, Any]:
    return {
        "b_attempt": outcome.attempt,
        "b_status": ENDINGS[outcome.status].value,
        "b_started": started_at(outcome),
        "b_worker": outcome.worker_id or None,
        "b_ran": outcome.duration_ms is not None,
        "b_finished": at(outcome),
        "b_error": outcome.error,
        "b_error_code": outcome.error_code,
        "b_result": result_of(outcome),
    }


def _ending_set() -> dict[str, Any]:
    """The ending's column values, from bind parameters (shared by the UPDATE and the upsert).

    `started_at` and `worker_id`: the ending attempt's STARTED may not be recorded (coalesced into
    this write by the finalizer); the row then still names an older attempt — the worker that was
    lost, and when it began — so the ending attempt's own values replace them (`b_ran`: the attempt
    ran at all, unlike a dead letter or an expiry). Otherwise what its STARTED recorded stays. SQL
    sees the row as it was before the UPDATE.
    """
    t = Job.__table__.c
    newer = t.attempts < bindparam("b_attempt")
    started = bindparam("b_started", type_=UTCDateTime())
    worker = bindparam("b_worker", type_=String())
    return {
        "status": bindparam("b_status"),
        "attempts": bindparam("b_attempt"),
        "started_at": case(
            (and_(newer, bindparam("b_ran", type_=Boolean())), started),
            else_=func.coalesce(t.started_at, started),
        ),
        "worker_id": case(
            (and_(newer, worker.is_not(None)), worker), else_=func.coalesce(t.worker_id, worker)
        ),
        "finished_at": bindparam("b_finished", type_=UTCDateTime()),
        "error": bindparam("b_error"),
        "error_code": bindparam("b_error_code"),
        "result": bindparam("b_result", type_=JSON()),
    }


def _may_end() -> ColumnElement[bool]:
    t = Job.__table__.c
    return and_(t.status.in_(ACTIVE), t.attempts <= bindparam("b_attempt"))


def _may_start() -> ColumnElement[bool]:
    t = Job.__table__.c
    return and_(t.attempts < bindparam("b_attempt"), t.status.in_(ACTIVE))


def _start_set() -> dict[str, Any]:
    return {
        "status": JobStatus.RUNNING.value,
        "attempts": bindparam("b_attempt"),
        "worker_id": bindparam("b_worker", type_=String()),
        "started_at": bindparam("b_started", type_=UTCDateTime()),
    }


def _end_update() -> Update:
    t = Job.__table__.c
    return (
        update(Job)
        .where(t.id == bindparam("b_id"), _may_end())
        .values(_ending_set())
        .returning(t.key_id, t.created_at, t.admission, t.idempotency_key)
    )


def _start_update() -> Update:
    t = Job.__table__.c
    return update(Job).where(t.id == bindparam("b_id"), _may_start()).values(_start_set())


def _insert(dialect: str) -> Any:
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(Job)


def _end_upsert(dialect: str) -> Insert:
    t = Job.__table__.c
    statement = _insert(dialect)
    upsert: Insert = statement.on_conflict_do_update(
        index_elements=[t.id], set_=_ending_set(), where=_may_end()
    ).returning(t.key_id, t.created_at, t.admission, t.idempotency_key)
    return upsert


def _start_upsert(dialect: str) -> Insert:
    t = Job.__table__.c
    statement = _insert(dialect)
    upsert: Insert = statement.on_conflict_do_update(
        index_elements=[t.id], set_=_start_set(), where=_may_start()
    ).returning(t.id)
    return upsert


def result_of(outcome: Outcome) -> dict[str, Any] | None:
    """What is kept for `GET /v1/jobs/{id}` and idempotent repeats: the choices and the usage."""
    if not outcome.choices:
        return None
    result: dict[str, Any] = {
        "choices": msgspec.to_builtins(outcome.choices),  # the stored document is plain JSON
        "prompt_tokens": outcome.prompt_tokens,
        "completion_tokens": outcome.completion_tokens,
    }
    if result_chars(outcome) > MAX_ROW_CHARS:  # too large for the row: in object storage, or lost
        result["choices"] = []
        if outcome.kept_at:
            result[KEPT_AT] = outcome.kept_at
        else:
            result[EMBEDDINGS_OMITTED] = True
    return result


def started_at(outcome: Outcome) -> datetime:
    """When the ending attempt started: its end less the time it ran on the worker."""
    end = outcome.at or time.time()
    return datetime.fromtimestamp(end - (outcome.duration_ms or 0.0) / 1000.0, UTC)


def at(outcome: Outcome) -> datetime:
    return datetime.fromtimestamp(outcome.at or time.time(), UTC)
