"""MemoryJobQueue keeps the JobQueue contract: bounds, priority and fairness, leases and reclaim,
dead letters, outcomes until acknowledged, events and cancellation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator

import msgspec
import pytest

from gpucloud.engines.protocol import GenerationRequest
from gpucloud.queue.memory import MemoryJobQueue
from gpucloud.queue.protocol import (
    DeltaEvent,
    JobMessage,
    Outcome,
    OutcomeStatus,
    Priority,
    QueueFull,
)

_seq = iter(range(10**9))


def job(model: str = "m", priority: Priority = Priority.NORMAL, stream: bool = False) -> JobMessage:
    i = next(_seq)
    return JobMessage(
        job_id=f"job_{i}",
        model=model,
        priority=priority,
        request=GenerationRequest(kind="completion", model=model, prompt="hi"),
        reply_to="gw",
        stream=stream,
        enqueued_at=time.time() + i * 1e-6,
    )


async def test_a_second_submit_of_the_same_job_adds_nothing() -> None:
    q = MemoryJobQueue(max_depth=3)
    j = msgspec.structs.replace(job(), deadline=time.time() + 30)
    assert await q.submit(j)
    assert not await q.submit(j)  # whoever is unsure whether the job was queued may submit it again
    assert sum((await q.depth("m")).values()) == 1
    assert await q.submit(msgspec.structs.replace(j, attempt_base=3))  # a dead-lettered job's retry
    assert sum((await q.depth("m")).values()) == 2


async def test_bound_is_exact() -> None:
    q = MemoryJobQueue(max_depth=3)
    for _ in range(3):
        await q.submit(job())
    with pytest.raises(QueueFull):
        await q.submit(job())
    await q.submit(job(model="other"))  # bounds are per model
    assert sum((await q.depth("m")).values()) == 3


async def test_priority_order_and_fairness() -> None:
    q = MemoryJobQueue(fair_every=4)
    lows = [job(priority=Priority.LOW) for _ in range(3)]
    highs = [job(priority=Priority.HIGH) for _ in range(6)]
    for j in lows + highs:
        await q.submit(j)
    order = []
    for _ in range(9):
        (lease,) = await q.lease("w", ["m"], 1, 0)
        order.append(lease.job.priority)
    # every 4th lease comes from the lowest waiting class; the others in priority order
    assert order[:4] == [Priority.HIGH, Priority.HIGH, Priority.HIGH, Priority.LOW]
    assert order[4:8] == [Priority.HIGH, Priority.HIGH, Priority.HIGH, Priority.LOW]


async def test_lease_waits_for_work() -> None:
    q = MemoryJobQueue()
    waiter = asyncio.create_task(q.lease("w", ["m"], 5, 2.0))
    await asyncio.sleep(0.05)
    await q.submit(job())
    leases = await asyncio.wait_for(waiter, 1.0)
    assert len(leases) == 1
    assert leases[0].attempt == 1


async def test_expired_lease_is_reclaimed_with_next_attempt_and_dead_lettered() -> None:
    q = MemoryJobQueue(lease_timeout_s=0.05, max_attempts=2)
    j = job()
    await q.submit(j)
    first = (await q.lease("w1", ["m"], 1, 0))[0]
    await asyncio.sleep(0.08)
    second = (await q.lease("w2", ["m"], 1, 0))[0]
    assert (second.job.job_id, second.attempt) == (j.job_id, 2)
    assert await q.renew([first]) == [first]  # w1 no longer holds it
    await asyncio.sleep(0.08)
    assert await q.lease("w3", ["m"], 1, 0) == []  # third delivery would exceed max_attempts
    outcomes = await q.read_outcomes("f", 10, 0)
    assert [(o.job_id, o.status, o.attempt) for o in outcomes] == [(j.job_id, OutcomeStatus.DEAD, 2)]
    assert [d.job_id for d in await q.dead_letters()] == [j.job_id]
    assert await q.replay(j.job_id)
    replayed = (await q.lease("w4", ["m"], 1, 0))[0]
    assert replayed.attempt == 3  # attempts keep counting up so old results stay fenced


async def test_renew_keeps_lease_and_release_does_not_count_an_attempt() -> None:
    q = MemoryJobQueue(lease_timeout_s=0.1)
    await q.submit(job())
    lease = (await q.lease("w", ["m"], 1, 0))[0]
    for _ in range(4):
        await asyncio.sleep(0.04)
        assert await q.renew([lease]) == []
    assert await q.lease("x", ["m"], 1, 0) == []
    await q.release(lease)
    again = (await q.lease("x", ["m"], 1, 0))[0]
    assert again.attempt == 1


async def test_streamed_job_with_progress_is_interrupted_not_rerun() -> None:
    q = MemoryJobQueue(lease_timeout_s=0.05)
    j = job(stream=True)
    await q.submit(j)
    lease = (await q.lease("w", ["m"], 1, 0))[0]
    await q.publish("gw", [DeltaEvent(j.job_id, 1, index=0, text="hi", tokens=3, prompt_tokens=7)])
    await asyncio.sleep(0.08)
    assert await q.lease("w2", ["m"], 1, 0) == []
    (outcome,) = await q.read_outcomes("f", 10, 0)
    assert (outcome.status, outcome.completion_tokens, outcome.prompt_tokens) == (
        OutcomeStatus.INTERRUPTED,
        3,
        7,
    )
    assert lease.attempt == outcome.attempt


async def test_outcomes_are_redelivered_until_acknowledged(monkeypatch: pytest.MonkeyPatch) -> None:
    q = MemoryJobQueue()
    await q.report(Outcome(job_id="j", attempt=1, status=OutcomeStatus.COMPLETED, reply_to="", model="m"))
    (o,) = await q.read_outcomes("f", 10, 0)
    assert await q.read_outcomes("f", 10, 0) == []
    real = time.monotonic
    monkeypatch.setattr(time, "monotonic", lambda: real() + 60)  # a finalizer died holding it
    assert [x.job_id for x in await q.read_outcomes("f", 10, 0)] == ["j"]
    await q.ack_outcomes([o])
    assert await q.read_outcomes("f", 10, 0) == []


async def test_events_reach_the_channel_reader_in_order() -> None:
    q = MemoryJobQueue()
    reader = q.read_events("gw")
    assert isinstance(reader, AsyncGenerator)  # closed at the end
    first = asyncio.ensure_future(reader.__anext__())
    await asyncio.sleep(0)
    events = [DeltaEvent("j", 1, index=i) for i in range(5)]
    await q.publish("gw", events[:2])
    await q.publish("gw", events[2:])
    got = await first
    while len(got) < 5:
        got += await reader.__anext__()
    assert [e.index for e in got if isinstance(e, DeltaEvent)] == [0, 1, 2, 3, 4]
    await reader.aclose()


async def test_cancellation_is_seen_by_watchers() -> None:
    q = MemoryJobQueue()
    watch = q.watch_cancellations()
    assert isinstance(watch, AsyncGenerator)  # closed at the end
    nxt = asyncio.ensure_future(watch.__anext__())
    await asyncio.sleep(0)
    await q.cancel("job_x")
    assert await asyncio.wait_for(nxt, 1) == "job_x"
    assert await q.is_cancelled("job_x")
    assert not await q.is_cancelled("job_y")
    await watch.aclose()
