"""The outcome half of `RedisJobQueue`: workers report attempts, the finalizers read them.

One outcomes stream (`names.outcomes()`) read by the consumer group "finalizers": every gateway
runs a finalizer in it, and an outcome is deleted only when acknowledged, so none is lost unread.
`begin` and `complete` write an attempt's outcome together with its other effects (the cancel
check, its STARTED event; the lease fence and acknowledgement), in one transaction or script: on a
Redis Cluster those keys share the queue's hash slot (`gpucloud.queue.names`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
from redis.exceptions import ResponseError
from redis.typing import KeyT, StreamIdT

from gpucloud.queue.codec import Codec
from gpucloud.queue.names import RedisNames
from gpucloud.queue.protocol import JobEvent, Lease, Outcome, OutcomeStatus, StartedEvent, carried
from gpucloud.queue.redis import codec
from gpucloud.queue.redis.connection import block_ms, guard
from gpucloud.queue.redis.events import add_events
from gpucloud.queue.redis.scripts import Scripts
from gpucloud.redis_pools import RedisClient

# A finalizer holding an outcome this long without acknowledging it is taken to be dead.
OUTCOME_REDELIVERY_S = 30.0
# How often a finalizer looks for such outcomes (an XAUTOCLAIM round trip).
OUTCOME_RECLAIM_EVERY_S = 5.0

# What a Lua script takes in ARGV.
ScriptArg = str | int | float


class OutcomesMixin:
    """`begin`, `complete`, `report` and the finalizer's reads of `RedisJobQueue`."""

    _redis: RedisClient
    _codec: Codec
    _scripts: Scripts
    names: RedisNames
    _event_ttl_ms: int
    _outcome_group_ready: bool
    _outcomes_claimed_at: float  # monotonic time of the last outcome reclaim

    async def begin(self, lease: Lease) -> bool:
        job = lease.job
        started = Outcome(
            job_id=job.job_id,
            attempt=lease.attempt,
            status=OutcomeStatus.STARTED,
            reply_to=job.reply_to,
            model=job.model,
            worker_id=lease.worker_id,
            at=time.time(),
            job=carried(job),
        )
        event = StartedEvent(job.job_id, lease.attempt, lease.worker_id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.exists(self.names.cancelled(job.job_id))  # the cancel check rides along: one round trip
        pipe.xadd(self.names.outcomes(), {codec.OUTCOME_FIELD: self._codec.encode(started)})
        if job.stream:
            # Who runs it, for the INTERRUPTED outcome should this worker be lost mid-stream.
            pipe.hset(self.names.progress(job.job_id), "worker", lease.worker_id)
            pipe.pexpire(self.names.progress(job.job_id), self._event_ttl_ms)
        add_events(pipe, self.names, self._codec, job.reply_to, [event], self._event_ttl_ms)
        with guard("begin"):
            replies = await pipe.execute()
        return not int(replies[0])

    async def complete(self, lease: Lease, outcome: Outcome) -> None:
        job = lease.job
        keys = [
            self.names.jobs(job.model, job.priority),
            self.names.outcomes(),
            self.names.progress(job.job_id),
        ]
        args: list[ScriptArg] = [
            self.names.WORKERS_GROUP,
            lease.worker_id,
            lease.token,
            codec.deliveries(lease),
            self._codec.encode_str(msgspec.structs.replace(outcome, job=carried(job))),
        ]
        with guard("complete"):
            await self._scripts.complete(keys=keys, args=args)

    async def report(self, outcome: Outcome) -> None:
        with guard("report"):
            await self._redis.xadd(self.names.outcomes(), {codec.OUTCOME_FIELD: self._codec.encode(outcome)})

    async def read_outcomes(self, consumer: str, count: int, timeout_s: float) -> list[Outcome]:
        if count <= 0:
            return []
        deadline = time.monotonic() + max(0.0, timeout_s)
        with guard("read outcomes"):
            await self._ensure_outcome_group()
            outcomes = await self._reclaim_outcomes(consumer, count)
            while not outcomes:
                remaining = deadline - time.monotonic()
                outcomes = await self._read_new_outcomes(consumer, count, remaining)
                if remaining <= 0:
                    break
        return outcomes

    async def _reclaim_outcomes(self, consumer: str, count: int) -> list[Outcome]:
        """Outcomes a dead finalizer held, taken over. They wait OUTCOME_REDELIVERY_S before this
        applies to them at all, so looking every few seconds (not on every read, which would add a
        round trip to every job's path) is soon enough."""
        now = time.monotonic()
        if now - self._outcomes_claimed_at < OUTCOME_RECLAIM_EVERY_S:
            return []
        self._outcomes_claimed_at = now
        try:
            claimed: Any = await self._redis.xautoclaim(
                self.names.outcomes(),
                self.names.FINALIZERS_GROUP,
                consumer,
                min_idle_time=int(OUTCOME_REDELIVERY_S * 1000),
                start_id="0-0",
                count=count,
            )
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # The server lost the group (restarted without persistence): make it again.
            self._outcome_group_ready = False
            return []
        return codec.outcomes(self._codec, codec.entries(claimed[1]))

    async def _read_new_outcomes(self, consumer: str, count: int, remaining_s: float) -> list[Outcome]:
        block = block_ms(remaining_s) if remaining_s > 0 else None
        streams: dict[KeyT, StreamIdT] = {self.names.outcomes(): ">"}
        try:
            reply = await self._redis.xreadgroup(
                self.names.FINALIZERS_GROUP, consumer, streams, count=count, block=block
            )
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # The server lost the group (restarted without persistence): make it again.
            self._outcome_group_ready = False
            await self._ensure_outcome_group()
            return []
        return codec.outcomes(self._codec, codec.stream_entries(reply))

    async def _ensure_outcome_group(self) -> None:
        if self._outcome_group_ready:
            return
        try:
            await self._redis.xgroup_create(
                self.names.outcomes(), self.names.FINALIZERS_GROUP, "0", mkstream=True
            )
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._outcome_group_ready = True

    async def ack_outcomes(
        self, outcomes: Sequence[Outcome], replies: Mapping[str, Sequence[JobEvent]] | None = None
    ) -> None:
        ids = [outcome.outcome_id for outcome in outcomes if outcome.outcome_id]
        channels = {reply_to: events for reply_to, events in (replies or {}).items() if events}
        if not ids and not channels:
            return
        pipe = self._redis.pipeline(transaction=True)
        if ids:
            pipe.xack(self.names.outcomes(), self.names.FINALIZERS_GROUP, *ids)
            pipe.xdel(self.names.outcomes(), *ids)
        for reply_to, events in channels.items():
            # FINAL/ERROR events: no progress to count.
            add_events(pipe, self.names, self._codec, reply_to, events, self._event_ttl_ms)
        with guard("ack outcomes"):
            await pipe.execute()
