"""MemoryLimitStore keeps the limits' rules on a fake clock: the window rolls, counts are exact under
a burst, reset and retry times are the honest ones, token reservations settle to the actual count,
slots are released or expire, and admission is all-or-nothing."""

from __future__ import annotations

import asyncio
import math

import pytest

from gpucloud.limits import Limits, MemoryLimitStore
from tests.unit.limits.clock import FakeClock


@pytest.fixture
def store(clock: FakeClock) -> MemoryLimitStore:
    return MemoryLimitStore(clock=clock)


# --- requests per minute -------------------------------------------------------------------------


async def test_window_rolls_and_reports_reset_and_retry(store: MemoryLimitStore, clock: FakeClock) -> None:
    limits = Limits(rpm=3)
    for i, at in enumerate((0, 10, 20)):
        clock.at(at)
        d = await store.admit("k", limits, f"r{i}", 0)
        assert d.allowed
        assert d.remaining_requests == 2 - i
        assert d.limit_requests == 3
        assert d.reset_requests_s == pytest.approx(60 - at)  # the oldest (t=0) leaves at 60

    clock.at(30)
    d = await store.admit("k", limits, "r3", 0)
    assert not d.allowed
    assert d.reason == "requests"
    assert d.retry_after_s == pytest.approx(30)
    assert d.reset_requests_s == pytest.approx(30)
    assert d.remaining_requests == 0

    clock.at(59.9)
    assert not (await store.admit("k", limits, "r4", 0)).allowed
    clock.at(60)  # the request of t=0 has left the window
    d = await store.admit("k", limits, "r5", 0)
    assert d.allowed
    assert d.remaining_requests == 0
    assert d.reset_requests_s == pytest.approx(10)  # now the oldest is t=10, leaving at 70


async def test_burst_admits_exactly_the_limit(store: MemoryLimitStore) -> None:
    limits = Limits(rpm=100)
    decisions = await asyncio.gather(*(store.admit("k", limits, f"r{i}", 0) for i in range(1000)))
    assert sum(d.allowed for d in decisions) == 100
    assert {d.reason for d in decisions if not d.allowed} == {"requests"}


async def test_lowered_limit_waits_for_enough_requests_to_leave(
    store: MemoryLimitStore, clock: FakeClock
) -> None:
    for i in range(5):
        clock.at(i)
        assert (await store.admit("k", Limits(rpm=10), f"r{i}", 0)).allowed
    clock.at(10)
    d = await store.admit("k", Limits(rpm=2), "x", 0)
    # 5 in the window, room for 2: the requests of t=0, 1, 2, 3 must leave; t=3 leaves at 63.
    assert not d.allowed
    assert d.retry_after_s == pytest.approx(53)
    assert d.remaining_requests == 0
    assert d.reset_requests_s == pytest.approx(50)


async def test_zero_limit_never_admits(store: MemoryLimitStore) -> None:
    d = await store.admit("k", Limits(rpm=0), "r", 0)
    assert not d.allowed
    assert d.reason == "requests"
    assert d.retry_after_s == math.inf


async def test_unlimited_key_reports_no_limits(store: MemoryLimitStore) -> None:
    d = await store.admit("k", Limits(), "r", 10)
    assert d.allowed
    assert d.reason is None
    assert d.retry_after_s == 0
    assert (d.limit_requests, d.remaining_requests, d.reset_requests_s) == (None, None, None)
    assert (d.limit_tokens, d.remaining_tokens, d.reset_tokens_s) == (None, None, None)


async def test_retried_admit_consumes_nothing_more(store: MemoryLimitStore) -> None:
    limits = Limits(rpm=2, tpm=100, max_concurrency=1)
    assert (await store.admit("k", limits, "r", 40)).allowed
    d = await store.admit("k", limits, "r", 40)
    assert d.allowed
    assert d.remaining_requests == 1
    assert d.remaining_tokens == 60


async def test_peek_consumes_nothing(store: MemoryLimitStore) -> None:
    limits = Limits(rpm=1, tpm=10)
    d = await store.peek("k", limits)
    assert d.allowed
    assert d.remaining_requests == 1
    assert d.remaining_tokens == 10
    assert d.reset_requests_s == 0
    assert d.reset_tokens_s == 0  # empty window: already at its full budget
    assert (await store.admit("k", limits, "r", 10)).allowed
    d = await store.peek("k", limits)
    assert not d.allowed
    assert d.reason == "requests"
    assert d.remaining_tokens == 0


# --- tokens per minute ---------------------------------------------------------------------------


async def test_tokens_reserved_then_settled_to_actual(store: MemoryLimitStore, clock: FakeClock) -> None:
    limits = Limits(tpm=1000)
    for i in range(3):
        clock.at(i)
        d = await store.admit("k", limits, f"r{i}", 300)
        assert d.allowed
        assert d.remaining_tokens == 700 - 300 * i
    clock.at(5)
    d = await store.admit("k", limits, "r3", 300)
    # 900 held, 300 more needs 200 to leave: the 300 of t=0 leave at 60.
    assert not d.allowed
    assert d.reason == "tokens"
    assert d.retry_after_s == pytest.approx(55)
    assert d.remaining_tokens == 100
    assert d.reset_tokens_s == pytest.approx(55)

    await store.settle("k", "r0", 50)
    await store.settle("k", "r0", 50)  # idempotent
    d = await store.admit("k", limits, "r3", 300)
    assert d.allowed
    assert d.remaining_tokens == 1000 - 50 - 600 - 300

    clock.at(60)  # r0 leaves with its settled 50, at its admission time + 60
    assert (await store.peek("k", limits)).remaining_tokens == 100
    clock.at(61)
    assert (await store.peek("k", limits)).remaining_tokens == 400


