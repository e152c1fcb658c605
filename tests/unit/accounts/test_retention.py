"""Audit retention on a real, migrated SQLite database: rows past the retention are deleted and
newer ones kept; only the lease holder deletes; 0 days keeps everything (no task at all)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from gpucloud.accounts.audit import AuditLog, AuditRecord
from gpucloud.accounts.retention import AuditRetention
from gpucloud.db import AuditEntry, Database
from gpucloud.db.migrate import upgrade_async
from gpucloud.db.models import utcnow
from gpucloud.queue.memory import MemoryJobQueue


@pytest.fixture
async def audit(tmp_path: Path) -> AsyncIterator[AuditLog]:
    url = f"sqlite+aiosqlite:///{tmp_path}/a.db"
    await upgrade_async(url)
    db = Database(url)
    log = AuditLog(db)
    for n in range(6):
        await log.record(AuditRecord(f"usr_{n}", "POST /api/users", None, None, 201, "127.0.0.1", f"r{n}"))
    # The first four rows were written 10, 20, 30 and 40 days ago.
    async with db.transaction() as connection:
        for n in range(4):
            old = utcnow() - timedelta(days=10 * (n + 1))
            await connection.execute(update(AuditEntry).where(AuditEntry.actor == f"usr_{n}").values(at=old))
    yield log
    await db.close()


async def _actors(log: AuditLog) -> list[str]:
    async with log._db.read() as connection:
        return sorted(r[0] for r in await connection.execute(select(AuditEntry.actor)))


async def test_rows_past_retention_are_deleted_by_the_leader_only(audit: AuditLog) -> None:
    queue = MemoryJobQueue()
    assert await queue.lead("audit-retention", "other-gateway", 60.0)
    follower = AuditRetention(audit, queue, "this-gateway", days=25, every_s=1.0)
    assert await follower.step() == 0
    assert len(await _actors(audit)) == 6
    leader = AuditRetention(audit, MemoryJobQueue(), "this-gateway", days=25, every_s=1.0)
    assert await leader.step() == 2  # 30 and 40 days old
    assert await _actors(audit) == ["usr_0", "usr_1", "usr_4", "usr_5"]
    assert await leader.step() == 0


async def test_the_periodic_task_deletes_without_being_asked(audit: AuditLog) -> None:
    retention = AuditRetention(audit, MemoryJobQueue(), "this-gateway", days=15, every_s=0.05)
    retention.start()
    try:
        for _ in range(200):
            if len(await _actors(audit)) == 3:
                break
            await asyncio.sleep(0.05)
    finally:
        await retention.close()
    assert await _actors(audit) == ["usr_0", "usr_4", "usr_5"]


async def test_zero_days_keeps_every_row(audit: AuditLog) -> None:
    keeper = AuditRetention(audit, MemoryJobQueue(), "this-gateway", days=0, every_s=0.01)
    assert await keeper.step() == 0
    keeper.start()
    await asyncio.sleep(0.05)
    await keeper.close()
    async with audit._db.read() as connection:
        assert (await connection.execute(select(func.count()).select_from(AuditEntry))).scalar() == 6
