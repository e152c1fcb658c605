"""`RedisJobQueue`: the JobQueue protocol on Redis Streams, for cluster mode (docs/architecture.md §1, §4).

This module holds the jobs half (submit, lease, renew, release, depth, dead letters); the
outcome, event and presence halves are mixins in `outcomes`, `events` and `presence`.

Layout (names in `gpucloud.queue.names`): one stream per (model, priority class) read by the
consumer group "workers" with the worker id as consumer; one outcomes stream read by the group
"finalizers"; one reply stream per `reply_to` channel; a progress hash per streamed job; a
cancel marker per job plus a pub/sub channel; a dead-letter hash and its time index.

Leases are stream deliveries: a lease is held while its entry is pending for its worker at the
delivery count it was given (`attempt = job.attempt_base + delivery count`), `renew` resets the
entry's idle time, and any worker's `lease` reclaims entries idle for `lease_timeout_s`.
Reclaim is done by `lease` (also between the slices of a blocking wait), not by a background
task: every worker polling a model reclaims for it within a quarter of the lease timeout. When no
worker polls a model any more, nothing is reclaimed (nobody could run its jobs anyway) and its
waiting clients are answered by the gateway's own deadline.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any, cast

from redis.exceptions import RedisError
from redis.typing import KeyT, StreamIdT

from gpucloud.queue import names as queue_names
from gpucloud.queue.codec import Codec
from gpucloud.queue.protocol import (
    PRIORITIES_HIGH_FIRST,
    JobMessage,
    Lease,
    Priority,
    QueueFull,
)
from gpucloud.queue.redis import codec, presence
from gpucloud.queue.redis.connection import block_ms, connect, guard
from gpucloud.queue.redis.events import EventsMixin
from gpucloud.queue.redis.outcomes import OutcomesMixin, ScriptArg
from gpucloud.queue.redis.scripts import Scripts

log = logging.getLogger(__name__)

# Idle time given to a released entry: far past any lease timeout, well under "now" (Redis
# clamps a larger IDLE to zero).
RELEASED_IDLE_MS = 365 * 24 * 3600 * 1000


class RedisJobQueue(OutcomesMixin, EventsMixin, presence.PresenceMixin):
    """The JobQueue protocol on Redis Streams (see the module docstring for the layout).

    Fairness: per `worker_id`, counting only jobs taken from the waiting classes (reclaimed
    deliveries come first and do not count), every `fair_every`-th job is taken from the lowest
    non-empty class instead of the highest, so low-priority work gets at least one lease in
    `fair_every` while higher classes are busy. The count lives in this object (one per worker
    process); a restarted worker starts counting again.

    Release: the entry stays in its stream and is re-claimed to the same consumer with a huge
    idle time and its delivery count decreased by one (XCLAIM IDLE … RETRYCOUNT … JUSTID), so the
    next `lease` of any worker reclaims it first and its attempt number is unchanged. It keeps
    its place ahead of newer jobs. A worker blocked in `lease` notices it within one poll interval
    (`lease_timeout_s / 4`, between 50 ms and 1 s), as it notices leases that expire.

    Depth counts jobs not yet delivered; deliveries held by (or lost with) a worker, and released
    ones awaiting reclaim, are not waiting and do not count towards `max_depth`.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "gc",
        max_depth: int = 1000,
        lease_timeout_s: float = 15.0,
        max_attempts: int = 3,
        fair_every: int = 8,
        event_ttl_s: float = 3600.0,
        cancel_ttl_s: float = 3600.0,
    ) -> None:
        if max_depth < 1 or max_attempts < 1 or fair_every < 1:
            raise ValueError("max_depth, max_attempts and fair_every must be at least 1")
        if lease_timeout_s <= 0 or event_ttl_s <= 0 or cancel_ttl_s <= 0:
            raise ValueError("lease_timeout_s, event_ttl_s and cancel_ttl_s must be positive")
        self.names = queue_names.RedisNames(prefix)
        self._max_depth = max_depth
        self._lease_timeout_ms = max(1, int(lease_timeout_s * 1000))
        self._max_attempts = max_attempts
        self._fair_every = fair_every
        self._event_ttl_ms = max(1, int(event_ttl_s * 1000))
        self._cancel_ttl_ms = max(1, int(cancel_ttl_s * 1000))
        # How often a blocked `lease` looks for expired or released deliveries.
        self._poll_s = min(1.0, max(0.05, lease_timeout_s / 4))
        self._redis = connect(url)
        self._codec = Codec()
        self._scripts = Scripts(self._redis)
        self._served: dict[str, int] = {}  # worker id → jobs taken from the waiting classes
        # reply channel → last event id read, so a reader restarted after an outage resumes
        self._event_cursors: dict[str, str] = {}
        self._cancelling: set[asyncio.Future[None]] = set()
        self._outcome_group_ready = False
        self._outcomes_claimed_at = float("-inf")  # monotonic time of the last outcome reclaim

    # lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        with guard("start"):
            await self._scripts.load()
        await self._check_eviction_policy()

    async def _check_eviction_policy(self) -> None:
        # An evicting Redis drops stream entries under memory pressure: jobs vanish silently.
        try:
            policy = cast(dict[str, str], await self._redis.config_get("maxmemory-policy"))
        except RedisError:
            return  # managed services often refuse CONFIG; nothing to check then
        value = policy.get("maxmemory-policy") or policy.get(b"maxmemory-policy")  # type: ignore[call-overload]
        if value not in (None, "noeviction", b"noeviction"):
            log.warning(
                "REDIS maxmemory-policy is %r, not 'noeviction': under memory pressure Redis will "
                "evict queued jobs and events. Set `maxmemory-policy noeviction`.",
                value,
            )

    async def close(self) -> None:
        await self._redis.aclose()

    async def ping(self) -> None:
        with guard("ping"):
            await self._redis.ping()

    # jobs ----------------------------------------------------------------------------------

    async def submit(self, job: JobMessage) -> bool:
        keys = [self.names.submitted(job.job_id, job.attempt_base), *self.names.model_jobs(job.model)]
        args: list[ScriptArg] = [
            self.names.WORKERS_GROUP,
            self._max_depth,
            job.priority.rank + 1,
            self._codec.encode_str(job),
            marker_ttl_ms(job),
        ]
        with guard("submit"):
            added, detail = cast(list[Any], await self._scripts.submit(keys=keys, args=args))
        if int(added) == 0:
            raise QueueFull(job.model, int(detail))
        return int(added) == 1  # 2: submitted before, still on the queue

    async def lease(self, worker_id: str, models: Sequence[str], count: int, timeout_s: float) -> list[Lease]:
        models = list(dict.fromkeys(models))
        if count <= 0 or not models:
            return []
        deadline = time.monotonic() + max(0.0, timeout_s)
        while True:
            leases, tails = await self._lease_once(worker_id, models, count)
            remaining = deadline - time.monotonic()
            if leases or remaining <= 0:
                return leases
            await self._wait_for_jobs(tails, min(remaining, self._poll_s))

    def _streams(self, models: Sequence[str]) -> list[str]:
        """The models' job streams, class-major (the lease script's KEYS order)."""
        return [self.names.jobs(model, priority) for priority in PRIORITIES_HIGH_FIRST for model in models]

    async def _lease_once(
        self, worker_id: str, models: Sequence[str], count: int
    ) -> tuple[list[Lease], dict[str, str]]:
        streams = self._streams(models)
        keys = [self.names.outcomes(), self.names.dead_jobs(), self.names.dead_order(), *streams]
        served = self._served.get(worker_id, 0)
        args: list[ScriptArg] = [
            self.names.WORKERS_GROUP,
            worker_id,
            count,
            self._lease_timeout_ms,
            self._max_attempts,
            self.names.progress_prefix(),
            served,
            self._fair_every,
            len(models),
        ]
        with guard("lease"):
            fresh, flat, tails = cast(list[Any], await self._scripts.lease(keys=keys, args=args))
        if int(fresh):
            self._served[worker_id] = served + int(fresh)
        leases = codec.leases_from_script(self._codec, worker_id, flat)
        return leases, dict(zip(streams, map(str, tails), strict=False))

    async def _wait_for_jobs(self, tails: dict[str, str], wait_s: float) -> None:
        """Block until an entry is added after `tails` or `wait_s` passes (never consumes it).

        A plain XREAD, not XREADGROUP: a group read could hand over entries from several streams
        at once, more than `count` and ignoring priority; this one only wakes us to run the lease
        script again, which takes jobs in order. Every idle worker of the model wakes for a new
        job and one wins it; with one agent per GPU machine that herd is small.
        """
        if not tails or wait_s < 0.001:
            return
        with guard("lease"):
            streams: dict[KeyT, StreamIdT] = {key: last for key, last in tails.items()}
            await self._redis.xread(streams, count=1, block=block_ms(wait_s))

    async def renew(self, leases: Sequence[Lease]) -> list[Lease]:
        if not leases:
            return []
        keys = [self.names.jobs(lease.job.model, lease.job.priority) for lease in leases]
        args: list[ScriptArg] = [self.names.WORKERS_GROUP]
        for lease in leases:
            args += [lease.worker_id, lease.token, codec.deliveries(lease)]
        with guard("renew"):
            held = cast(list[Any], await self._scripts.renew(keys=keys, args=args))
        return [lease for lease, ok in zip(leases, held, strict=True) if not int(ok)]

    async def release(self, lease: Lease) -> None:
        key = self.names.jobs(lease.job.model, lease.job.priority)
        args: list[ScriptArg] = [
            self.names.WORKERS_GROUP,
            lease.worker_id,
            lease.token,
            codec.deliveries(lease),
        ]
        with guard("release"):
            await self._scripts.release(keys=[key], args=[*args, RELEASED_IDLE_MS])

    # inspection ----------------------------------------------------------------------------

    async def depth(self, model: str) -> dict[Priority, int]:
        keys = self.names.model_jobs(model)
        with guard("depth"):
            counts = cast(list[Any], await self._scripts.depth(keys=keys, args=[self.names.WORKERS_GROUP]))
        return {priority: int(n) for priority, n in zip(PRIORITIES_HIGH_FIRST, counts, strict=True)}

    async def dead_letters(self, limit: int = 100) -> list[JobMessage]:
        if limit <= 0:
            return []
        with guard("dead letters"):
            job_ids = cast(list[str], await self._redis.zrange(self.names.dead_order(), 0, limit - 1))
            raws = await self._redis.hmget(self.names.dead_jobs(), job_ids) if job_ids else []
        return [codec.dead_letter(self._codec, raw)[0] for raw in raws if raw is not None]

    async def replay(self, job_id: str) -> bool:
        with guard("replay"):
            raw = await self._redis.hget(self.names.dead_jobs(), job_id)
            if raw is None:
                return False
            job, attempts = codec.dead_letter(self._codec, raw)
            job.attempt_base = attempts  # the database's fence keeps rejecting the old attempts
            keys = [self.names.jobs(job.model, job.priority), self.names.dead_jobs(), self.names.dead_order()]
            args: list[ScriptArg] = [self.names.WORKERS_GROUP, job_id, self._codec.encode_str(job)]
            return bool(await self._scripts.replay(keys=keys, args=args))


def marker_ttl_ms(job: JobMessage) -> int:
    """How long the job's submitted marker lives in Redis (`JobMessage.submitted_until`), at
    least a second."""
    now = time.time()
    return int(max(1.0, job.submitted_until(now) - now + 1.0) * 1000)
