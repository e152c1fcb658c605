"""Worker announcements and the queue epoch in Redis: a hash of worker id → JSON with its own expiry.

One hash (not a key per worker with a TTL) so that a gateway reads every worker in one HGETALL;
expired entries are dropped by whoever reads them.
"""

from __future__ import annotations

import time
import uuid
from typing import cast

from gpucloud.queue.codec import Codec
from gpucloud.queue.names import RedisNames
from gpucloud.queue.protocol import WorkerInfo
from gpucloud.queue.redis.connection import guard
from gpucloud.redis_pools import RedisClient


async def announce(
    redis: RedisClient, names: RedisNames, codec: Codec, worker: WorkerInfo, ttl_s: float
) -> None:
    entry = codec.worker_entry(worker, time.time() + ttl_s)
    with guard("announce"):
        pipe = redis.pipeline(transaction=False)
        pipe.hset(names.workers(), worker.worker_id, entry)
        for model in worker.models:
            pipe.hset(names.models_seen(), model, str(worker.at or time.time()))
        await pipe.execute()


async def withdraw(redis: RedisClient, names: RedisNames, worker_id: str) -> None:
    with guard("withdraw"):
        await redis.hdel(names.workers(), worker_id)


async def workers(redis: RedisClient, names: RedisNames, codec: Codec) -> list[WorkerInfo]:
    with guard("workers"):
        raw = cast(dict[str, str], await redis.hgetall(names.workers()))
    now = time.time()
    live, expired = [], []
    for worker_id, value in raw.items():
        worker, expires_at = codec.worker(value)
        if expires_at > now:
            live.append(worker)
        else:
            expired.append(worker_id)
    if expired:
        with guard("workers"):
            await redis.hdel(names.workers(), *expired)
    return live


async def known_models(redis: RedisClient, names: RedisNames) -> dict[str, float]:
    with guard("known models"):
        raw = cast(dict[str, str], await redis.hgetall(names.models_seen()))
    return {k: float(v) for k, v in raw.items()}


async def forget_model(redis: RedisClient, names: RedisNames, model: str) -> None:
    with guard("forget model"):
        await redis.hdel(names.models_seen(), model)


async def epoch(redis: RedisClient, names: RedisNames) -> str:
    with guard("epoch"):
        current = await redis.get(names.epoch())
        if current is None:
            await redis.set(names.epoch(), uuid.uuid4().hex, nx=True)
            current = await redis.get(names.epoch())
    return str(current)


# Take the lease if free or ours, and extend it; atomic so two gateways never both hold it.
_LEAD = """
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""


async def lead(redis: RedisClient, names: RedisNames, role: str, holder: str, ttl_s: float) -> bool:
    with guard("lead"):
        held = await redis.eval(_LEAD, 1, names.lease(role), holder, str(max(1, int(ttl_s * 1000))))
    return bool(held)


class PresenceMixin:
    """The presence half of `RedisJobQueue`'s protocol, over the functions above."""

    _redis: RedisClient
    _codec: Codec
    names: RedisNames

    async def announce(self, worker: WorkerInfo, ttl_s: float) -> None:
        await announce(self._redis, self.names, self._codec, worker, ttl_s)

    async def withdraw(self, worker_id: str) -> None:
        await withdraw(self._redis, self.names, worker_id)

    async def workers(self) -> list[WorkerInfo]:
        return await workers(self._redis, self.names, self._codec)

    async def known_models(self) -> dict[str, float]:
        return await known_models(self._redis, self.names)

    async def forget_model(self, model: str) -> None:
        await forget_model(self._redis, self.names, model)

    async def epoch(self) -> str:
        return await epoch(self._redis, self.names)

    async def lead(self, role: str, holder: str, ttl_s: float) -> bool:
        return await lead(self._redis, self.names, role, holder, ttl_s)
