"""`EventBatcher`: a streamed job's deltas on their way to the gateway.

While one publish is in flight, further deltas accumulate and go in the next publish, so a slow
channel (or client) costs fewer, larger writes instead of one round trip per token (DESIGN.md §4).
"""

from __future__ import annotations

import asyncio

from gpucloud.engines.protocol import Delta
from gpucloud.queue.protocol import EventKind, JobEvent, JobQueue, Lease


class EventBatcher:
    def __init__(self, queue: JobQueue, reply_to: str) -> None:
        self._queue = queue
        self._reply_to = reply_to
        self._pending: list[JobEvent] = []
        self._flushing: asyncio.Task[None] | None = None

    def add(self, lease: Lease, index: int, delta: Delta, prompt_tokens: int) -> None:
        data = {
            "index": index,
            "text": delta.text,
            "tokens": delta.tokens,
            "finish_reason": delta.finish_reason,
            "prompt_tokens": prompt_tokens,
        }
        self._pending.append(JobEvent(lease.job.job_id, EventKind.DELTA, lease.attempt, data))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            await self._queue.publish(self._reply_to, batch)

    async def flush(self) -> None:
        """Wait until every added delta has been published."""
        if self._flushing is not None:
            await asyncio.shield(self._flushing)
        if self._pending:
            await self._drain()
