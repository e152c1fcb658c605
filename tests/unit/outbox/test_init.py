"""The outbox: an event is recorded with its transaction, or not at all, and only known types."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gpucloud import outbox
from gpucloud.db import Database
from gpucloud.db.models import OutboxEvent
from gpucloud.keys import KeyService, NewKey


async def _events(db: Database) -> list[tuple[str, str, dict[str, object]]]:
    async with db.read() as connection:
        rows = await connection.execute(select(OutboxEvent.id, OutboxEvent.type, OutboxEvent.data))
        return [(r.id, r.type, r.data) for r in rows]


async def _record_then_fail(db: Database, key_id: str) -> None:
    async with db.transaction() as connection:
        await outbox.record(connection, key_id, "job.failed", {})
        raise RuntimeError("the change failed")


async def test_an_event_commits_with_its_transaction(db: Database) -> None:
    key, _ = await KeyService(db).create(NewKey(name="k"))
    async with db.transaction() as connection:
        event_id = await outbox.record(connection, key.id, "batch.completed", {"id": "batch_1"})
    assert event_id.startswith("evt_")
    with pytest.raises(RuntimeError):
        await _record_then_fail(db, key.id)
    assert await _events(db) == [(event_id, "batch.completed", {"id": "batch_1"})]


async def test_an_unknown_type_is_refused_before_writing(db: Database) -> None:
    async with db.transaction() as connection:
        with pytest.raises(ValueError, match="unknown event type"):
            await outbox.record(connection, "key_x", "job.exploded", {})
    assert await _events(db) == []
    assert outbox.new_event_id() != outbox.new_event_id()
