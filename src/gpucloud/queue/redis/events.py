"""The reply and cancellation half of `RedisJobQueue`: events to gateways, cancels to workers.

Events for the clients one gateway process holds go to that process's reply stream
(`names.events(reply_to)`), written together with the streamed jobs' progress in one
transaction: reclaim reads the progress to tell a stream that reached its client from one that
did not (docs/architecture.md §4). Cancels are a marker with a TTL plus a pub/sub announcement.
On a Redis Cluster every key here shares the queue's hash slot (`gpucloud.queue.names`), so the
transactions stay legal; pub/sub works there as on one server (a PUBLISH reaches every node).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import cast

from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from gpucloud.queue.codec import Codec
from gpucloud.queue.names import RedisNames
from gpucloud.queue.protocol import DeltaEvent, JobEvent, QueueUnavailable
from gpucloud.queue.redis import codec
from gpucloud.queue.redis.connection import MAX_BLOCK_S, AnyPipeline, block_ms, guard
from gpucloud.redis_pools import RedisClient, subscriber

log = logging.getLogger(__name__)

# Reply streams keep about this many batches: a bound for a gateway that died without reading.
EVENT_STREAM_MAXLEN = 100_000
# Events handed over per read: one gateway's reader drains a backlog in a few round trips.
EVENT_READ_COUNT = 1000


def add_events(
    pipe: AnyPipeline,
    names: RedisNames,
    wire: Codec,
    reply_to: str,
    events: Sequence[JobEvent],
    ttl_ms: int,
) -> None:
    """Queue on `pipe` the XADD of `events` to `reply_to`'s stream and the renewal of its TTL."""
    key = names.events(reply_to)
    pipe.xadd(key, {codec.EVENTS_FIELD: wire.encode(events)}, maxlen=EVENT_STREAM_MAXLEN)
    pipe.pexpire(key, ttl_ms)


class EventsMixin:
    """`publish`, `read_events` and cancellation of `RedisJobQueue` (state set by its `__init__`)."""

    _redis: RedisClient
    _codec: Codec
    names: RedisNames
    _event_ttl_ms: int
    _cancel_ttl_ms: int
    _event_cursors: dict[str, str]
    _cancelling: set[asyncio.Future[None]]  # cancels under way (a reference keeps each alive)

    async def publish(self, reply_to: str, events: Sequence[JobEvent]) -> None:
        if not events:
            return
        pipe = self._redis.pipeline(transaction=True)
        for job_id, (tokens, prompt) in _progress(events).items():
            # What reclaim reads to tell a stream that reached its client from one that did not.
            key = self.names.progress(job_id)
            pipe.hincrby(key, "completion", tokens)
            if prompt:
                pipe.hset(key, "prompt", prompt)
            pipe.pexpire(key, self._event_ttl_ms)
        add_events(pipe, self.names, self._codec, reply_to, events, self._event_ttl_ms)
        with guard("publish"):
            await pipe.execute()

    async def read_events(self, reply_to: str) -> AsyncGenerator[list[JobEvent], None]:
        """Batches for `reply_to`, from those published after the first read ("$").

        A reader that this object ran before for the same channel resumes where it stopped, so
        events published while the reader was restarting after an outage are not lost.
        """
        key = self.names.events(reply_to)
        cursor = self._event_cursors.get(reply_to)
        if cursor is None:
            with guard("read events"):
                tail = await self._redis.xrevrange(key, count=1)
            cursor = str(tail[0][0]) if tail else "0-0"
        while True:
            with guard("read events"):
                reply = await self._redis.xread(
                    {key: cursor}, count=EVENT_READ_COUNT, block=block_ms(MAX_BLOCK_S)
                )
            items = codec.stream_entries(reply)
            if not items:
                continue
            cursor = items[-1][0]
            self._event_cursors[reply_to] = cursor
            batch = codec.events(self._codec, items)
            if batch:
                yield batch

    async def cancel(self, job_id: str) -> None:
        """Mark the job cancelled and announce it, in a task of its own that the caller's
        cancellation does not stop: gateways cancel a job when its client has gone, from a
        `finally` of a request task that is itself being cancelled, where each of the caller's
        suspensions raises CancelledError again. The caller still sees the outcome (or its own
        cancellation); a failure nobody waits for any more is logged."""
        task = asyncio.ensure_future(self._mark_cancelled(job_id))
        self._cancelling.add(task)
        task.add_done_callback(_forget_cancel)
        task.add_done_callback(self._cancelling.discard)
        await asyncio.shield(task)

    async def _mark_cancelled(self, job_id: str) -> None:
        """Two commands, not a transaction: a cluster client refuses PUBLISH in a pipeline. The
        marker goes first: should the PUBLISH fail, the marker still keeps the job from starting."""
        with guard("cancel"):
            await self._redis.set(self.names.cancelled(job_id), "1", px=self._cancel_ttl_ms)
            await self._redis.publish(self.names.cancellations(), job_id)

    async def is_cancelled(self, job_id: str) -> bool:
        with guard("is_cancelled"):
            return bool(await self._redis.exists(self.names.cancelled(job_id)))

    async def watch_cancellations(self) -> AsyncGenerator[str, None]:
        """Cancelled job ids from the pub/sub channel; resubscribes (with backoff) when it drops.

        Pub/sub keeps no history: a cancel sent while disconnected is missed here, which is why a
        worker also checks the marker when it begins a job (`begin`).
        """
        backoff_s = 0.1
        while True:
            pubsub: PubSub | None = None
            try:
                with guard("watch cancellations"):
                    pubsub = await subscriber(self._redis)
                    await pubsub.subscribe(self.names.cancellations())
                backoff_s = 0.1
                while True:
                    with guard("watch cancellations"):
                        message = await pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        yield str(message["data"])
            except QueueUnavailable as exc:
                log.warning("cancellation channel lost (%s), subscribing again", exc)
            finally:
                # Closing a connection that is already broken may fail; it is being dropped anyway.
                if pubsub is not None:
                    with contextlib.suppress(RedisError):
                        await cast(Callable[[], Awaitable[None]], pubsub.aclose)()
            await asyncio.sleep(backoff_s)
            backoff_s = min(5.0, backoff_s * 2)


def _forget_cancel(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("could not cancel a job: %s", task.exception())


def _progress(events: Sequence[JobEvent]) -> dict[str, tuple[int, int]]:
    """Per job in `events`: completion tokens carried by its DELTA events, and its prompt tokens."""
    progress: dict[str, tuple[int, int]] = {}
    for event in events:
        if isinstance(event, DeltaEvent):
            done, prompt = progress.get(event.job_id, (0, 0))
            progress[event.job_id] = (done + event.tokens, max(prompt, event.prompt_tokens))
    return progress
