"""`LiveStats`: the numbers behind `GET /api/stats` — the last hour per minute, and now.

Series come from the usage ledger (so every gateway replica answers the same), queue depth and
workers from the queue. A snapshot is kept `cache_s` seconds, so a dashboard polling every few
seconds from many browsers costs one ledger read per gateway per `cache_s`.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from gpucloud.db import Database, JobStatus, UsageRecord
from gpucloud.queue.protocol import JobQueue
from gpucloud.registry import ModelRegistry

_MINUTES = 60


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


class LiveStats:
    def __init__(
        self, db: Database, queue: JobQueue, registry: ModelRegistry, *, cache_s: float = 2.0
    ) -> None:
        self._db = db
        self._queue = queue
        self._registry = registry
        self._cache_s = cache_s
        self._cached: tuple[float, dict[str, Any]] | None = None

    async def snapshot(self) -> dict[str, Any]:
        now = time.time()
        if self._cached is not None and now - self._cached[0] < self._cache_s:
            return self._cached[1]
        series = await self._series(now)
        last = series[-1]
        body = {
            "generated_at": datetime.fromtimestamp(now, UTC).isoformat(),
            "current": {
                "requests_per_s": round(last["requests"] / 60, 3),
                "tokens_per_s": round((last["prompt_tokens"] + last["completion_tokens"]) / 60, 3),
                "completion_tokens_per_s": round(last["completion_tokens"] / 60, 3),
                "error_rate": round(last["errors"] / last["requests"], 4) if last["requests"] else 0.0,
                "p50_latency_ms": last["p50_latency_ms"],
                "p95_latency_ms": last["p95_latency_ms"],
                **await self._cluster(),
            },
            "series": series,
        }
        self._cached = (now, body)
        return body

    async def _series(self, now: float) -> list[dict[str, Any]]:
        """60 one-minute buckets, oldest first; the last one is the 60 s before `now`."""
        start = now - _MINUTES * 60
        u = UsageRecord
        query = select(u.created_at, u.latency_ms, u.prompt_tokens, u.completion_tokens, u.status).where(
            u.created_at >= datetime.fromtimestamp(start, UTC)
        )
        async with self._db.session() as session:
            rows = (await session.execute(query)).all()
        buckets: list[dict[str, Any]] = [
            {
                "minute": datetime.fromtimestamp(start + i * 60, UTC).isoformat(),
                "requests": 0,
                "errors": 0,
                "prompt_tokens": 0,
                "completion_tokens": 0,
                "_latencies": [],
            }
            for i in range(_MINUTES)
        ]
        for created_at, latency_ms, prompt, completion, status in rows:
            index = min(_MINUTES - 1, int((created_at.timestamp() - start) // 60))
            bucket = buckets[index]
            bucket["requests"] += 1
            bucket["prompt_tokens"] += prompt
            bucket["completion_tokens"] += completion
            bucket["errors"] += status not in (JobStatus.COMPLETED.value, JobStatus.CANCELLED.value)
            if latency_ms is not None:
                bucket["_latencies"].append(latency_ms)
        for bucket in buckets:
            latencies = bucket.pop("_latencies")
            bucket["p50_latency_ms"] = _percentile(latencies, 0.5)
            bucket["p95_latency_ms"] = _percentile(latencies, 0.95)
        return buckets

    async def _cluster(self) -> dict[str, Any]:
        workers = await self._queue.workers()
        depth: dict[str, int] = {}
        for card in self._registry.all():
            depth[card.id] = sum((await self._queue.depth(card.id)).values())
        return {
            "queue_depth": sum(depth.values()),
            "queue_depth_by_model": depth,
            "workers": len(workers),
            "slots": sum(w.slots for w in workers),
            "running": sum(w.running for w in workers),
        }
