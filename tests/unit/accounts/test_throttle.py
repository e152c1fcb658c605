"""Sign-in throttling (`LoginThrottle`) over both failure logs. In process: failures counted per
account and per IP in a sliding window, the window reopening as the oldest failure leaves it, a
success clearing the account (not the IP), a bound on subjects tracked. In Redis: two throttles
(two gateways) share the counts; the keys live under the prefix and never name the email."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from gpucloud.accounts import throttle
from gpucloud.accounts.throttle import LoginThrottle, MemoryFailureLog
from gpucloud.accounts.throttle_redis import RedisFailureLog
from gpucloud.errors import RateLimited
from tests.support import REDIS_URL


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(time, "monotonic", fake)
    return fake


async def test_the_window_closes_at_the_limit_and_reopens_as_failures_age(clock: Clock) -> None:
    log = MemoryFailureLog()
    assert await log.retry_after("a", 3, 60) is None
    for _ in range(2):
        await log.record("a", 60)
        clock.now += 10
    assert await log.retry_after("a", 3, 60) is None  # two failures: under the limit
    await log.record("a", 60)
    assert await log.retry_after("a", 3, 60) == pytest.approx(40.0)  # the first leaves at 1060
    assert await log.retry_after("b", 3, 60) is None
    clock.now = 1060.0
    assert await log.retry_after("a", 3, 60) is None  # the oldest left: two remain


async def test_clearing_forgets_a_subject(clock: Clock) -> None:
    log = MemoryFailureLog()
    await log.record("a", 60)
    assert await log.retry_after("a", 1, 60) is not None
    await log.clear("a")
    await log.clear("never-seen")
    assert await log.retry_after("a", 1, 60) is None


async def test_the_oldest_subject_is_forgotten_past_the_tracking_bound(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(throttle, "_MAX_TRACKED", 2)
    log = MemoryFailureLog()
    for subject in ("a", "b", "c"):
        await log.record(subject, 60)
    assert await log.retry_after("a", 1, 60) is None
    assert await log.retry_after("b", 1, 60) is not None
    assert await log.retry_after("c", 1, 60) is not None


async def test_the_throttle_limits_accounts_and_ips_and_a_success_clears_only_the_account(
    clock: Clock,
) -> None:
    login = LoginThrottle(MemoryFailureLog(), account_limit=2, ip_limit=3, window_s=100)
    await login.failed("a@x", "10.0.0.1")
    await login.check("a@x", "10.0.0.1")
    await login.failed("a@x", "10.0.0.1")
    with pytest.raises(RateLimited) as limited:
        await login.check("a@x", "10.0.0.2")  # the account is closed from any IP
    assert limited.value.code == "too_many_sign_in_attempts"
    assert limited.value.retry_after_s == pytest.approx(100.0)
    await login.succeeded("a@x")
    await login.check("a@x", "10.0.0.2")
    await login.failed("b@x", "10.0.0.1")  # the IP's third failure
    with pytest.raises(RateLimited):
        await login.check("c@x", "10.0.0.1")  # a fresh account from that IP is refused too
    clock.now += 100
    await login.check("c@x", "10.0.0.1")


def _throttle(log: MemoryFailureLog | RedisFailureLog) -> LoginThrottle:
    return LoginThrottle(log, account_limit=3, ip_limit=5, window_s=60)


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
        assert all(n.startswith(f"{prefix}:limits:{{") and ":login-failures:" in n for n in names)
        assert not any("example.com" in n or "10.0.0" in n for n in names)
    finally:
        await first.close()
        await second.close()
