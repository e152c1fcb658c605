"""Job events: ended jobs of subscribed keys (or of any key of a subscribed organisation) become
one outbox event each, whatever is read twice; batch lines, unsubscribed keys and unfinished jobs
make none."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace

from sqlalchemy import select, update

from gpucloud.accounts.orgs import OrgService
from gpucloud.db import Database, Job, JobStatus
from gpucloud.db.models import OutboxEvent, utcnow
from gpucloud.jobs import JobStore, NewJob, new_job_id
from gpucloud.keycache import LocalKeyChanges
from gpucloud.keys import KeyService, NewKey
from gpucloud.webhooks.job_events import LOOKBACK, JobEvents, job_event, job_event_id
from gpucloud.webhooks.store import NewEndpoint, WebhookStore


async def _key(db: Database, events: list[str] | None) -> str:
    row, _ = await KeyService(db).create(NewKey(name="k"))
    if events is not None:
        await WebhookStore(db).create(NewEndpoint(row.id, "https://example.com/h", events))
    return row.id


async def _ended_job(
    db: Database,
    key_id: str,
    status: JobStatus,
    *,
    at: datetime | None = None,
    idempotency: str | None = None,
) -> str:
    job_id = new_job_id()
    new = NewJob(job_id, key_id, "m", "chat", "normal", False, {}, "r", idempotency_key=idempotency)
    await JobStore(db).create(new)
    async with db.transaction() as connection:
        values = {
            "status": status.value,
            "finished_at": at or utcnow(),
            "error": "boom",
            "error_code": "engine_error",
        }
        await connection.execute(update(Job).where(Job.id == job_id).values(**values))
    return job_id


async def _events(db: Database) -> dict[str, tuple[str, datetime]]:
    async with db.read() as connection:
        rows = await connection.execute(select(OutboxEvent.id, OutboxEvent.type, OutboxEvent.created_at))
        return {r.id: (r.type, r.created_at) for r in rows}


def test_the_event_of_a_completed_and_of_a_failed_job() -> None:
    finished = datetime(2030, 1, 1, tzinfo=datetime.now().astimezone().tzinfo)
    row = SimpleNamespace(
        id="job_ab", model="m", status="completed", finished_at=finished, error=None, error_code=None
    )
    assert job_event(row) == (
        "job.completed",
        {
            "id": "job_ab",
            "object": "job",
            "model": "m",
            "status": "completed",
            "finished_at": int(finished.timestamp()),
            "error": None,
        },
    )
    failed = SimpleNamespace(
        id="job_cd", model="m", status="dead", finished_at=None, error="x", error_code="y"
    )
    kind, data = job_event(failed)
    assert kind == "job.failed"
    assert (data["finished_at"], data["error"]) == (None, {"message": "x", "code": "y"})
    assert job_event_id("job_ab") == "evt_ab"


async def test_ended_jobs_of_subscribed_keys_are_recorded_once(db: Database) -> None:
    subscribed = await _key(db, ["job.completed", "job.failed"])
    batch_only = await _key(db, ["batch.completed"])
    completed = await _ended_job(db, subscribed, JobStatus.COMPLETED)
    dead = await _ended_job(db, subscribed, JobStatus.DEAD)
    await _ended_job(db, subscribed, JobStatus.CANCELLED)
    await _ended_job(db, subscribed, JobStatus.COMPLETED, idempotency="batch:b1:line-1")
    await _ended_job(db, batch_only, JobStatus.COMPLETED)
    await _ended_job(db, subscribed, JobStatus.COMPLETED, at=utcnow() - LOOKBACK - timedelta(minutes=1))
    events = JobEvents(db)
    assert await events.record() == 2
    recorded = await _events(db)
    assert {k: v[0] for k, v in recorded.items()} == {
        job_event_id(completed): "job.completed",
        job_event_id(dead): "job.failed",
    }
    assert await events.record() == 0
    events.reset()
    assert await JobEvents(db).record() == 0  # a new leader reads them again, records none twice
    later = await _ended_job(db, subscribed, JobStatus.FAILED)
    assert await events.record() == 1
    assert job_event_id(later) in await _events(db)


async def test_the_jobs_of_every_key_of_a_subscribed_organisation_are_recorded(db: Database) -> None:
    orgs, keys = OrgService(db, LocalKeyChanges()), KeyService(db)
    team, rivals = (await orgs.create("team")).id, (await orgs.create("rivals")).id
    maker, _ = await keys.create(NewKey(name="maker", org_id=team))
    colleague, _ = await keys.create(NewKey(name="colleague", org_id=team))
    outsider, _ = await keys.create(NewKey(name="outsider", org_id=rivals))
    endpoint = NewEndpoint(maker.id, "https://example.com/h", ["job.completed"], org_id=team)
    await WebhookStore(db).create(endpoint)
    ours = await _ended_job(db, colleague.id, JobStatus.COMPLETED)
    await _ended_job(db, outsider.id, JobStatus.COMPLETED)
    assert await JobEvents(db).record() == 1
    assert set(await _events(db)) == {job_event_id(ours)}


async def test_nothing_is_recorded_without_a_subscriber(db: Database) -> None:
    key = await _key(db, None)
    await _ended_job(db, key, JobStatus.COMPLETED)
    assert await JobEvents(db).record() == 0
    assert await _events(db) == {}


async def test_the_event_is_dated_at_the_jobs_end(db: Database) -> None:
    key = await _key(db, ["job.completed"])
    ended = utcnow() - timedelta(minutes=5)
    job = await _ended_job(db, key, JobStatus.COMPLETED, at=ended)
    await JobEvents(db).record()
    assert (await _events(db))[job_event_id(job)][1] == ended
