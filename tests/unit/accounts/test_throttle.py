"""`LoginThrottle` over both failure logs: the in-process one, and Redis shared by two throttles
(two gateways): the account and IP limits close, the right password clears the account, and the
Redis keys live under the prefix and never name the email."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from gpucloud.accounts.throttle import LoginThrottle, MemoryFailureLog
from gpucloud.accounts.throttle_redis import RedisFailureLog
from gpucloud.errors import RateLimited
from tests.support import REDIS_URL


def _throttle(log: MemoryFailureLog | RedisFailureLog) -> LoginThrottle:
    return LoginThrottle(log, account_limit=3, ip_limit=5, window_s=60)


async def test_the_account_limit_closes_and_a_success_reopens_it() -> None:
    throttle = _throttle(MemoryFailureLog())
    for _ in range(2):
        await throttle.failed("ada@example.com", "10.0.0.1")
    await throttle.check("ada@example.com", "10.0.0.1")
    await throttle.succeeded("ada@example.com")
    for _ in range(3):
        await throttle.check("ada@example.com", "10.0.0.1")
        await throttle.failed("ada@example.com", "10.0.0.1")
    with pytest.raises(RateLimited) as caught:
        await throttle.check("ada@example.com", "10.0.0.2")
    assert 59 <= caught.value.retry_after_s <= 60
    await throttle.check("bob@example.com", "10.0.0.2")


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    name = f"gctest-{uuid.uuid4().hex[:10]}"
    yield name
    redis = Redis.from_url(REDIS_URL)
    keys = [key async for key in redis.scan_iter(f"{name}:*")]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()


async def test_two_gateways_share_the_failures_in_redis(prefix: str) -> None:
    first, second = (
        _throttle(RedisFailureLog(REDIS_URL, prefix)),
        _throttle(RedisFailureLog(REDIS_URL, prefix)),
    )
    try:
        await first.failed("ada@example.com", "10.0.0.1")
        await second.failed("ada@example.com", "10.0.0.1")
        await first.check("ada@example.com", "10.0.0.1")
        await second.failed("ada@example.com", "10.0.0.1")  # the third, over both
        for throttle in (first, second):
            with pytest.raises(RateLimited):
                await throttle.check("ada@example.com", "10.0.0.9")
        await first.failed("bob@example.com", "10.0.0.1")
        await second.failed("eve@example.com", "10.0.0.1")  # the IP's fifth
        with pytest.raises(RateLimited):
            await second.check("carol@example.com", "10.0.0.1")
        await second.succeeded("ada@example.com")
        await first.check("ada@example.com", "10.0.0.9")
        redis = Redis.from_url(REDIS_URL)
        names = [key.decode() async for key in redis.scan_iter(f"{prefix}:*")]
        await redis.aclose()
        assert names
        assert all(n.startswith(f"{prefix}:limits:login-failures:") for n in names)
        assert not any("example.com" in n or "10.0.0" in n for n in names)
    finally:
        await first.close()
        await second.close()
