"""RedisJobQueue keeps the JobQueue contract against a real Redis: bounds (also under concurrent
gateways), priority and fairness, leases, renewal and reclaim, the stale-attempt fence, dead
letters and replay, interrupted streams, release, outcomes, events, cancellation and outages.

Every test works under its own key prefix and deletes its keys afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import msgspec
import pytest
from redis.asyncio import Redis

from gpucloud.engines.protocol import GenerationRequest
from gpucloud.queue.protocol import (
    Choice,
    DeltaEvent,
    JobMessage,
    Lease,
    Outcome,
    OutcomeStatus,
    Priority,
    QueueFull,
    QueueUnavailable,
    StartedEvent,
)
from gpucloud.queue.redis import RedisJobQueue
from gpucloud.queue.redis import outcomes as redis_outcomes_module

pytestmark = pytest.mark.redis

REDIS_URL = "redis://127.0.0.1:6379/0"

MakeQueue = Callable[..., Awaitable[RedisJobQueue]]


@pytest.fixture
def prefix() -> str:
    return f"gctest-{uuid.uuid4().hex}"


@pytest.fixture
async def raw(prefix: str) -> AsyncIterator[Redis]:
    """A plain client, to look at what the queue stored; deletes the test's keys at the end."""
    client = Redis.from_url(REDIS_URL, decode_responses=True)
    yield client
    keys = [key async for key in client.scan_iter(match=f"{{{prefix}}}:*", count=1000)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
async def make_queue(prefix: str, raw: Redis) -> AsyncIterator[MakeQueue]:
    """Queues on the test's prefix (several = several gateway or worker processes)."""
    queues: list[RedisJobQueue] = []

    async def make(**options: Any) -> RedisJobQueue:
        queue = RedisJobQueue(REDIS_URL, prefix=prefix, **options)
        await queue.start()
        queues.append(queue)
        return queue

    yield make
    for queue in queues:
        await queue.close()


_seq = iter(range(10**9))


def job(model: str = "m", priority: Priority = Priority.NORMAL, stream: bool = False) -> JobMessage:
    i = next(_seq)
    return JobMessage(
        job_id=f"job_{i}",
        model=model,
        priority=priority,
        request=GenerationRequest(kind="completion", model=model, prompt="hi", max_tokens=4),
        reply_to="gw-1",
        stream=stream,
        enqueued_at=time.time(),
        deadline=time.time() + 60,
        request_id=f"req_{i}",
    )


def outcome(lease: Lease, status: OutcomeStatus = OutcomeStatus.COMPLETED) -> Outcome:
    return Outcome(
        job_id=lease.job.job_id,
        attempt=lease.attempt,
        status=status,
        reply_to=lease.job.reply_to,
        model=lease.job.model,
        worker_id=lease.worker_id,
        choices=[Choice(0, "hello", "stop")],
        prompt_tokens=3,
        completion_tokens=2,
        at=time.time(),
    )


async def lease_one(queue: RedisJobQueue, worker: str, timeout_s: float = 0.0) -> Lease:
    leases = await queue.lease(worker, ["m"], 1, timeout_s)
    assert len(leases) == 1, leases
    return leases[0]


async def drain_outcomes(queue: RedisJobQueue) -> list[Outcome]:
    outcomes = await queue.read_outcomes("fin", 100, 0)
    await queue.ack_outcomes(outcomes)
    return outcomes


async def pending_owner(raw: Redis, queue: RedisJobQueue, lease: Lease) -> tuple[str, int] | None:
    key = queue.names.jobs(lease.job.model, lease.job.priority)
    rows = await raw.xpending_range(key, queue.names.WORKERS_GROUP, lease.token, lease.token, 1)
    return (str(rows[0]["consumer"]), int(rows[0]["times_delivered"])) if rows else None


# jobs: round trip, order, bounds -------------------------------------------------------------


async def test_submit_lease_complete_and_outcomes(make_queue: MakeQueue, raw: Redis) -> None:
    queue = await make_queue()
    j = job()
    await queue.submit(j)
    assert await queue.depth("m") == {Priority.HIGH: 0, Priority.NORMAL: 1, Priority.LOW: 0}
    lease = await lease_one(queue, "w1")
    assert (lease.job, lease.attempt, lease.worker_id) == (j, 1, "w1")
    assert await queue.depth("m") == {Priority.HIGH: 0, Priority.NORMAL: 0, Priority.LOW: 0}
    await queue.begin(lease)
    await queue.complete(lease, outcome(lease))
    assert await raw.xlen(queue.names.jobs("m", Priority.NORMAL)) == 0  # acknowledged and deleted

    outcomes = await queue.read_outcomes("fin", 10, 1.0)
    assert [(o.job_id, o.attempt, o.status) for o in outcomes] == [
        (j.job_id, 1, OutcomeStatus.STARTED),
        (j.job_id, 1, OutcomeStatus.COMPLETED),
    ]
    assert outcomes[1].choices[0].text == "hello"
    assert all(o.outcome_id for o in outcomes)
    await queue.ack_outcomes(outcomes)
    assert await queue.read_outcomes("fin", 10, 0) == []
    assert await raw.xlen(queue.names.outcomes()) == 0


async def test_lease_waits_for_a_job_and_times_out(make_queue: MakeQueue) -> None:
    queue = await make_queue()
    started = time.monotonic()
    assert await queue.lease("w", ["m"], 4, 0.3) == []
    assert 0.25 < time.monotonic() - started < 1.5
    waiter = asyncio.create_task(queue.lease("w", ["m"], 4, 5.0))
    await asyncio.sleep(0.1)
    await queue.submit(job())
    leases = await asyncio.wait_for(waiter, 2.0)
    assert len(leases) == 1
    assert leases[0].attempt == 1


async def test_priority_order_oldest_first_and_count(make_queue: MakeQueue, raw: Redis) -> None:
    queue = await make_queue(fair_every=100)
    low, normal1, high, normal2 = (
        job(priority=Priority.LOW),
        job(priority=Priority.NORMAL),
        job(model="m2", priority=Priority.HIGH),
        job(model="m2", priority=Priority.NORMAL),
    )
    for j in (low, normal1, high, normal2):
        await queue.submit(j)
    first = await queue.lease("w", ["m", "m2"], 3, 0)
    assert [lease.job.job_id for lease in first] == [high.job_id, normal1.job_id, normal2.job_id]
    pending = await raw.xpending(queue.names.jobs("m", Priority.LOW), queue.names.WORKERS_GROUP)
    assert pending["pending"] == 0  # never more than `count` delivered
    rest = await queue.lease("w", ["m", "m2"], 3, 0)
    assert [lease.job.job_id for lease in rest] == [low.job_id]


async def test_fairness_serves_low_once_every_fair_every(make_queue: MakeQueue) -> None:
    queue = await make_queue(fair_every=4)
    for _ in range(3):
        await queue.submit(job(priority=Priority.LOW))
    for _ in range(8):
        await queue.submit(job(priority=Priority.HIGH))
    order = [(await lease_one(queue, "w")).job.priority for _ in range(8)]
    H, L = Priority.HIGH, Priority.LOW
    assert order == [H, H, H, L, H, H, H, L]
    # the count is per worker: another worker starts its own
    other = [(await lease_one(queue, "w2")).job.priority for _ in range(3)]
    assert other == [H, H, L]


async def test_bound_is_per_model_and_counts_waiting_jobs_only(make_queue: MakeQueue) -> None:
    queue = await make_queue(max_depth=3)
    for priority in (Priority.HIGH, Priority.NORMAL, Priority.LOW):
        await queue.submit(job(priority=priority))
    with pytest.raises(QueueFull) as info:
        await queue.submit(job(priority=Priority.HIGH))
    assert (info.value.model, info.value.depth) == ("m", 3)
    await queue.submit(job(model="other"))
    await lease_one(queue, "w")  # a delivered job no longer waits
    await queue.submit(job())
    assert sum((await queue.depth("m")).values()) == 3


async def test_concurrent_submits_from_many_gateways_never_exceed_the_bound(make_queue: MakeQueue) -> None:
    first = await make_queue(max_depth=10)
    for _ in range(7):
        await first.submit(job())
    gateways = [await make_queue(max_depth=10) for _ in range(20)]

    async def submit(queue: RedisJobQueue) -> bool:
        try:
            await queue.submit(job(priority=Priority.LOW))
        except QueueFull:
            return False
        return True

    accepted = await asyncio.gather(*(submit(queue) for queue in gateways))
    assert sum(accepted) == 3
    assert await first.depth("m") == {Priority.HIGH: 0, Priority.NORMAL: 7, Priority.LOW: 3}


# leases: reclaim, renew, fence, dead letters, interruption, release ----------------------------


async def test_expired_lease_is_reclaimed_with_the_next_attempt(make_queue: MakeQueue) -> None:
    queue = await make_queue(lease_timeout_s=0.3)
    j = job()
    await queue.submit(j)
    first = await lease_one(queue, "w1")
    assert await queue.lease("w2", ["m"], 1, 0) == []  # not expired yet
    await asyncio.sleep(0.4)
    second = await lease_one(queue, "w2")
    assert (second.job.job_id, second.attempt, second.token) == (j.job_id, 2, first.token)
    assert await queue.renew([first, second]) == [first]  # w1 no longer holds it


async def test_blocked_lease_picks_up_an_expired_delivery(make_queue: MakeQueue) -> None:
    queue = await make_queue(lease_timeout_s=0.3)
    await queue.submit(job())
    await lease_one(queue, "w1")
    started = time.monotonic()
    second = await lease_one(queue, "w2", timeout_s=3.0)
    assert second.attempt == 2
    assert time.monotonic() - started < 1.0


async def test_renew_keeps_a_lease_past_the_timeout(make_queue: MakeQueue) -> None:
    queue = await make_queue(lease_timeout_s=0.3)
    await queue.submit(job())
    lease = await lease_one(queue, "w1")
    for _ in range(8):  # 0.8 s, well past the timeout
        await asyncio.sleep(0.1)
        assert await queue.renew([lease]) == []
    assert await queue.lease("w2", ["m"], 1, 0) == []
    await queue.complete(lease, outcome(lease))
    assert await queue.renew([lease]) == [lease]


async def test_stale_attempt_does_not_acknowledge_the_new_delivery(make_queue: MakeQueue, raw: Redis) -> None:
    queue = await make_queue(lease_timeout_s=0.3)
    await queue.submit(job())
    first = await lease_one(queue, "w1")
    await asyncio.sleep(0.4)
    second = await lease_one(queue, "w2")
    await queue.complete(first, outcome(first))  # late result of attempt 1
    assert await pending_owner(raw, queue, second) == ("w2", 2)
    # the same worker re-leasing its own expired delivery is fenced by the delivery count
    await asyncio.sleep(0.4)
    third = await lease_one(queue, "w2")
    assert third.attempt == 3
    await queue.complete(second, outcome(second))
    assert await queue.renew([second, third]) == [second]
    assert await pending_owner(raw, queue, third) == ("w2", 3)
    await queue.complete(third, outcome(third))
    assert await pending_owner(raw, queue, third) is None
    # every report reaches the control plane, which fences them by attempt
    attempts = [o.attempt for o in await drain_outcomes(queue)]
    assert attempts == [1, 2, 3]


async def test_dead_letter_after_max_attempts_then_replay(make_queue: MakeQueue) -> None:
    queue = await make_queue(lease_timeout_s=0.2, max_attempts=2)
    j = job()
    await queue.submit(j)
    assert (await lease_one(queue, "w1")).attempt == 1
    await asyncio.sleep(0.3)
    assert (await lease_one(queue, "w2")).attempt == 2
    await asyncio.sleep(0.3)
    assert await queue.lease("w3", ["m"], 1, 0) == []  # a third delivery would exceed max_attempts
    (dead,) = await drain_outcomes(queue)
    assert (dead.job_id, dead.status, dead.attempt, dead.error_code) == (
        j.job_id,
        OutcomeStatus.DEAD,
        2,
        "dead_lettered",
    )
    assert dead.error == "delivered 2 times without finishing"
    assert dead.reply_to == j.reply_to
    assert await queue.dead_letters() == [j]
    assert sum((await queue.depth("m")).values()) == 0

    assert await queue.replay(j.job_id)
    assert not await queue.replay(j.job_id)
    assert not await queue.replay("job_unknown")
    assert await queue.dead_letters() == []
    replayed = await lease_one(queue, "w4")
    assert (replayed.job.job_id, replayed.job.attempt_base, replayed.attempt) == (j.job_id, 2, 3)
    assert replayed.job.request == j.request


async def test_stream_with_progress_is_interrupted_not_redelivered(make_queue: MakeQueue, raw: Redis) -> None:
    queue = await make_queue(lease_timeout_s=0.3)
    started, silent = job(stream=True), job(stream=True)
    await queue.submit(started)
    await queue.submit(silent)
    lease, _quiet = await queue.lease("w1", ["m"], 2, 0)
    await queue.begin(lease)
    delta = DeltaEvent(lease.job.job_id, 1, index=0, text="he", tokens=2, prompt_tokens=7)
    await queue.publish("gw-1", [delta])
    await queue.publish("gw-1", [msgspec.structs.replace(delta, tokens=3)])
    await drain_outcomes(queue)
    await asyncio.sleep(0.4)
    # the stream that sent nothing is retried transparently; the other is over
    (retry,) = await queue.lease("w2", ["m"], 2, 0)
    assert (retry.job.job_id, retry.attempt) == (silent.job_id, 2)
    (interrupted,) = await drain_outcomes(queue)
    assert (interrupted.job_id, interrupted.status, interrupted.attempt) == (
        started.job_id,
        OutcomeStatus.INTERRUPTED,
        1,
    )
    assert (interrupted.completion_tokens, interrupted.prompt_tokens) == (5, 7)
    assert (interrupted.error_code, interrupted.worker_id) == ("worker_lost", "w1")
    assert await pending_owner(raw, queue, lease) is None
    assert await raw.exists(queue.names.progress(started.job_id)) == 0


async def test_release_redelivers_without_counting_an_attempt(make_queue: MakeQueue) -> None:
    queue = await make_queue(max_attempts=1)
    j = job()
    await queue.submit(j)
    lease = await lease_one(queue, "w1")
    await queue.release(lease)
    again = await lease_one(queue, "w2")  # not delayed by the lease timeout (15 s)
    assert (again.job.job_id, again.attempt) == (j.job_id, 1)
    assert await queue.renew([lease, again]) == [lease]
    await queue.release(lease)  # a lease no longer held: nothing happens
    # a worker blocked in lease notices a release within its poll interval
    waiter = asyncio.create_task(queue.lease("w3", ["m"], 1, 5.0))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    await queue.release(again)
    (third,) = await asyncio.wait_for(waiter, 3.0)
    assert (third.job.job_id, third.attempt) == (j.job_id, 1)
    assert time.monotonic() - started < 1.5


# outcomes, events, cancellation, inspection ----------------------------------------------------


async def test_unacknowledged_outcomes_go_to_another_finalizer(
    make_queue: MakeQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_outcomes_module, "OUTCOME_REDELIVERY_S", 0.2)
    # One queue object plays both finalizers here, so it must look for abandoned outcomes on every
    # read (in production each gateway's queue looks every OUTCOME_RECLAIM_EVERY_S).
    monkeypatch.setattr(redis_outcomes_module, "OUTCOME_RECLAIM_EVERY_S", 0.0)
    queue = await make_queue()
    j = job()
    await queue.report(
        Outcome(j.job_id, 0, OutcomeStatus.EXPIRED, j.reply_to, j.model, error="waited too long", at=1.0)
    )
    (taken,) = await queue.read_outcomes("fin-1", 10, 0)
    assert await queue.read_outcomes("fin-2", 10, 0.1) == []
    await asyncio.sleep(0.3)  # fin-1 died holding it
    (again,) = await queue.read_outcomes("fin-2", 10, 0)
    assert again == taken
    assert again.status is OutcomeStatus.EXPIRED
    assert again.error == "waited too long"
    await queue.ack_outcomes([again])
    await asyncio.sleep(0.3)
    assert await queue.read_outcomes("fin-1", 10, 0) == []


async def test_events_arrive_in_order(make_queue: MakeQueue, raw: Redis) -> None:
    gateway, worker = await make_queue(), await make_queue()
    await worker.publish("gw-1", [DeltaEvent("old", 1, text="before the reader")])
    reader = gateway.read_events("gw-1")
    first_batch = asyncio.ensure_future(reader.__anext__())
    await asyncio.sleep(0.2)
    j = job()
    await worker.submit(j)
    lease = await lease_one(worker, "w1")
    await worker.begin(lease)
    for i in range(30):
        await worker.publish("gw-1", [DeltaEvent(j.job_id, 1, index=0, text=str(i), tokens=1)])
    await worker.publish("gw-2", [DeltaEvent(j.job_id, 1, text="elsewhere")])
    received = await asyncio.wait_for(first_batch, 2.0)
    while len(received) < 31:
        received += await asyncio.wait_for(reader.__anext__(), 2.0)
    await reader.aclose()
    assert received[0] == StartedEvent(j.job_id, 1, "w1")
    assert [e.text for e in received[1:] if isinstance(e, DeltaEvent)] == [str(i) for i in range(30)]
    assert all(e.job_id == j.job_id and e.attempt == 1 for e in received)
    ttl = await raw.pttl(gateway.names.events("gw-1"))
    assert 0 < ttl <= 3600 * 1000


async def test_cancel_is_seen_by_watchers_and_by_is_cancelled(make_queue: MakeQueue, raw: Redis) -> None:
    gateway, worker = await make_queue(cancel_ttl_s=60), await make_queue()
    before = {client["id"] for client in await raw.client_list(_type="pubsub")}
    watcher = worker.watch_cancellations()
    first = asyncio.ensure_future(watcher.__anext__())
    await asyncio.sleep(0.3)  # subscribed
    await gateway.cancel("job_a")
    assert await asyncio.wait_for(first, 2.0) == "job_a"
    assert await worker.is_cancelled("job_a")
    assert not await worker.is_cancelled("job_b")
    assert 0 < await raw.pttl(gateway.names.cancelled("job_a")) <= 60_000

    # the subscription is made again when its connection drops
    ours = {client["id"] for client in await raw.client_list(_type="pubsub")} - before
    assert len(ours) == 1
    await raw.client_kill_filter(_id=ours.pop())
    received: list[str] = []
    following = asyncio.ensure_future(watcher.__anext__())
    deadline = time.monotonic() + 5
    while not received and time.monotonic() < deadline:
        await gateway.cancel("job_c")  # a cancel sent while resubscribing is missed: send until seen
        done, _ = await asyncio.wait({following}, timeout=0.3)
        if done:
            received.append(following.result())
    assert received == ["job_c"]
    await watcher.aclose()


async def test_a_cancel_sent_by_a_task_being_cancelled_is_marked_and_announced(
    make_queue: MakeQueue, raw: Redis
) -> None:
    """A gateway cancels a job from the `finally` of a request whose client went away, inside a
    cancelled anyio scope, where every suspension raises CancelledError again: both the marker
    and the announcement must still reach Redis."""
    gateway, worker = await make_queue(), await make_queue()
    watcher = worker.watch_cancellations()
    first = asyncio.ensure_future(watcher.__anext__())
    await asyncio.sleep(0.3)  # subscribed

    async def client_gone() -> None:
        with anyio.CancelScope() as scope:
            scope.cancel()
            try:
                await anyio.sleep(3600)
            finally:
                with contextlib.suppress(asyncio.CancelledError):
                    await gateway.cancel("job_gone")

    await client_gone()
    assert await asyncio.wait_for(first, 5.0) == "job_gone"
    assert await raw.exists(gateway.names.cancelled("job_gone")) == 1
    await watcher.aclose()


async def test_depth_per_class(make_queue: MakeQueue) -> None:
    queue = await make_queue()
    assert await queue.depth("m") == {Priority.HIGH: 0, Priority.NORMAL: 0, Priority.LOW: 0}
    for priority, n in ((Priority.HIGH, 2), (Priority.NORMAL, 1), (Priority.LOW, 4)):
        for _ in range(n):
            await queue.submit(job(priority=priority))
    assert await queue.depth("m") == {Priority.HIGH: 2, Priority.NORMAL: 1, Priority.LOW: 4}
    await queue.lease("w", ["m"], 3, 0)
    assert await queue.depth("m") == {Priority.HIGH: 0, Priority.NORMAL: 0, Priority.LOW: 4}


# outages -----------------------------------------------------------------------------------------


async def test_unreachable_redis_raises_queue_unavailable_fast() -> None:
    queue = RedisJobQueue("redis://user:s3cret-pw@127.0.0.1:1/0")
    started = time.monotonic()
    calls: list[Awaitable[object]] = [
        queue.start(),
        queue.ping(),
        queue.submit(job()),
        queue.lease("w", ["m"], 1, 5.0),
        queue.read_outcomes("fin", 10, 5.0),
        queue.depth("m"),
        queue.cancel("job_a"),
    ]
    for call in calls:
        with pytest.raises(QueueUnavailable) as info:
            await call
        assert "s3cret" not in str(info.value)
        assert "127.0.0.1" not in str(info.value)
    with pytest.raises(QueueUnavailable):
        await queue.read_events("gw").__anext__()
    assert time.monotonic() - started < 3.0
    await queue.close()


async def test_queue_works_again_after_redis_comes_back(make_queue: MakeQueue, prefix: str) -> None:
    proxy = _Proxy()
    await proxy.start()
    queue = RedisJobQueue(f"redis://127.0.0.1:{proxy.port}/0", prefix=prefix)
    try:
        await queue.ping()
        await queue.submit(job())
        await proxy.stop()  # Redis "goes away": connections cut, nothing listens
        started = time.monotonic()
        with pytest.raises(QueueUnavailable):
            await queue.submit(job())
        with pytest.raises(QueueUnavailable):
            await queue.lease("w", ["m"], 1, 2.0)
        assert time.monotonic() - started < 3.0
        await proxy.start()  # and comes back
        await queue.ping()
        await queue.submit(job())
        assert len(await queue.lease("w", ["m"], 5, 0)) == 2
    finally:
        await queue.close()
        await proxy.stop()


class _Proxy:
    """A TCP proxy to the test Redis that can be cut and restored on the same port."""

    def __init__(self) -> None:
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        redis_r, redis_w = await asyncio.open_connection("127.0.0.1", 6379)
        self._writers |= {client_w, redis_w}
        await asyncio.gather(self._pipe(client_r, redis_w), self._pipe(redis_r, client_w))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()


async def test_a_second_submit_of_the_same_job_adds_nothing(make_queue: MakeQueue, raw: Redis) -> None:
    queue = await make_queue()
    j = msgspec.structs.replace(job(), deadline=time.time() + 30)
    assert await queue.submit(j)
    assert not await queue.submit(j)  # a gateway that took over a job, unsure whether it was ever queued
    assert await queue.depth("m") == {Priority.HIGH: 0, Priority.NORMAL: 1, Priority.LOW: 0}
    assert 29_000 < await raw.pttl(queue.names.submitted(j.job_id, 0)) <= 31_000  # to the deadline
    assert await queue.submit(msgspec.structs.replace(j, attempt_base=3))  # a dead-lettered job's retry
    assert await queue.depth("m") == {Priority.HIGH: 0, Priority.NORMAL: 2, Priority.LOW: 0}
