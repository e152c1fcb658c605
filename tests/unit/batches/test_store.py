"""`BatchStore` on a real database: status moves are guarded by the status they leave, a batch's
end writes its event with it, lines are recorded once and answered once, and counts follow."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gpucloud.batches.states import BatchStatus, LineState
from gpucloud.batches.store import BatchStore, Counts, LineResult, NewBatch
from gpucloud.db import Database
from gpucloud.db.models import OutboxEvent
from gpucloud.errors import Conflict, NotFound
from gpucloud.files import BatchRequestLine
from gpucloud.keys import KeyService, NewKey, Principal


async def _principal(db: Database, role: str = "user") -> Principal:
    row, _ = await KeyService(db).create(NewKey(name="k", role=role))
    return Principal.of(row)


async def _batch(store: BatchStore, principal: Principal, lines: int = 0) -> str:
    new = NewBatch(principal.key_id, "/v1/chat/completions", "file-in", "24h", 3600.0, {"team": "a"})
    row = await store.create(new)
    if lines:
        requests = [BatchRequestLine(f"c{n}", "/v1/chat/completions", {"model": "m"}) for n in range(lines)]
        await store.start(row, requests)
    return row.id


async def test_a_batch_is_created_validating_and_private_to_its_key(db: Database) -> None:
    store = BatchStore(db)
    owner, other, admin = await _principal(db), await _principal(db), await _principal(db, "admin")
    batch_id = await _batch(store, owner)
    row = await store.get(batch_id, owner)
    assert (row.status, row.meta) == ("validating", {"team": "a"})
    assert (row.expires_at - row.created_at).total_seconds() == pytest.approx(3600)
    assert (await store.get(batch_id, admin)).id == batch_id
    with pytest.raises(NotFound):
        await store.get(batch_id, other)
    assert [b.id for b in await store.active()] == [batch_id]


async def test_starting_records_the_lines_once_and_moves_to_in_progress(db: Database) -> None:
    store = BatchStore(db)
    owner = await _principal(db)
    batch_id = await _batch(store, owner, lines=3)
    row = await store.get(batch_id, owner)
    assert row.status == "in_progress"
    assert row.in_progress_at is not None
    await store.start(row, [BatchRequestLine("other", "/v1/completions", {"model": "m"})])  # a repeat
    pending = await store.lines(batch_id, LineState.PENDING)
    assert [(line.line, line.custom_id) for line in pending] == [(1, "c0"), (2, "c1"), (3, "c2")]
    assert [line.line for line in await store.lines(batch_id, LineState.PENDING, limit=2)] == [1, 2]


async def test_lines_are_queued_then_answered_once_and_counted(db: Database) -> None:
    store = BatchStore(db)
    batch_id = await _batch(store, await _principal(db), lines=4)
    await store.record(batch_id, [(1, "job_1"), (2, "job_2")], [])
    assert await store.in_flight(batch_id) == 2
    await store.record(batch_id, [(1, "job_other")], [])  # already submitted: unchanged
    assert {line.job_id for line in await store.lines(batch_id, LineState.SUBMITTED)} == {"job_1", "job_2"}
    ok = LineResult(200, body={"id": "chatcmpl-1"})
    await store.record(batch_id, [], [(1, ok), (3, LineResult(400, body={"error": {}}))])
    await store.record(batch_id, [], [(1, LineResult(500, body={"error": {}}))])  # answered once
    (first,) = [line for line in await store.lines(batch_id, LineState.DONE) if line.line == 1]
    assert (first.status_code, first.body) == (200, {"id": "chatcmpl-1"})
    await store.end_pending(batch_id, {"code": "batch_expired", "message": "m"})
    counts = await store.counts([batch_id, "batch_none"])
    assert counts[batch_id] == Counts(total=4, completed=1, failed=2, unfinished=1, expired=1)
    assert counts["batch_none"] == Counts()
    assert counts[batch_id].view() == {"total": 4, "completed": 1, "failed": 2}
    assert await store.unfinished(batch_id)
    await store.record(batch_id, [], [(2, ok)])
    assert not await store.unfinished(batch_id)


async def test_moves_are_guarded_by_the_status_they_leave(db: Database) -> None:
    store = BatchStore(db)
    batch_id = await _batch(store, await _principal(db))
    assert not await store.move(batch_id, [BatchStatus.IN_PROGRESS], BatchStatus.FINALIZING)
    assert await store.move(batch_id, [BatchStatus.VALIDATING], BatchStatus.FAILED, {"errors": {"data": []}})
    row = await store.load(batch_id)
    assert row is not None
    assert (row.status, row.errors) == ("failed", {"data": []})
    assert row.failed_at is not None


async def test_ending_writes_the_event_once(db: Database) -> None:
    store = BatchStore(db)
    owner = await _principal(db)
    batch_id = await _batch(store, owner, lines=1)
    row = await store.get(batch_id, owner)
    assert await store.end(row, BatchStatus.COMPLETED, {"output_file_id": "file-out"}, {"id": batch_id})
    assert not await store.end(row, BatchStatus.COMPLETED, {}, {"id": batch_id})
    assert not await store.end(row, BatchStatus.EXPIRED, {}, {"id": batch_id})  # ended already
    async with db.read() as connection:
        events = (await connection.execute(select(OutboxEvent.type, OutboxEvent.data))).all()
    assert [(e.type, e.data) for e in events] == [
        ("batch.completed", {"id": batch_id, "status": "completed"})
    ]
    assert (await store.get(batch_id, owner)).output_file_id == "file-out"
    assert await store.active() == []


async def test_cancelling_is_allowed_once_and_refused_after_the_end(db: Database) -> None:
    store = BatchStore(db)
    owner = await _principal(db)
    batch_id = await _batch(store, owner, lines=1)
    cancelling = await store.request_cancel(await store.get(batch_id, owner))
    assert cancelling.status == "cancelling"
    assert (await store.request_cancel(cancelling)).status == "cancelling"  # asking twice is fine
    await store.end(cancelling, BatchStatus.CANCELLED, {}, {"id": batch_id})
    with pytest.raises(Conflict) as ended:
        await store.request_cancel(await store.get(batch_id, owner))
    assert ended.value.code == "batch_ended"


async def test_pages_come_newest_first_from_a_cursor(db: Database) -> None:
    store = BatchStore(db)
    owner = await _principal(db)
    ids = [await _batch(store, owner) for _ in range(3)]
    await _batch(store, await _principal(db))
    assert [b.id for b in await store.page(owner, limit=2, after=None)] == ids[::-1][:2]
    assert [b.id for b in await store.page(owner, limit=10, after=ids[1])] == [ids[0]]
    with pytest.raises(NotFound):
        await store.page(owner, limit=10, after="batch_missing")
