"""`RedisFailureLog`: the login throttle's failures in Redis (cluster mode), shared by every
gateway replica. One sorted set per subject (`LimitNames.login_failures`), scored by the failure
time on Redis's clock (µs), trimmed to the window and expiring with it; each step is one script.
"""

from __future__ import annotations

import hashlib
import uuid

from gpucloud.limits.names import LimitNames
from gpucloud.redis_pools import RedisClient, redis_client

# KEYS[1] the subject's set; ARGV: window (µs), limit. Returns µs until a retry is allowed, or 0.
_RETRY_AFTER = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local limit = tonumber(ARGV[2])
if redis.call('ZCARD', KEYS[1]) < limit then return 0 end
local oldest = redis.call('ZRANGE', KEYS[1], -limit, -limit, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now)
"""
# KEYS[1] the subject's set; ARGV: window (µs), a unique member.
_RECORD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZADD', KEYS[1], now, ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]))
redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[1]) / 1000))
return 1
"""


class RedisFailureLog:
    def __init__(self, url: str, prefix: str) -> None:
        self._redis: RedisClient = redis_client(url, connect_timeout_s=1.0, socket_timeout_s=1.0)
        self._names = LimitNames(prefix)
        self._retry_after = self._redis.register_script(_RETRY_AFTER)
        self._record = self._redis.register_script(_RECORD)

    def _key(self, subject: str) -> str:
        # A digest, not the email: Redis holds no address book.
        return self._names.login_failures(hashlib.sha256(subject.encode()).hexdigest()[:32])

    async def retry_after(self, subject: str, limit: int, window_s: float) -> float | None:
        left_us = int(await self._retry_after(keys=[self._key(subject)], args=[int(window_s * 1e6), limit]))
        return left_us / 1e6 if left_us > 0 else None

    async def record(self, subject: str, window_s: float) -> None:
        await self._record(keys=[self._key(subject)], args=[int(window_s * 1e6), uuid.uuid4().hex])

    async def clear(self, subject: str) -> None:
        await self._redis.delete(self._key(subject))

    async def close(self) -> None:
        await self._redis.aclose()
