"""`ReplyRouter`: the one reader of a gateway process's reply channel.

docs/architecture.md §4: a single task reads the process's channel and hands each event to the request
waiting for that job. That costs one blocking read per process instead of one per in-flight
request, and it is what lets the gateway hold thousands of streams on a few connections.
"""

from __future__ import annotations

import asyncio
import logging

from gpucloud.background import Background
from gpucloud.queue.protocol import Events, JobEvent, QueueError

log = logging.getLogger(__name__)


class ClientGone(Exception):
    """The client waiting on a watch went away (see `JobWatch.client_gone`)."""


class JobWatch:
    """Events of one job, in arrival order, for the request that waits on it."""

    def __init__(self, router: ReplyRouter, job_id: str) -> None:
        self.job_id = job_id
        self._router = router
        # None is put by `client_gone`: one queue to wait on, so waiting costs no task per event.
        self._events: asyncio.Queue[JobEvent | None] = asyncio.Queue()

    def put(self, event: JobEvent) -> None:
        self._events.put_nowait(event)

    def client_gone(self) -> None:
        """Wake the waiter with `ClientGone` (its client disconnected)."""
        self._events.put_nowait(None)

    async def next(self, timeout_s: float | None = None) -> JobEvent:
        """The next event; `TimeoutError` when none came within `timeout_s`, `ClientGone` when the
        client went away first."""
        async with asyncio.timeout(timeout_s):
            event = await self._events.get()
        if event is None:
            raise ClientGone
        return event

    def drain(self) -> list[JobEvent]:
        """Events already here, without waiting (lets a slow client take deltas in one write)."""
        events: list[JobEvent] = []
        while not self._events.empty():
            event = self._events.get_nowait()
            if event is not None:
                events.append(event)
        return events

    def close(self) -> None:
        self._router.forget(self.job_id)

    def __enter__(self) -> JobWatch:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class ReplyRouter:
    """Reads `reply_to` on `queue` and dispatches events to `JobWatch`es by job id."""

    def __init__(self, queue: Events, reply_to: str) -> None:
        self.reply_to = reply_to
        self._queue = queue
        self._watches: dict[str, JobWatch] = {}
        self._loop = Background(f"reply-router-{reply_to}", self._run)

    def watch(self, job_id: str) -> JobWatch:
        """Register interest before submitting, so no event can be missed."""
        watch = JobWatch(self, job_id)
        self._watches[job_id] = watch
        return watch

    def forget(self, job_id: str) -> None:
        self._watches.pop(job_id, None)

    async def start(self) -> None:
        self._loop.start()
        await asyncio.sleep(0)  # let the reader subscribe before the first submit

    async def close(self) -> None:
        await self._loop.close()

    async def _run(self) -> None:
        while True:
            try:
                async for batch in self._queue.read_events(self.reply_to):
                    self._dispatch(batch)
            except QueueError as exc:
                # The queue will come back; requests waiting meanwhile time out on their own.
                log.warning("reply channel unavailable, retrying: %s", exc)
                await asyncio.sleep(0.5)

    def _dispatch(self, batch: list[JobEvent]) -> None:
        for event in batch:
            watch = self._watches.get(event.job_id)
            if watch is not None:
                watch.put(event)
