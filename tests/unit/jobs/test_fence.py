"""The fence on a real database: each job is ended once, by the newest attempt that started,
whatever order or repetition its outcomes come in; jobs queued without a row get one from their
first outcome; and what is kept of a result is bounded."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import msgspec
from sqlalchemy import Connection

from gpucloud.db import Database, Job
from gpucloud.engines.protocol import GenerationRequest
from gpucloud.jobs import JobStore, NewJob, new_job_id
from gpucloud.jobs.fence import Ended, Fence, result_of, started_at
from gpucloud.jobs.kept import EMBEDDINGS_OMITTED
from gpucloud.keys import KeyService, NewKey
from gpucloud.queue.protocol import Choice, JobMessage, Outcome, OutcomeStatus, Priority, Unrecorded

T = TypeVar("T")
CHOICES = [Choice(0, "ok", "stop")]


def _outcome(
    job_id: str, attempt: int, status: OutcomeStatus, job: JobMessage | None = None, **kw: object
) -> Outcome:
    fields: dict[str, object] = {"worker_id": f"w{attempt}", "at": time.time(), "duration_ms": 500.0}
    return Outcome(job_id, attempt, status, "gw", "m", job=job, **(fields | kw))  # type: ignore[arg-type]


async def _key(db: Database) -> str:
    return (await KeyService(db).create(NewKey(name="k")))[0].id


async def _recorded_job(db: Database) -> str:
    job_id = new_job_id()
    await JobStore(db).create(NewJob(job_id, await _key(db), "m", "chat", "normal", False, {}, "r"))
    return job_id


def _message(job_id: str, key_id: str) -> JobMessage:
    unrecorded = Unrecorded(key_id, "chat", {"ticket": 1})
    return JobMessage(
        job_id,
        "m",
        Priority.NORMAL,
        GenerationRequest("chat", "m"),
        "gw",
        enqueued_at=time.time() - 2,
        unrecorded=unrecorded,
    )


async def _in(db: Database, work: Callable[[Connection], T]) -> T:
    return await db.run_sync_write(work)


def _ending(fence: Fence, outcome: Outcome) -> Callable[[Connection], Ended | None]:
    return lambda connection: fence.end(connection, outcome)


async def _job(db: Database, job_id: str) -> Job:
    job = await JobStore(db).load(job_id)
    assert job is not None
    return job


async def test_a_recorded_job_ends_once_from_its_newest_started_attempt(db: Database) -> None:
    fence = Fence("sqlite")
    job_id = await _recorded_job(db)
    assert await _in(db, lambda c: fence.record_start(c, _outcome(job_id, 1, OutcomeStatus.STARTED)))
    assert await _in(db, lambda c: fence.record_start(c, _outcome(job_id, 2, OutcomeStatus.STARTED)))
    assert not await _in(db, lambda c: fence.record_start(c, _outcome(job_id, 1, OutcomeStatus.STARTED)))
    assert (
        await _in(db, lambda c: fence.end(c, _outcome(job_id, 1, OutcomeStatus.COMPLETED))) is None
    )  # stale
    ended = await _in(
        db, lambda c: fence.end(c, _outcome(job_id, 2, OutcomeStatus.COMPLETED, choices=CHOICES))
    )
    assert isinstance(ended, Ended)
    assert not ended.batch
    assert (
        await _in(db, lambda c: fence.end(c, _outcome(job_id, 2, OutcomeStatus.FAILED))) is None
    )  # ended once
    assert await _in(db, lambda c: fence.end(c, _outcome(job_id, 3, OutcomeStatus.COMPLETED))) is None
    assert not await _in(db, lambda c: fence.record_start(c, _outcome(job_id, 3, OutcomeStatus.STARTED)))
    job = await _job(db, job_id)
    assert (job.status, job.attempts, job.worker_id) == ("completed", 2, "w2")
    # Stored as plain JSON, every field of a choice encoded (the response bodies read it as is).
    stored = {"choices": msgspec.to_builtins(CHOICES), "prompt_tokens": 0, "completion_tokens": 0}
    assert job.result == stored


async def test_an_ending_whose_start_was_not_recorded_names_its_own_worker(db: Database) -> None:
    fence = Fence("sqlite")
    job_id = await _recorded_job(db)
    await _in(db, lambda c: fence.record_start(c, _outcome(job_id, 1, OutcomeStatus.STARTED)))
    await _in(
        db, lambda c: fence.end(c, _outcome(job_id, 2, OutcomeStatus.FAILED, error="boom", error_code="e"))
    )
    job = await _job(db, job_id)
    assert (job.status, job.attempts, job.worker_id, job.error, job.error_code) == (
        "failed",
        2,
        "w2",
        "boom",
        "e",
    )


async def test_each_ending_maps_to_its_job_status(db: Database) -> None:
    fence = Fence("sqlite")
    expected = {
        OutcomeStatus.CANCELLED: "cancelled",
        OutcomeStatus.EXPIRED: "failed",
        OutcomeStatus.DEAD: "dead",
        OutcomeStatus.INTERRUPTED: "failed",
    }
    for status, stored in expected.items():
        job_id = await _recorded_job(db)
        await _in(db, _ending(fence, _outcome(job_id, 1, status, duration_ms=None)))
        assert (await _job(db, job_id)).status == stored


async def test_an_unrecorded_job_gets_its_row_from_its_first_outcome(db: Database) -> None:
    fence = Fence("sqlite")
    key_id = await _key(db)
    started, ended_only = new_job_id(), new_job_id()
    assert await _in(
        db,
        lambda c: fence.record_start(
            c, _outcome(started, 1, OutcomeStatus.STARTED, _message(started, key_id))
        ),
    )
    assert (await _job(db, started)).status == "running"
    end = _outcome(started, 1, OutcomeStatus.COMPLETED, _message(started, key_id))
    ended = await _in(db, lambda c: fence.end(c, end))
    assert ended is not None
    assert (ended.key_id, ended.admission) == (key_id, {"ticket": 1})
    assert await _in(db, lambda c: fence.end(c, end)) is None
    outcomes = [
        _outcome(ended_only, 1, OutcomeStatus.COMPLETED, _message(ended_only, key_id)),
        _outcome(started, 1, OutcomeStatus.COMPLETED, _message(started, key_id)),  # has a row: not inserted
    ]
    inserted = await _in(db, lambda c: fence.insert_endings(c, outcomes))
    assert set(inserted) == {ended_only}
    row = await _job(db, ended_only)
    assert (row.status, row.key_id, row.endpoint) == ("completed", key_id, "chat")
    assert (
        await _in(db, lambda c: fence.insert_endings(c, [_outcome(ended_only, 1, OutcomeStatus.COMPLETED)]))
        == {}
    )


def test_batch_jobs_are_known_by_their_idempotency_key() -> None:
    assert Ended("k", started_at(_outcome("j", 1, OutcomeStatus.COMPLETED)), None, "batch:b:c").batch
    assert not Ended("k", started_at(_outcome("j", 1, OutcomeStatus.COMPLETED)), None, "client-key").batch


def test_the_kept_result_is_bounded_and_absent_without_choices() -> None:
    assert result_of(_outcome("j", 1, OutcomeStatus.FAILED)) is None
    small = [Choice(0, embedding_base64="A" * 100)]
    assert result_of(_outcome("j", 1, OutcomeStatus.COMPLETED, choices=small)) == {
        "choices": msgspec.to_builtins(small),
        "prompt_tokens": 0,
        "completion_tokens": 0,
    }
    huge = [Choice(0, embedding_base64="A" * ((1 << 20) + 1))]
    kept = result_of(_outcome("j", 1, OutcomeStatus.COMPLETED, choices=huge, prompt_tokens=7))
    assert kept == {"choices": [], "prompt_tokens": 7, "completion_tokens": 0, EMBEDDINGS_OMITTED: True}


def test_an_attempt_started_its_duration_before_its_end() -> None:
    outcome = _outcome("j", 1, OutcomeStatus.COMPLETED, at=1000.0, duration_ms=2500.0)
    assert started_at(outcome).timestamp() == 997.5
    assert started_at(_outcome("j", 1, OutcomeStatus.DEAD, at=1000.0, duration_ms=None)).timestamp() == 1000.0