async def test_settle_above_the_reservation_charges_in_full(store: MemoryLimitStore) -> None:
    limits = Limits(tpm=1000)
    await store.admit("k", limits, "r", 100)
    await store.settle("k", "r", 1200)
    d = await store.peek("k", limits)
    assert not d.allowed
    assert d.remaining_tokens == 0
    assert d.reason == "tokens"


async def test_settle_after_the_window_changes_nothing(store: MemoryLimitStore, clock: FakeClock) -> None:
    limits = Limits(tpm=1000, max_concurrency=1)
    await store.admit("k", limits, "old", 500)
    clock.at(61)
    await store.settle("k", "old", 900)
    d = await store.peek("k", limits)
    assert d.remaining_tokens == 1000  # the reservation left with its minute
    assert d.allowed


async def test_release_keeps_the_reservation(store: MemoryLimitStore) -> None:
    limits = Limits(tpm=1000, max_concurrency=1)
    await store.admit("k", limits, "r", 400)
    await store.release("k", "r")
    await store.release("k", "r")  # idempotent
    d = await store.admit("k", limits, "s", 100)
    assert d.allowed
    assert d.remaining_tokens == 500


async def test_request_larger_than_tpm_never_fits(store: MemoryLimitStore) -> None:
    d = await store.admit("k", Limits(tpm=100), "r", 101)
    assert not d.allowed
    assert d.reason == "tokens"
    assert d.retry_after_s == math.inf


async def test_token_reset_skips_requests_holding_no_tokens(
    store: MemoryLimitStore, clock: FakeClock
) -> None:
    limits = Limits(tpm=100)
    await store.admit("k", limits, "empty", 0)
    clock.at(20)
    d = await store.admit("k", limits, "full", 10)
    assert d.reset_tokens_s == pytest.approx(60)  # t=0 holds nothing; the 10 of t=20 leave at 80


# --- all-or-nothing and concurrency --------------------------------------------------------------


async def test_refused_for_tokens_consumes_no_request(store: MemoryLimitStore) -> None:
    limits = Limits(rpm=2, tpm=100, max_concurrency=2)
    d = await store.admit("k", limits, "big", 200)
    assert not d.allowed
    assert d.reason == "tokens"
    assert d.remaining_requests == 2
    assert (await store.admit("k", limits, "a", 50)).allowed
    assert (await store.admit("k", limits, "b", 50)).allowed  # "big" holds no request, token or slot


async def test_concurrency_slots_are_released(store: MemoryLimitStore) -> None:
    limits = Limits(max_concurrency=2)
    assert (await store.admit("k", limits, "a", 0)).allowed
    assert (await store.admit("k", limits, "b", 0)).allowed
    d = await store.admit("k", limits, "c", 0)
    assert not d.allowed
    assert d.reason == "concurrency"
    assert d.retry_after_s == pytest.approx(1.0)
    await store.settle("k", "a", 0)
    assert (await store.admit("k", limits, "c", 0)).allowed
    await store.release("k", "b")
    await store.release("k", "b")  # a second release frees nothing more
    assert (await store.admit("k", limits, "d", 0)).allowed
    assert not (await store.admit("k", limits, "e", 0)).allowed


async def test_concurrency_slots_expire(clock: FakeClock) -> None:
    store = MemoryLimitStore(slot_ttl_s=30, clock=clock)
    limits = Limits(max_concurrency=1)
    assert (await store.admit("k", limits, "crashed", 0)).allowed
    clock.at(29.5)
    d = await store.admit("k", limits, "b", 0)
    assert not d.allowed
    assert d.retry_after_s == pytest.approx(0.5)  # the lease ends before the 1 s hint
    clock.at(30)
    assert (await store.admit("k", limits, "b", 0)).allowed


async def test_longest_refusal_is_reported(store: MemoryLimitStore, clock: FakeClock) -> None:
    limits = Limits(rpm=1, max_concurrency=1)
    await store.admit("k", limits, "a", 0)
    clock.at(10)
    d = await store.admit("k", limits, "b", 0)
    assert d.reason == "requests"
    assert d.retry_after_s == pytest.approx(50)
    d = await store.admit("k", Limits(rpm=5, max_concurrency=1), "b", 0)
    assert d.reason == "concurrency"
    assert d.retry_after_s == pytest.approx(1.0)


async def test_idle_subjects_are_forgotten(store: MemoryLimitStore, clock: FakeClock) -> None:
    for i in range(50):
        await store.admit(f"k{i}", Limits(rpm=5, max_concurrency=5), "r", 1)
        await store.release(f"k{i}", "r")
    clock.at(61)
    await store.peek("other", Limits(rpm=1))
    assert not store._subjects  # every window emptied, every slot released


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="rpm"):
        Limits(rpm=-1)
    with pytest.raises(ValueError, match="tpm"):
        Limits(tpm=1.5)  # type: ignore[arg-type]


async def test_arguments_are_validated(store: MemoryLimitStore) -> None:
    with pytest.raises(ValueError, match="request_id"):
        await store.admit("k", Limits(), "", 0)
    with pytest.raises(ValueError, match="tokens"):
        await store.admit("k", Limits(), "r", -1)
