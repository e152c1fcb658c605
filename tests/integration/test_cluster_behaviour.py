"""Cluster mode's promises to clients (architecture §4): cancellation, priority, backpressure, outages.

Real `gpucloud serve` and `gpucloud worker` processes on Redis and PostgreSQL, driven with the
official `openai` SDK; the database shows what happened to each job and what was billed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import create_key
from tests.integration.cluster_support import (
    Cluster,
    ClusterFactory,
    TcpProxy,
    cluster_factory_fixture,  # noqa: F401 — the fixture `cluster_factory`
    job_id_of,
    kill,
    openai_client,
)

pytestmark = pytest.mark.redis

PRIORITY_HEADER = "x-gpucloud-priority"
# A slow engine that always runs to max_tokens: 10 tokens per second.
SLOW = ("tokens_per_s=10", "natural_end=false")


def _client(cluster: Cluster, key: str | None = None, timeout: float = 30) -> openai.AsyncOpenAI:
    return openai_client(cluster.server.v1, key or cluster.server.admin_key, timeout=timeout)


def _chat(content: str) -> list[Any]:
    return [{"role": "user", "content": content}]


def _retry_after(exc: openai.APIStatusError) -> int:
    """The Retry-After header, which must be a whole number of seconds within 1..120."""
    value = exc.response.headers.get("retry-after")
    assert value is not None, exc.response.headers
    assert value.isdigit(), value
    assert 1 <= int(value) <= 120
    return int(value)


def _envelope(exc: openai.APIStatusError) -> dict[str, Any]:
    body = exc.response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) >= {"message", "type", "param", "code"}
    error: dict[str, Any] = body["error"]
    return error


async def _finishes_promptly(cluster: Cluster, model: str, within_s: float) -> float:
    """A short request on `model` completes within `within_s` (its worker's slot is free)."""
    started = time.monotonic()
    async with _client(cluster) as client:
        response = await client.completions.create(model=model, prompt="quick", max_tokens=3)
    elapsed = time.monotonic() - started
    assert response.usage is not None
    assert response.usage.completion_tokens == 3
    assert elapsed < within_s, f"the follow-up took {elapsed:.1f}s: the slot was still busy"
    return elapsed


# Cancellation -------------------------------------------------------------------------------

CANCEL = "sim-cancel"


async def test_closing_a_stream_cancels_its_job_bills_what_ran_and_frees_the_slot(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = await cluster_factory()
    cluster.worker(CANCEL, *SLOW, worker_id="cancel-1", slots=1)
    cluster.server.wait_for_model(CANCEL)
    async with _client(cluster) as client:
        stream = await client.chat.completions.create(
            model=CANCEL, messages=_chat("a long story please"), max_tokens=200, stream=True
        )
        received, response_id = 0, ""
        async for chunk in stream:
            response_id = chunk.id
            if chunk.choices and chunk.choices[0].delta.content:
                received += 1
            if received == 3:
                break
        await stream.close()
    closed = time.monotonic()
    job_id = job_id_of(response_id)
    rows = await cluster.wait_for(
        "SELECT status FROM jobs WHERE id = $1 AND status = 'cancelled'", job_id, timeout_s=3
    )
    cancelled_after = time.monotonic() - closed
    assert rows, await cluster.job(job_id)
    (usage,) = await cluster.usage(job_id)
    assert usage["status"] == "cancelled"
    # Billed for what was generated: at least what the client got, far from the 200 asked for.
    assert 3 <= usage["completion_tokens"] < 50, dict(usage)
    assert usage["prompt_tokens"] > 0
    follow_up = await _finishes_promptly(cluster, CANCEL, within_s=3)
    print(
        f"\nstream closed after 3 chunks: job cancelled {cancelled_after:.2f}s later, billed "
        f"{usage['completion_tokens']} tokens; follow-up on the 1-slot worker took {follow_up:.2f}s"
    )


async def test_client_timeout_cancels_a_non_streamed_job(cluster_factory: ClusterFactory) -> None:
    cluster = await cluster_factory()
    cluster.worker(CANCEL, *SLOW, worker_id="cancel-2", slots=1)
    cluster.server.wait_for_model(CANCEL)
    async with _client(cluster, timeout=1) as client:
        with pytest.raises(openai.APITimeoutError):
            await client.chat.completions.create(model=CANCEL, messages=_chat("too slow"), max_tokens=200)
    gave_up = time.monotonic()
    (job,) = await cluster.rows("SELECT id FROM jobs")
    rows = await cluster.wait_for(
        "SELECT status FROM jobs WHERE id = $1 AND status = 'cancelled'", job["id"], timeout_s=3
    )
    cancelled_after = time.monotonic() - gave_up
    assert rows, await cluster.job(job["id"])
    (usage,) = await cluster.usage(job["id"])
    assert usage["status"] == "cancelled"
    assert 1 <= usage["completion_tokens"] < 50, dict(usage)
    await _finishes_promptly(cluster, CANCEL, within_s=3)
    print(f"\nclient timed out after 1s: job cancelled {cancelled_after:.2f}s later")


# Priority classes -----------------------------------------------------------------------------

PRIORITY = "sim-priority"
CLASSES = ("high", "normal", "low")


def served_by_rule(waiting: list[str], served: int, fair_every: int) -> list[str]:
    """The order in which the documented rule (`JobQueue.lease`) serves `waiting` to a one-slot
    worker that has leased `served` jobs so far: highest class first, except that every
    `fair_every`-th lease of the worker takes the lowest waiting class."""
    waiting, order = list(waiting), []
    while waiting:
        served += 1
        present = [c for c in CLASSES if c in waiting]
        pick = present[-1] if served % fair_every == 0 else present[0]
        waiting.remove(pick)
        order.append(pick)
    return order


async def _queue_depth(cluster: Cluster, model: str, *, until: int, timeout_s: float = 10.0) -> int:
    """The model's queue depth from `/api/cluster`, polled until it reaches `until` (or time is up)."""
    headers = {"Authorization": f"Bearer {cluster.server.admin_key}"}
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(base_url=cluster.server.base_url, headers=headers) as http:
        while True:
            depth = int((await http.get("/api/cluster")).json()["queue_depth"].get(model, 0))
            if depth >= until or time.monotonic() > deadline:
                return depth
            await asyncio.sleep(0.05)


async def _run_order(cluster: Cluster, classes: list[str]) -> list[str]:
    """Keep the one-slot worker busy, queue one request per class in `classes`; the order they ran."""
    async with _client(cluster) as client:
        blocker = asyncio.ensure_future(
            client.completions.create(model=PRIORITY, prompt="blocker", max_tokens=60)  # 3 s
        )
        await cluster.wait_for("SELECT id FROM jobs WHERE status = 'running'")
        requests = [
            asyncio.ensure_future(
                client.completions.create(
                    model=PRIORITY,
                    prompt=f"{priority} {i}",
                    max_tokens=2,
                    extra_headers={PRIORITY_HEADER: priority},
                )
            )
            for i, priority in enumerate(classes)
        ]
        # Synchronous jobs get their row when they start: the queue's own depth says they wait.
        queued = await _queue_depth(cluster, PRIORITY, until=len(classes))
        running = await cluster.rows("SELECT request FROM jobs WHERE status = 'running'")
        assert queued == len(classes)
        assert len(running) == 1, "the blocker ended before every request was queued"
        assert "blocker" in str(running[0]["request"])
        await asyncio.wait_for(asyncio.gather(blocker, *requests), 30)
    rows = await cluster.rows(
        "SELECT priority, status FROM jobs WHERE request::text NOT LIKE '%blocker%' ORDER BY finished_at"
    )
    assert {r["status"] for r in rows} == {"completed"}
    return [r["priority"] for r in rows]


async def test_higher_classes_run_first(cluster_factory: ClusterFactory) -> None:
    cluster = await cluster_factory()
    cluster.worker(PRIORITY, "tokens_per_s=20", "natural_end=false", worker_id="prio-1", slots=1)
    cluster.server.wait_for_model(PRIORITY)
    submitted = ["low", "normal", "high"] * 3
    order = await _run_order(cluster, submitted)
    # The default fair_every (8) makes the blocker's worker's 8th lease a "fair" one; with 3 lows
    # still waiting it takes a low, which is where a low comes anyway.
    assert order == served_by_rule(submitted, served=1, fair_every=8)
    assert order == ["high"] * 3 + ["normal"] * 3 + ["low"] * 3


async def test_low_class_gets_every_fair_every_th_lease(cluster_factory: ClusterFactory) -> None:
    cluster = await cluster_factory()
    env = {"GPUCLOUD_QUEUE__FAIR_EVERY": "3"}  # read by the worker, which runs the lease
    cluster.worker(PRIORITY, "tokens_per_s=20", "natural_end=false", worker_id="fair-1", slots=1, env=env)
    cluster.server.wait_for_model(PRIORITY)
    submitted = ["high", "high", "low", "high", "low", "high"]
    order = await _run_order(cluster, submitted)
    # Leases 3 and 6 of the worker (the blocker was its first) go to the lowest class waiting.
    assert order == served_by_rule(submitted, served=1, fair_every=3)
    assert order == ["high", "low", "high", "high", "low", "high"]


async def test_priority_above_the_keys_ceiling_is_403(cluster_factory: ClusterFactory) -> None:
    cluster = await cluster_factory()
    cluster.worker(PRIORITY, "tokens_per_s=200", worker_id="prio-2", slots=1)
    cluster.server.wait_for_model(PRIORITY)
    key = str((await asyncio.to_thread(create_key, cluster.server, name="normal ceiling"))["key"])
    async with _client(cluster, key) as client:
        with pytest.raises(openai.PermissionDeniedError) as caught:
            await client.completions.create(
                model=PRIORITY, prompt="me first", max_tokens=2, extra_headers={PRIORITY_HEADER: "high"}
            )
        assert caught.value.status_code == 403
        assert _envelope(caught.value)["code"] == "priority_not_allowed"
        ok = await client.completions.create(
            model=PRIORITY, prompt="me later", max_tokens=2, extra_headers={PRIORITY_HEADER: "low"}
        )
        assert ok.choices[0].text
    (job,) = await cluster.rows("SELECT priority FROM jobs")  # the refused request left no job
    assert job["priority"] == "low"


# Backpressure -----------------------------------------------------------------------------------

FULL = "sim-full"


async def test_full_queue_answers_429_with_retry_after(cluster_factory: ClusterFactory) -> None:
    cluster = await cluster_factory({"GPUCLOUD_QUEUE__MAX_DEPTH": "3"})
    cluster.worker(FULL, "tokens_per_s=20", "natural_end=false", worker_id="full-1", slots=1)
    cluster.server.wait_for_model(FULL)
    async with _client(cluster, timeout=20) as client:
        results = await asyncio.wait_for(
            asyncio.gather(
                *(client.completions.create(model=FULL, prompt=f"job {i}", max_tokens=20) for i in range(10)),
                return_exceptions=True,
            ),
            30,
        )
    refused = [r for r in results if isinstance(r, openai.APIStatusError)]
    served = [r for r in results if not isinstance(r, BaseException)]
    assert len(refused) + len(served) == 10, [r for r in results if isinstance(r, BaseException)]
    # One runs, three wait: the rest is refused (more may run if one ends while others arrive).
    assert 1 <= len(served) <= 5
    assert len(refused) >= 5
    for exc in refused:
        assert isinstance(exc, openai.RateLimitError)
        assert exc.status_code == 429
        _retry_after(exc)
        error = _envelope(exc)
        assert (error["type"], error["code"]) == ("rate_limit_error", "queue_full")
    (count,) = (await cluster.rows("SELECT count(*) FROM jobs"))[0]
    (billed,) = (await cluster.rows("SELECT count(*) FROM usage_records"))[0]
    assert count == billed == len(served)  # a refused request leaves no job and no charge
    waits = sorted({int(exc.response.headers["retry-after"]) for exc in refused})
    print(f"\nqueue full (max_depth 3): {len(served)} served, {len(refused)} got 429, Retry-After {waits}")


GONE, CRASHED = "sim-gone", "sim-crashed"


async def test_model_whose_workers_are_gone_answers_503_never_hangs(cluster_factory: ClusterFactory) -> None:
    cluster = await cluster_factory({"GPUCLOUD_QUEUE__MAX_WAIT_S": "2"})
    stopped = cluster.worker(GONE, "tokens_per_s=200", worker_id="gone-1", slots=1)
    crashed = cluster.worker(CRASHED, "tokens_per_s=200", worker_id="crashed-1", slots=1)
    cluster.server.wait_for_model(GONE)
    cluster.server.wait_for_model(CRASHED)
    async with _client(cluster, timeout=20) as client:
        # A worker that stops cleanly withdraws its announcement: 503 within the registry refresh.
        await asyncio.to_thread(stopped.stop)
        withdrawn = await _until_not_served(client, GONE, timeout_s=4)

        # A crashed worker's announcement outlives it for a while; a request meanwhile is queued,
        # nobody takes it, and the gateway gives up after max_wait_s (+ grace): 503, not a hang.
        kill(crashed)
        started = time.monotonic()
        with pytest.raises(openai.InternalServerError) as caught:
            await client.completions.create(model=CRASHED, prompt="anyone?", max_tokens=2)
        waited = time.monotonic() - started
        assert caught.value.status_code == 503
        _retry_after(caught.value)
        assert _envelope(caught.value)["code"] == "queue_timeout"
        assert waited < 2 + 5 + 3
        # Once the announcement expired, the answer is immediate.
        expired = await _until_not_served(client, CRASHED, timeout_s=10)
    (job,) = await cluster.rows("SELECT id, status, error_code FROM jobs WHERE model = $1", CRASHED)
    assert (job["status"], job["error_code"]) == ("failed", "queue_timeout")
    (usage,) = await cluster.usage(job["id"])
    assert usage["completion_tokens"] == 0
    print(
        f"\nno worker: 503 {withdrawn:.2f}s after a clean stop; after a SIGKILL a queued request got 503 "
        f"after {waited:.1f}s, and requests were refused at once {waited + expired:.1f}s after the kill"
    )


async def _until_not_served(client: openai.AsyncOpenAI, model: str, timeout_s: float) -> float:
    """Seconds until the gateway no longer sees a live worker for `model` (probing GET /v1/models/…,
    which queues nothing); then a request for it must get an immediate 503 model_not_loaded."""
    started = time.monotonic()
    while True:
        assert time.monotonic() - started < timeout_s, f"{model} is still listed as served"
        try:
            await client.models.retrieve(model)
        except openai.InternalServerError as exc:
            if exc.status_code == 503:
                break
            raise
        await asyncio.sleep(0.1)
    seen = time.monotonic() - started
    asked = time.monotonic()
    with pytest.raises(openai.InternalServerError) as caught:
        await client.completions.create(model=model, prompt="ping", max_tokens=1)
    assert time.monotonic() - asked < 2
    assert caught.value.status_code == 503
    assert _envelope(caught.value)["code"] == "model_not_loaded"
    _retry_after(caught.value)
    return seen


# Redis outage -------------------------------------------------------------------------------

OUTAGE = "sim-outage"


@pytest.fixture
def redis_proxy() -> Iterator[TcpProxy]:
    proxy = TcpProxy()
    proxy.start()
    yield proxy
    proxy.close()


@pytest.mark.parametrize("cut", ["close", "reset"])
async def test_redis_outage_gives_503_then_recovers_by_itself(
    cut: str, redis_proxy: TcpProxy, cluster_factory: ClusterFactory
) -> None:
    """The gateway and its worker reach Redis through a proxy, which is cut and then restored.

    "close" ends the open connections as a stopping Redis server does (FIN), "reset" as a broken
    network path does (RST); either way every pooled connection is dead when Redis is back.
    """
    cluster = await cluster_factory(redis_url=redis_proxy.url)
    cluster.worker(OUTAGE, "tokens_per_s=200", worker_id="outage-1", slots=4)  # through the proxy too
    cluster.server.wait_for_model(OUTAGE)
    async with _client(cluster, timeout=20) as client:
        before = await client.completions.create(model=OUTAGE, prompt="before", max_tokens=5)
        assert before.choices[0].text

        in_flight = asyncio.ensure_future(
            client.completions.create(model=OUTAGE, prompt="caught in the outage", max_tokens=100)
        )
        await cluster.wait_for("SELECT id FROM jobs WHERE status = 'running'")
        redis_proxy.reset = cut == "reset"
        redis_proxy.stop()
        slowest = 0.0
        for i in range(5):
            asked = time.monotonic()
            with pytest.raises(openai.InternalServerError) as caught:
                await client.completions.create(model=OUTAGE, prompt=f"during {i}", max_tokens=5)
            slowest = max(slowest, time.monotonic() - asked)
            assert caught.value.status_code == 503
            _retry_after(caught.value)
            _envelope(caught.value)
            await asyncio.sleep(0.3)
        assert slowest < 6

        redis_proxy.start()
        restored = time.monotonic()
        while True:
            assert time.monotonic() - restored < 10, "requests still fail 10 s after Redis came back"
            try:
                await client.completions.create(model=OUTAGE, prompt="after", max_tokens=5, timeout=5)
                break
            except (openai.InternalServerError, openai.APITimeoutError):
                await asyncio.sleep(0.25)
        recovered = time.monotonic() - restored
        # The job that was running when Redis went away is answered, not left hanging.
        survivor = await asyncio.wait_for(in_flight, 15)
        answered = time.monotonic() - restored
        assert survivor.usage is not None
        for i in range(5):
            after = await client.completions.create(model=OUTAGE, prompt=f"after {i}", max_tokens=5)
            assert after.choices[0].text
    rows = await cluster.rows("SELECT status FROM jobs")
    assert {r["status"] for r in rows} == {"completed"}  # refused requests left no job behind
    assert len(rows) == 1 + 1 + 1 + 5
    job = await cluster.job(job_id_of(survivor.id))
    assert job is not None
    (usage,) = await cluster.usage(job["id"])
    assert usage["completion_tokens"] == survivor.usage.completion_tokens
    print(
        f"\nredis outage ({cut}): 503s took at most {slowest:.2f}s; served again {recovered:.2f}s after "
        f"restore; the job running at the cut was answered {answered:.2f}s after restore "
        f"(attempt {job['attempts']})"
    )


# Transient engine failures ---------------------------------------------------------------------

FLAKY = "sim-flaky"


async def test_a_transient_engine_failure_before_any_token_runs_the_job_again(
    cluster_factory: ClusterFactory,
) -> None:
    """An engine error marked retryable (an engine server that died) before the first token: the
    worker hands the job back, it runs again as attempt 2, and the client never sees the failure,
    streamed or not; one usage row each."""
    cluster = await cluster_factory()
    cluster.worker(FLAKY, "flaky_marker=FLAKY", worker_id="flaky-1", slots=2)
    cluster.server.wait_for_model(FLAKY)
    async with _client(cluster) as client:
        plain = await client.chat.completions.create(model=FLAKY, messages=_chat("FLAKY plain"), max_tokens=5)
        stream = await client.chat.completions.create(
            model=FLAKY,
            messages=_chat("FLAKY streamed"),
            max_tokens=5,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    assert plain.usage is not None
    assert plain.usage.completion_tokens == 5
    streamed_usage = chunks[-1].usage
    assert streamed_usage is not None
    assert streamed_usage.completion_tokens == 5
    for response_id in (plain.id, chunks[0].id):
        job = await cluster.job(job_id_of(response_id))
        assert job is not None
        assert job["status"] == "completed", dict(job)
        assert job["attempts"] == 2, dict(job)
        (usage,) = await cluster.usage(job["id"])
        assert usage["completion_tokens"] == 5
