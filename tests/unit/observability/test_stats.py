"""`LiveStats` (observability/stats.py) on a real migrated SQLite database and the in-process queue:
the last hour per minute from the usage ledger, errors and latency percentiles, cluster numbers
from the queue, and a short-lived cache."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gpucloud.db import Database, UsageRecord
from gpucloud.db.migrate import upgrade_async
from gpucloud.engines.protocol import GenerationRequest
from gpucloud.keys import KeyService, NewKey
from gpucloud.observability.stats import LiveStats
from gpucloud.queue.memory import MemoryJobQueue
from gpucloud.queue.messages import JobMessage, Priority, WorkerInfo
from gpucloud.registry import ModelRegistry


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    url = f"sqlite+aiosqlite:///{tmp_path}/stats.db"
    await upgrade_async(url)
    database = Database(url)
    yield database
    await database.close()


async def record(
    db: Database, key_id: str, seconds_ago: float, status: str, latency_ms: float | None
) -> None:
    at = datetime.fromtimestamp(time.time() - seconds_ago, UTC)
    async with db.session() as session:
        session.add(
            UsageRecord(
                job_id=f"job_{time.monotonic_ns()}",
                key_id=key_id,
                model="m",
                status=status,
                prompt_tokens=10,
                completion_tokens=20,
                total_tokens=30,
                latency_ms=latency_ms,
                created_at=at,
                day=at.strftime("%Y-%m-%d"),
            )
        )
        await session.commit()


async def test_the_last_hour_per_minute_and_now(db: Database) -> None:
    key, _ = await KeyService(db).create(NewKey(name="k"))
    for latency in (100.0, 200.0, 300.0, 400.0):
        await record(db, key.id, 5, "completed", latency)
    await record(db, key.id, 10, "failed", None)
    await record(db, key.id, 30 * 60, "completed", 50.0)  # half an hour ago
    await record(db, key.id, 2 * 3600, "completed", 50.0)  # outside the hour
    queue = MemoryJobQueue()
    await queue.announce(WorkerInfo("w1", ["m"], slots=4, running=1), 60)
    await queue.submit(
        JobMessage(
            "job_q", "m", Priority.NORMAL, GenerationRequest("chat", "m"), "gw", enqueued_at=time.time()
        )
    )
    registry = ModelRegistry(queue)
    await registry.refresh()
    stats = LiveStats(db, queue, registry, cache_s=60)
    body = await stats.snapshot()
    series = body["series"]
    assert len(series) == 60
    assert sum(bucket["requests"] for bucket in series) == 6
    last = series[-1]
    assert (last["requests"], last["errors"], last["completion_tokens"]) == (5, 1, 100)
    assert (last["p50_latency_ms"], last["p95_latency_ms"]) == (300.0, 400.0)
    assert [b["requests"] for b in series[28:32]].count(1) == 1
    current = body["current"]
    assert current["error_rate"] == 0.2
    assert current["requests_per_s"] == round(5 / 60, 3)
    assert (current["queue_depth"], current["queue_depth_by_model"], current["workers"]) == (1, {"m": 1}, 1)
    assert (current["slots"], current["running"]) == (4, 1)
    await record(db, key.id, 1, "completed", 10.0)
    assert await stats.snapshot() is body  # cached for cache_s
    fresh = await LiveStats(db, queue, registry, cache_s=0).snapshot()
    assert fresh["series"][-1]["requests"] == 6


async def test_an_idle_hour_has_no_errors_and_no_latency(db: Database) -> None:
    queue = MemoryJobQueue()
    registry = ModelRegistry(queue)
    body = await LiveStats(db, queue, registry).snapshot()
    assert body["current"]["error_rate"] == 0.0
    assert body["current"]["p50_latency_ms"] is None
    assert body["current"]["queue_depth"] == 0
