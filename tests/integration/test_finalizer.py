"""The finalizer's fence on the real databases: exactly one accepted ending and one usage row per
job, whatever order, repetition or staleness the outcomes arrive with."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gpucloud.db import Database, Job, UsageRecord
from gpucloud.db.migrate import upgrade_async
from gpucloud.engines.protocol import GenerationRequest
from gpucloud.jobs import Finalizer, JobStore, NewJob, new_job_id
from gpucloud.keys import KeyService, NewKey
from gpucloud.queue.memory import MemoryJobQueue
from gpucloud.queue.protocol import (
    Choice,
    EventKind,
    FinalEvent,
    JobMessage,
    Outcome,
    OutcomeStatus,
    Priority,
    Unrecorded,
)
from tests.support import create_pg_database_async, drop_pg_database_async


@pytest.fixture(params=["sqlite", "postgres"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    url = (
        await create_pg_database_async()
        if request.param == "postgres"
        else f"sqlite+aiosqlite:///{tmp_path}/f.db"
    )
    await upgrade_async(url)
    database = Database(url)
    try:
        yield database
    finally:
        await database.close()
        if request.param == "postgres":
            await drop_pg_database_async(url)


async def _job(db: Database) -> str:
    row, _ = await KeyService(db).create(NewKey(name="k"))
    job_id = new_job_id()
    await JobStore(db).create(
        NewJob(
            id=job_id,
            key_id=row.id,
            model="m",
            endpoint="chat",
            priority="normal",
            stream=False,
            request={},
            request_id="r",
        )
    )
    return job_id


def _outcome(job_id: str, attempt: int, status: OutcomeStatus, tokens: int = 5) -> Outcome:
    return Outcome(
        job_id=job_id,
        attempt=attempt,
        status=status,
        reply_to="gw",
        model="m",
        prompt_tokens=3,
        completion_tokens=tokens,
        at=time.time(),
    )


async def _state(db: Database, job_id: str) -> tuple[str, int, int, int]:
    async with db.session() as s:
        job = await s.get(Job, job_id)
        assert job is not None
        rows = (
            await s.execute(
                select(func.count(), func.coalesce(func.sum(UsageRecord.completion_tokens), 0)).where(
                    UsageRecord.job_id == job_id
                )
            )
        ).one()
    return job.status, job.attempts, int(rows[0]), int(rows[1])


async def test_started_then_completed_bills_once(db: Database) -> None:
    queue = MemoryJobQueue()
    fin = Finalizer(db, queue, "f")
    job_id = await _job(db)
    done = _outcome(job_id, 1, OutcomeStatus.COMPLETED)
    await fin.apply([_outcome(job_id, 1, OutcomeStatus.STARTED), done])
    await fin.apply([done])  # re-delivered after a finalizer crash: harmless
    assert await _state(db, job_id) == ("completed", 1, 1, 5)


async def test_stale_attempt_is_rejected_after_a_newer_one_started(db: Database) -> None:
    queue = MemoryJobQueue()
    events = queue.read_events("gw")
    assert isinstance(events, AsyncGenerator)  # closed at the end
    first_batch = asyncio.ensure_future(events.__anext__())  # subscribe before anything is published
    await asyncio.sleep(0)
    fin = Finalizer(db, queue, "f")
    job_id = await _job(db)
    await fin.apply([_outcome(job_id, 1, OutcomeStatus.STARTED), _outcome(job_id, 2, OutcomeStatus.STARTED)])
    await fin.apply([_outcome(job_id, 1, OutcomeStatus.COMPLETED, tokens=9)])  # the paused worker wakes up
    assert await _state(db, job_id) == ("running", 2, 0, 0)
    await fin.apply([_outcome(job_id, 2, OutcomeStatus.COMPLETED, tokens=4)])
    assert await _state(db, job_id) == ("completed", 2, 1, 4)
    batch = await asyncio.wait_for(first_batch, 5)
    assert [(e.kind, e.attempt) for e in batch] == [(EventKind.FINAL, 2)]  # only the accepted one is told
    await events.aclose()


@pytest.mark.parametrize("stream", [False, True])
async def test_final_event_carries_text_only_when_not_streamed(db: Database, stream: bool) -> None:
    queue = MemoryJobQueue()
    events = queue.read_events("gw")
    assert isinstance(events, AsyncGenerator)  # closed at the end
    first_batch = asyncio.ensure_future(events.__anext__())
    await asyncio.sleep(0)
    job_id = await _job(db)
    ending = _outcome(job_id, 1, OutcomeStatus.COMPLETED, tokens=2)
    ending.choices, ending.stream = [Choice(0, "hello there", "stop")], stream
    await Finalizer(db, queue, "f").apply([ending])
    (final,) = await asyncio.wait_for(first_batch, 5)
    assert isinstance(final, FinalEvent)
    assert (final.prompt_tokens, final.completion_tokens) == (3, 2)
    # A streamed client got the text with the deltas: its FINAL says how each choice ended.
    assert final.choices == [Choice(0, "" if stream else "hello there", "stop")]
    stored = await JobStore(db).load(job_id)
    assert stored is not None
    assert stored.result is not None
    assert stored.result["choices"][0]["text"] == "hello there"  # kept for repeats either way
    await events.aclose()


async def test_first_ending_wins_and_later_endings_are_rejected(db: Database) -> None:
    fin = Finalizer(db, MemoryJobQueue(), "f")
    job_id = await _job(db)
    await fin.apply(
        [
            _outcome(job_id, 1, OutcomeStatus.CANCELLED, tokens=2),
            _outcome(job_id, 1, OutcomeStatus.COMPLETED, tokens=7),
            _outcome(job_id, 2, OutcomeStatus.COMPLETED, tokens=7),
        ]
    )
    assert await _state(db, job_id) == ("cancelled", 1, 1, 2)


async def test_gateway_expiry_only_ends_a_job_no_worker_started(db: Database) -> None:
    fin = Finalizer(db, MemoryJobQueue(), "f")
    queued, running = await _job(db), await _job(db)
    await fin.apply([_outcome(running, 1, OutcomeStatus.STARTED)])
    await fin.apply(
        [_outcome(queued, 0, OutcomeStatus.EXPIRED, 0), _outcome(running, 0, OutcomeStatus.EXPIRED, 0)]
    )
    assert await _state(db, queued) == ("failed", 0, 1, 0)
    assert await _state(db, running) == ("running", 1, 0, 0)


async def test_dead_letter_and_interrupted_endings(db: Database) -> None:
    fin = Finalizer(db, MemoryJobQueue(), "f")
    dead, cut = await _job(db), await _job(db)
    await fin.apply(
        [_outcome(dead, 3, OutcomeStatus.DEAD, 0), _outcome(cut, 1, OutcomeStatus.INTERRUPTED, 6)]
    )
    assert await _state(db, dead) == ("dead", 3, 1, 0)
    assert await _state(db, cut) == ("failed", 1, 1, 6)  # the tokens the client received are billed


# Synchronous jobs are queued without a row: the finalizer writes it from the job the outcome carries.


async def _unrecorded(db: Database) -> JobMessage:
    row, _ = await KeyService(db).create(NewKey(name="k"))
    return JobMessage(
        job_id=new_job_id(),
        model="m",
        priority=Priority.NORMAL,
        request=GenerationRequest(kind="chat", model="m", messages=[{"role": "user", "content": "hi"}]),
        reply_to="gw",
        enqueued_at=time.time(),
        deadline=time.time() + 60,
        request_id="req-1",
        unrecorded=Unrecorded(key_id=row.id, endpoint="chat", admission=None),
    )


def _carrying(job: JobMessage, attempt: int, status: OutcomeStatus, tokens: int = 5) -> Outcome:
    outcome = _outcome(job.job_id, attempt, status, tokens)
    outcome.job = job
    return outcome


async def test_an_unrecorded_job_gets_its_row_and_one_usage_row_with_its_ending(db: Database) -> None:
    fin = Finalizer(db, MemoryJobQueue(), "f")
    jobs = [await _unrecorded(db) for _ in range(20)]
    done = [_carrying(job, 1, OutcomeStatus.COMPLETED, tokens=i + 1) for i, job in enumerate(jobs)]
    await fin.apply(done)  # one batch: the rows are inserted together
    await fin.apply(done[:5])  # re-delivered after a finalizer crash: re-told, never re-billed
    for i, job in enumerate(jobs):
        assert await _state(db, job.job_id) == ("completed", 1, 1, i + 1)
    async with db.session() as s:
        row = await s.get(Job, jobs[0].job_id)
    assert row is not None
    assert (row.key_id, row.request_id, row.endpoint, row.request["kind"]) == (
        jobs[0].unrecorded.key_id if jobs[0].unrecorded else "",
        "req-1",
        "chat",
        "chat",
    )
    assert row.queue_epoch is None  # never re-enqueued by the reconciler


async def test_an_unrecorded_job_started_in_one_batch_ends_behind_the_fence_in_another(db: Database) -> None:
    fin = Finalizer(db, MemoryJobQueue(), "f")
    job = await _unrecorded(db)
    await fin.apply([_carrying(job, 1, OutcomeStatus.STARTED), _carrying(job, 2, OutcomeStatus.STARTED)])
    assert await _state(db, job.job_id) == ("running", 2, 0, 0)
    await fin.apply([_carrying(job, 1, OutcomeStatus.COMPLETED, tokens=9)])  # the stale attempt
    assert await _state(db, job.job_id) == ("running", 2, 0, 0)
    await fin.apply([_carrying(job, 2, OutcomeStatus.COMPLETED, tokens=4)])
    assert await _state(db, job.job_id) == ("completed", 2, 1, 4)


async def test_first_ending_of_an_unrecorded_job_wins_within_a_batch(db: Database) -> None:
    fin = Finalizer(db, MemoryJobQueue(), "f")
    job = await _unrecorded(db)
    await fin.apply(
        [
            _carrying(job, 1, OutcomeStatus.CANCELLED, tokens=2),
            _carrying(job, 1, OutcomeStatus.COMPLETED, tokens=7),
            _carrying(job, 2, OutcomeStatus.COMPLETED, tokens=7),
        ]
    )
    assert await _state(db, job.job_id) == ("cancelled", 1, 1, 2)
