"""RedisLimitStore and RedisBudgetStore enforce limits exactly against a real Redis: bursts from one
store, from several stores and from several processes admit exactly the limit; tokens settle to
the actual count; slots are capped, released and expire; budgets stop at their cap and start from
their baseline once; an unreachable Redis fails fast; and the memory and Redis stores answer the
same sequence alike.

Every test works under its own key prefix and deletes its keys afterwards."""

from __future__ import annotations

import asyncio
import math
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from gpucloud.limits import (
    LimitNames,
    Limits,
    LimitStore,
    LimitUnavailable,
    MemoryLimitStore,
    RedisBudgetStore,
    RedisLimitStore,
)

pytestmark = pytest.mark.redis

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def prefix() -> str:
    return f"gctest-{uuid.uuid4().hex}"


@pytest.fixture
async def raw(prefix: str) -> AsyncIterator[Redis]:
    """A plain client, to look at what the stores wrote; deletes the test's keys at the end."""
    client = Redis.from_url(REDIS_URL, decode_responses=True)
    yield client
    keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=1000)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
async def make_store(prefix: str, raw: Redis) -> AsyncIterator[Callable[..., RedisLimitStore]]:
    """Limit stores on the test's prefix (several = several gateway replicas)."""
    stores: list[RedisLimitStore] = []

    def make(**options: Any) -> RedisLimitStore:
        stores.append(RedisLimitStore(REDIS_URL, prefix=prefix, **options))
        return stores[-1]

    yield make
    for store in stores:
        await store.close()


@pytest.fixture
async def make_budgets(prefix: str, raw: Redis) -> AsyncIterator[Callable[..., RedisBudgetStore]]:
    stores: list[RedisBudgetStore] = []

    def make(**options: Any) -> RedisBudgetStore:
        stores.append(RedisBudgetStore(REDIS_URL, prefix=prefix, **options))
        return stores[-1]

    yield make
    for store in stores:
        await store.close()


# --- exact counts under bursts ---------------------------------------------------------------------


# A thousand admissions at once queue for the pool's 64 connections: on a busy machine that takes
# longer than a gateway's 2 s bound on waiting for Redis, which is not what these tests measure.
BURST_WAIT_S = 30.0


async def test_burst_from_one_store_admits_exactly_the_limit(
    make_store: Callable[..., RedisLimitStore],
) -> None:
    store = make_store(wait_s=BURST_WAIT_S)
    limits = Limits(rpm=100)
    decisions = await asyncio.gather(*(store.admit("k", limits, f"r{i}", 0) for i in range(1000)))
    assert sum(d.allowed for d in decisions) == 100
    refused = [d for d in decisions if not d.allowed]
    assert {d.reason for d in refused} == {"requests"}
    assert all(0 < d.retry_after_s <= 60 and d.remaining_requests == 0 for d in refused)


async def test_burst_across_three_stores_admits_exactly_the_limit(
    make_store: Callable[..., RedisLimitStore],
) -> None:
    stores = [make_store(wait_s=BURST_WAIT_S) for _ in range(3)]
    limits = Limits(rpm=100)
    decisions = await asyncio.gather(*(stores[i % 3].admit("k", limits, f"r{i}", 0) for i in range(300)))
    assert sum(d.allowed for d in decisions) == 100


# Each process: connect, wait for the common start time, then admit its share all at once.
_GATEWAY = """
import asyncio, sys, time
from gpucloud.limits import Limits, RedisLimitStore

async def main(url, prefix, worker, count, start):
    store = RedisLimitStore(url, prefix=prefix)
    await store.peek("k", Limits(rpm=100))  # connect before the start
    await asyncio.sleep(max(0.0, start - time.time()))
    limits = Limits(rpm=100)
    decisions = await asyncio.gather(*(store.admit("k", limits, f"{worker}-{i}", 0) for i in range(count)))
    await store.close()
    print(sum(d.allowed for d in decisions))

url, prefix, worker, count, start = sys.argv[1:]
asyncio.run(main(url, prefix, worker, int(count), float(start)))
"""


