"""`build_queue`: the `JobQueue` that `Settings` asks for — in-process without Redis, Redis Streams
with it. Shared by the control plane (`runtime`) and `gpucloud worker`, which must not load the
control plane's modules (database, gateway) to get a queue."""

from __future__ import annotations

from gpucloud.queue.memory import MemoryJobQueue
from gpucloud.queue.protocol import JobQueue
from gpucloud.settings import Settings


def build_queue(settings: Settings) -> JobQueue:
    q = settings.queue
    url = settings.redis_dsn()
    if url is None:
        return MemoryJobQueue(
            max_depth=q.max_depth,
            lease_timeout_s=q.lease_timeout_s,
            max_attempts=q.max_attempts,
            fair_every=q.fair_every,
        )
    from gpucloud.queue.redis import RedisJobQueue  # only cluster mode needs the Redis client

    return RedisJobQueue(
        url,
        prefix=settings.redis_prefix,
        max_depth=q.max_depth,
        lease_timeout_s=q.lease_timeout_s,
        max_attempts=q.max_attempts,
        fair_every=q.fair_every,
    )
