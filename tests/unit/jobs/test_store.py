"""`JobStore` on a real database: rows are private to their key, queue positions follow priority
then age, dead jobs may be queued again, and only still-queued jobs may be discarded."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, insert, select, update

from gpucloud.db import Database, Job, JobStatus, UsageRecord
from gpucloud.db.models import utcnow
from gpucloud.errors import NotFound
from gpucloud.jobs.store import JobFilter, JobStore, NewJob, new_job_id
from gpucloud.keys import KeyService, NewKey, Principal


async def _principal(db: Database, role: str = "user") -> Principal:
    return Principal.of((await KeyService(db).create(NewKey(name="k", role=role)))[0])


async def _job(store: JobStore, key_id: str, priority: str = "normal", model: str = "m", **kw: object) -> str:
    job_id = new_job_id()
    await store.create(NewJob(job_id, key_id, model, "chat", priority, False, {"n": 1}, "r", **kw))  # type: ignore[arg-type]
    return job_id


async def _set(db: Database, job_id: str, **values: object) -> None:
    async with db.transaction() as connection:
        await connection.execute(update(Job).where(Job.id == job_id).values(**values))


def _usage(job_id: str, key_id: str, status: str, latency_ms: float) -> dict[str, object]:
    return {
        "job_id": job_id,
        "key_id": key_id,
        "model": "m",
        "status": status,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "total_tokens": 0,
        "latency_ms": latency_ms,
        "created_at": utcnow(),
        "day": "2030-01-01",
    }


def test_job_ids_are_unique_and_prefixed() -> None:
    ids = {new_job_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(i.startswith("job_") and len(i) == 36 for i in ids)


async def test_concurrent_creations_all_land_queued(db: Database) -> None:
    store = JobStore(db)
    owner = await _principal(db)
    ids = await asyncio.gather(*(_job(store, owner.key_id) for _ in range(20)))
    listed = await store.list(JobFilter(key_id=owner.key_id, limit=100))
    assert {j.id for j in listed} == set(ids)
    assert {(j.status, j.attempts) for j in listed} == {("queued", 0)}


async def test_a_job_is_private_to_its_key_except_to_admins(db: Database) -> None:
    store = JobStore(db)
    owner, other, admin = await _principal(db), await _principal(db), await _principal(db, "admin")
    job_id = await _job(store, owner.key_id, idempotency_key="idem-1")
    assert (await store.get(job_id, owner)).id == job_id
    assert (await store.get(job_id, admin)).id == job_id
    with pytest.raises(NotFound):
        await store.get(job_id, other)
    found = await store.find_idempotent(owner.key_id, "idem-1")
    assert found is not None
    assert found.id == job_id
    assert await store.find_idempotent(other.key_id, "idem-1") is None


async def test_positions_put_higher_classes_then_older_jobs_first(db: Database) -> None:
    store = JobStore(db)
    key = (await _principal(db)).key_id
    low = await _job(store, key, "low")
    normal_old = await _job(store, key, "normal")
    normal_new = await _job(store, key, "normal")
    high = await _job(store, key, "high")
    await _job(store, key, "high", model="other")
    running = await _job(store, key, "high")
    await _set(db, running, status=JobStatus.RUNNING.value)
    positions = {}
    for job_id in (low, normal_old, normal_new, high):
        job = await store.load(job_id)
        assert job is not None
        positions[job_id] = await store.position(job)
    assert positions == {high: 0, normal_old: 1, normal_new: 2, low: 3}


async def test_lists_filter_and_come_newest_first(db: Database) -> None:
    store = JobStore(db)
    key = (await _principal(db)).key_id
    first, second = await _job(store, key), await _job(store, key, model="x")
    await _set(db, first, status=JobStatus.COMPLETED.value)
    assert [j.id for j in await store.list(JobFilter(key_id=key))] == [second, first]
    assert [j.id for j in await store.list(JobFilter(status="completed"))] == [first]
    assert [j.id for j in await store.list(JobFilter(model="x"))] == [second]
    assert len(await store.list(JobFilter(limit=1))) == 1


async def test_only_a_queued_job_is_discarded(db: Database) -> None:
    store = JobStore(db)
    key = (await _principal(db)).key_id
    queued, running = await _job(store, key), await _job(store, key)
    await _set(db, running, status=JobStatus.RUNNING.value)
    await store.discard(queued)
    await store.discard(running)
    assert await store.load(queued) is None
    assert await store.load(running) is not None


async def test_a_dead_job_is_queued_again_and_its_ledger_row_removed(db: Database) -> None:
    store = JobStore(db)
    key = (await _principal(db)).key_id
    dead, done = await _job(store, key), await _job(store, key)
    await _set(
        db, dead, status="dead", error="lost", error_code="dead_lettered", finished_at=utcnow(), attempts=3
    )
    await _set(db, done, status="completed")
    async with db.transaction() as connection:
        await connection.execute(insert(UsageRecord).values(**_usage(dead, key, "dead", 0)))
    again = await store.requeue_dead(dead)
    assert again is not None
    assert (again.status, again.error, again.error_code, again.finished_at, again.attempts) == (
        "queued",
        None,
        None,
        None,
        3,
    )
    async with db.read() as connection:
        billed = await connection.execute(select(func.count()).where(UsageRecord.job_id == dead))
        assert billed.scalar_one() == 0
    assert await store.requeue_dead(done) is None
    assert await store.requeue_dead(dead) is None  # queued now, not dead


async def test_mean_service_time_comes_from_recent_completions(db: Database) -> None:
    store = JobStore(db)
    key = (await _principal(db)).key_id
    assert await store.mean_service_s("m") is None
    ended = [("completed", 1000), ("completed", 3000), ("failed", 90000)]
    rows = []
    for status, latency in ended:
        job_id = await _job(store, key)
        rows.append(_usage(job_id, key, status, latency))
    async with db.transaction() as connection:
        for row in rows:
            await connection.execute(insert(UsageRecord).values(**row))
    assert await store.mean_service_s("m") == pytest.approx(2.0)
    assert await store.mean_service_s("m", sample=1) == pytest.approx(3.0)