async def test_burst_across_three_processes_admits_exactly_the_limit(prefix: str, raw: Redis) -> None:
    start = time.time() + 2.0
    shares = (333, 333, 334)
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _GATEWAY,
            REDIS_URL,
            prefix,
            str(n),
            str(share),
            str(start),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for n, share in enumerate(shares)
    ]
    outputs = [await asyncio.wait_for(proc.communicate(), timeout=60) for proc in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err.decode()
    allowed = [int(out) for out, _ in outputs]
    assert sum(allowed) == 100
    assert await raw.zcard(LimitNames(prefix).window("k")) == 100


# --- tokens ----------------------------------------------------------------------------------------


async def test_tokens_are_reserved_then_settled_to_actual(make_store: Callable[..., RedisLimitStore]) -> None:
    store = make_store()
    limits = Limits(tpm=1000)
    decisions = await asyncio.gather(*(store.admit("k", limits, f"r{i}", 300) for i in range(20)))
    admitted = [f"r{i}" for i, d in enumerate(decisions) if d.allowed]
    assert len(admitted) == 3
    refused = [d for d in decisions if not d.allowed]
    assert all(d.reason == "tokens" and d.remaining_tokens == 100 for d in refused)
    assert all(55 < d.retry_after_s <= 60 for d in refused)

    await asyncio.gather(*(store.settle("k", rid, 50) for rid in admitted))
    await store.settle("k", admitted[0], 50)  # idempotent
    d = await store.peek("k", limits)
    assert d.allowed
    assert d.remaining_tokens == 850
    more = await asyncio.gather(*(store.admit("k", limits, f"s{i}", 300) for i in range(10)))
    assert sum(d.allowed for d in more) == 2
    assert (await store.peek("k", limits)).remaining_tokens == 250


async def test_refused_request_consumes_nothing(
    make_store: Callable[..., RedisLimitStore], raw: Redis
) -> None:
    store = make_store()
    limits = Limits(rpm=2, tpm=100, max_concurrency=2)
    d = await store.admit("k", limits, "big", 200)
    assert not d.allowed
    assert d.reason == "tokens"
    assert d.remaining_requests == 2
    assert await raw.zcard(store.names.window("k")) == 0
    assert await raw.zcard(store.names.slots("k")) == 0
    assert (await store.admit("k", limits, "a", 50)).allowed
    assert (await store.admit("k", limits, "b", 50)).allowed


async def test_large_token_counts_stay_exact(make_store: Callable[..., RedisLimitStore]) -> None:
    store = make_store()
    limits = Limits(tpm=3 * 10**15)
    assert (await store.admit("k", limits, "a", 10**15)).allowed
    await store.settle("k", "a", 10**15 + 1)
    d = await store.admit("k", limits, "b", 10**15)
    assert d.allowed
    assert d.remaining_tokens == 10**15 - 1


# --- concurrency -----------------------------------------------------------------------------------


async def test_concurrency_cap_holds_under_a_burst(make_store: Callable[..., RedisLimitStore]) -> None:
    store = make_store()
    limits = Limits(max_concurrency=5)
    decisions = await asyncio.gather(*(store.admit("k", limits, f"r{i}", 0) for i in range(50)))
    admitted = [f"r{i}" for i, d in enumerate(decisions) if d.allowed]
    assert len(admitted) == 5
    assert {d.reason for d in decisions if not d.allowed} == {"concurrency"}
    await asyncio.gather(*(store.release("k", rid) for rid in admitted))
    await store.release("k", admitted[0])  # idempotent
    again = await asyncio.gather(*(store.admit("k", limits, f"s{i}", 0) for i in range(50)))
    assert sum(d.allowed for d in again) == 5


async def test_concurrency_slots_expire(make_store: Callable[..., RedisLimitStore]) -> None:
    store = make_store(slot_ttl_s=0.3)
    limits = Limits(max_concurrency=1)
    assert (await store.admit("k", limits, "crashed", 0)).allowed
    d = await store.admit("k", limits, "b", 0)
    assert not d.allowed
    assert 0 < d.retry_after_s <= 0.3  # the lease ends before the 1 s hint
    await asyncio.sleep(0.35)
    assert (await store.admit("k", limits, "b", 0)).allowed


async def test_keys_expire_when_idle(make_store: Callable[..., RedisLimitStore], raw: Redis) -> None:
    store = make_store(slot_ttl_s=30)
    await store.admit("k", Limits(rpm=5, tpm=100, max_concurrency=2), "r", 10)
    for key in (store.names.window("k"), store.names.tokens("k")):
        assert 60_000 < await raw.pttl(key) <= 120_000
    assert 30_000 < await raw.pttl(store.names.slots("k")) <= 90_000
    assert await raw.exists(store.names.window("unlimited")) == 0


async def test_unreachable_redis_raises_limit_unavailable_fast() -> None:
    url = "redis://user:s3cret-pw@127.0.0.1:1/0"
    store = RedisLimitStore(url)
    budgets = RedisBudgetStore(url)

    async def ledger() -> int:
        return 0

    calls: list[Awaitable[object]] = [
        store.admit("k", Limits(rpm=1), "r", 1),
        store.settle("k", "r", 1),
        store.release("k", "r"),
        store.peek("k", Limits(rpm=1)),
        budgets.reserve("k", "p", 10, 1, "r", 60, ledger),
        budgets.settle("k", "p", "r", 1),
        budgets.remaining("k", "p", 10, ledger),
    ]
    started = time.monotonic()
    for call in calls:
        with pytest.raises(LimitUnavailable) as info:
            await call
        assert "s3cret" not in str(info.value)
        assert "127.0.0.1" not in str(info.value)
    assert time.monotonic() - started < 3.0
    await store.close()
    await budgets.close()


# --- budgets ---------------------------------------------------------------------------------------


class Ledger:
    """What the usage ledger says was spent; counts how often it was read."""

    def __init__(self, spent: int, delay_s: float = 0.0) -> None:
        self.spent = spent
        self.delay_s = delay_s
        self.reads = 0

    async def __call__(self) -> int:
        self.reads += 1
        await asyncio.sleep(self.delay_s)
        return self.spent


async def test_budget_concurrent_reserves_stop_at_the_cap(
    make_budgets: Callable[..., RedisBudgetStore],
) -> None:
    budgets = make_budgets()
    ledger = Ledger(0, delay_s=0.01)
    results = await asyncio.gather(
        *(budgets.reserve("k", "tokens:2026-11", 100, 10, f"r{i}", 3600, ledger) for i in range(50))
    )
    admitted = [f"r{i}" for i, (ok, _) in enumerate(results) if ok]
    assert len(admitted) == 10
    assert ledger.reads == 1
    assert all(left == 0 for ok, left in results if not ok)

    await asyncio.gather(*(budgets.settle("k", "tokens:2026-11", rid, 7) for rid in admitted))
    await budgets.settle("k", "tokens:2026-11", admitted[0], 7)  # idempotent
    assert await budgets.remaining("k", "tokens:2026-11", 100, ledger) == 30
    again = await asyncio.gather(
        *(budgets.reserve("k", "tokens:2026-11", 100, 10, f"s{i}", 3600, ledger) for i in range(50))
    )
    assert sum(ok for ok, _ in again) == 3
    assert ledger.reads == 1


async def test_budget_initialisers_agree_on_the_first_baseline(
    make_budgets: Callable[..., RedisBudgetStore], raw: Redis
) -> None:
    # Two gateways find the counter missing at once and read different baselines (the ledger
    # moved between their reads): the first one written stands for both.
    first, second = make_budgets(), make_budgets()
    ledgers = [Ledger(30, delay_s=0.02), Ledger(60, delay_s=0.05)]
    results = await asyncio.gather(
        *(
            store.reserve("k", "usd:2026-11-23", 100, 10, f"r{n}-{i}", 60, ledger)
            for i in range(10)
            for n, (store, ledger) in enumerate(zip((first, second), ledgers, strict=True))
        )
    )
    assert [ledger.reads for ledger in ledgers] == [1, 1]
    assert sum(ok for ok, _ in results) == 7  # 100 - 30 leaves room for 7 reservations of 10
    assert await first.remaining("k", "usd:2026-11-23", 100, ledgers[0]) == 0
    ttl = await raw.pttl(first.names.budget("k", "usd:2026-11-23"))
    assert 50_000 < ttl <= 60_000
    assert await raw.pttl(first.names.budget_holds("k", "usd:2026-11-23")) <= ttl


async def test_budget_remaining_reads_without_creating(
    make_budgets: Callable[..., RedisBudgetStore], raw: Redis
) -> None:
    budgets = make_budgets()
    assert await budgets.remaining("k", "p", 100, Ledger(95)) == 5
    assert await budgets.remaining("k", "p", 100, Ledger(120)) == 0
    assert await raw.exists(budgets.names.budget("k", "p")) == 0


async def test_budget_hold_not_settled_counts_as_spent(make_budgets: Callable[..., RedisBudgetStore]) -> None:
    budgets = make_budgets(hold_ttl_s=0.2)
    ledger = Ledger(0)
    assert await budgets.reserve("k", "p", 100, 40, "crashed", 3600, ledger) == (True, 60)
    await asyncio.sleep(0.25)
    await budgets.settle("k", "p", "crashed", 1)  # too late: counted in full
    assert await budgets.remaining("k", "p", 100, ledger) == 60


async def test_budget_large_amounts_stay_exact(make_budgets: Callable[..., RedisBudgetStore]) -> None:
    budgets = make_budgets(hold_ttl_s=0.2)
    ledger = Ledger(10**15)
    cap = 2**53 - 1
    assert await budgets.reserve("k", "usd", cap, 10**15, "a", 3600, ledger) == (True, cap - 2 * 10**15)
    await budgets.settle("k", "usd", "a", 10**15 + 3)
    assert await budgets.reserve("k", "usd", cap, 10**15, "b", 3600, ledger) == (True, cap - 3 * 10**15 - 3)
    await asyncio.sleep(0.25)  # b's hold expires and is counted in full
    assert await budgets.remaining("k", "usd", cap, ledger) == cap - 3 * 10**15 - 3


# --- the memory and Redis stores answer alike ---------------------------------------------------------


@pytest.fixture(params=["memory", "redis"])
async def any_store(request: pytest.FixtureRequest, prefix: str, raw: Redis) -> AsyncIterator[LimitStore]:
    store: LimitStore = (
        MemoryLimitStore() if request.param == "memory" else RedisLimitStore(REDIS_URL, prefix=prefix)
    )
    yield store
    await store.close()


async def test_both_stores_answer_the_same_sequence_alike(any_store: LimitStore) -> None:
    limits = Limits(rpm=3, tpm=1000, max_concurrency=2)
    sequence = [
        ("admit", "a", 400),
        ("admit", "b", 400),
        ("admit", "c", 100),  # no slot left
        ("settle", "a", 100),
        ("admit", "c", 400),  # fits after a settled to 100
        ("release", "b", 0),
        ("admit", "d", 200),  # 900 + 200 > 1000 tokens, and no request left either
        ("admit", "c", 400),  # a retry of c: nothing more consumed
        ("peek", "", 0),
    ]
    answers = []
    for action, rid, tokens in sequence:
        if action == "admit":
            answers.append(await any_store.admit("k", limits, rid, tokens))
        elif action == "settle":
            await any_store.settle("k", rid, tokens)
        elif action == "release":
            await any_store.release("k", rid)
        else:
            answers.append(await any_store.peek("k", limits))

    expected = [
        (True, None, 2, 600),
        (True, None, 1, 200),
        (False, "concurrency", 1, 200),
        (True, None, 0, 100),
        (False, "requests", 0, 100),
        (True, None, 0, 100),
        (False, "requests", 0, 100),
    ]
    got = [(d.allowed, d.reason, d.remaining_requests, d.remaining_tokens) for d in answers]
    assert got == expected
    for d in answers:
        assert (d.limit_requests, d.limit_tokens) == (3, 1000)
        assert 59 < (d.reset_requests_s or 0) <= 60
        assert 59 < (d.reset_tokens_s or 0) <= 60
    assert answers[2].retry_after_s == pytest.approx(1.0)
    assert 59 < answers[4].retry_after_s <= 60
    assert answers[4].retry_after_s != math.inf
