"""Cluster mode under worker failures (docs/architecture.md §4): no job lost, none billed twice.

Real `gpucloud serve` gateways and `gpucloud worker` processes on Redis and PostgreSQL; workers
are SIGKILLed, SIGSTOPped and crash on purpose, and the database is checked afterwards: every job
ends, exactly one usage row per job, and what a client was told is what was billed.
"""

from __future__ import annotations

import asyncio
import random
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest
from redis import Redis

from tests.integration.cluster_support import (
    LEASE_TIMEOUT_S,
    Cluster,
    ClusterFactory,
    cluster_factory_fixture,  # noqa: F401 — the fixture `cluster_factory`
    job_id_of,
    kill,
    openai_client,
)
from tests.support import Worker

pytestmark = pytest.mark.redis

MODEL = "sim-chaos"
TERMINAL = ("completed", "failed", "cancelled", "dead")
MAX_KILLS = 15


@dataclass
class Result:
    """What one client saw."""

    index: int
    stream: bool
    endpoint: str
    ok: bool = False
    response_id: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    chunks: int = 0  # content chunks received: each carries at least one token
    status: int | None = None  # HTTP status of an error answered before the body
    code: str | None = None
    error: str = ""


def _request(index: int, rng: random.Random) -> tuple[str, bool, dict[str, Any]]:
    endpoint = "chat" if index % 2 == 0 else "completion"
    stream = index % 4 >= 2
    # One in ten runs for a second or more, so that a kill finds jobs to catch even when the
    # gateways, not the workers, are the bottleneck (a busy machine).
    tokens = rng.randint(300, 450) if index % 10 == 9 else rng.randint(16, 96)
    body: dict[str, Any] = {"model": MODEL, "max_tokens": tokens}
    text = f"request {index}: tell me something"
    if endpoint == "chat":
        body["messages"] = [{"role": "user", "content": text}]
    else:
        body["prompt"] = text
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return endpoint, stream, body


async def _call(client: openai.AsyncOpenAI, index: int, rng: random.Random) -> Result:
    endpoint, stream, body = _request(index, rng)
    result = Result(index, stream, endpoint)
    api = client.chat.completions if endpoint == "chat" else client.completions
    try:
        if not stream:
            response = await api.create(**body)
            result.response_id = response.id
            assert response.usage is not None
            result.prompt_tokens = response.usage.prompt_tokens
            result.completion_tokens = response.usage.completion_tokens
            result.ok = True
            return result
        chunks = await api.create(**body)
        async for chunk in chunks:
            result.response_id = chunk.id
            for choice in chunk.choices:
                text = choice.delta.content if endpoint == "chat" else choice.text
                if text:
                    result.chunks += 1
            if chunk.usage is not None:
                result.prompt_tokens = chunk.usage.prompt_tokens
                result.completion_tokens = chunk.usage.completion_tokens
        result.ok = True
    except openai.APIStatusError as exc:
        result.status, result.code, result.error = exc.status_code, exc.code, exc.message
    except (openai.APITimeoutError, openai.APIConnectionError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"  # a hang or a dropped connection: never expected
    except openai.APIError as exc:  # an error event in the stream, after the 200
        result.code, result.error = exc.code, exc.message
    return result


@dataclass
class Kill:
    """One SIGKILL: when, and the jobs whose deliveries the victim held (pending for it in Redis)."""

    at: float
    worker_id: str
    running: list[str]


def _chaos(cluster: Cluster, workers: dict[str, Worker], stop: threading.Event, kills: list[Kill]) -> None:
    """Every 1–2 s SIGKILL a serving worker, one that holds jobs when there is one, and start a
    replacement; at most `MAX_KILLS` times, since each replacement's start costs a few seconds of
    CPU that a loaded machine takes from the load.

    A kill waits until another worker serves, so that the victim's jobs have somewhere to go: on a
    loaded machine replacements take seconds to start, and kills every 1–2 s would otherwise leave
    a fleet of starting workers, and measure their start rather than the lease's reclaim.

    It runs in its own thread with a blocking Redis client: on the load's event loop, a loaded
    machine made it kill far less often, and asked for the victim's jobs so late that another
    worker had already taken them over (the lease is 1.5 s), so no kill seemed to catch a job."""
    rng = random.Random(7)
    serial = len(workers)
    serving: set[str] = set()
    with cluster.redis() as client:
        while len(kills) < MAX_KILLS and not stop.wait(rng.uniform(1.0, 2.0)):
            serving |= {name for name in set(workers) - serving if "serving" in workers[name].logs()}
            if len(serving) < 2:
                continue
            victim = _busy_worker(cluster, client, sorted(serving), rng)
            kill(workers.pop(victim))
            at = time.time()
            kills.append(Kill(at, victim, cluster.held_jobs(client, MODEL, victim)))
            serving.discard(victim)
            serial += 1
            workers[f"chaos-{serial}"] = _chaos_worker(cluster, serial)


def _busy_worker(cluster: Cluster, client: Redis, names: list[str], rng: random.Random) -> str:
    """One of `names` that holds jobs now, so that the kill catches some (on a busy machine a
    fresh replacement may not have taken any yet); any when none holds one, so that the kills go
    on at their pace whatever the load."""
    busy = [name for name in names if cluster.held_jobs(client, MODEL, name)]
    return rng.choice(busy or names)


def _chaos_worker(cluster: Cluster, serial: int) -> Worker:
    return cluster.worker(MODEL, "tokens_per_s=300", worker_id=f"chaos-{serial}", slots=4)


async def test_chaos_sigkill_workers_under_load(cluster_factory: ClusterFactory) -> None:
    """2 gateways, 3 workers, 500+ mixed jobs while a worker is SIGKILLed every 1–2 s."""
    cluster = await cluster_factory({"GPUCLOUD_LOG_LEVEL": "INFO"})  # DEBUG costs this test's CPU
    second = cluster.add_gateway("gw-2")
    workers = {f"chaos-{i}": _chaos_worker(cluster, i) for i in range(3)}
    cluster.server.wait_for_model(MODEL)
    second.wait_for_model(MODEL)
    clients = [openai_client(gw.v1, cluster.server.admin_key) for gw in (cluster.server, second)]
    stop, kills = threading.Event(), list[Kill]()
    chaos = asyncio.create_task(asyncio.to_thread(_chaos, cluster, workers, stop, kills))
    started = time.monotonic()
    try:
        # The SDK's own timeout (30 s without a byte) catches a hung request; this one the whole run.
        results = await asyncio.wait_for(_load(clients, kills), 180)
    finally:
        stop.set()
        await chaos
        for client in clients:
            await client.close()
    elapsed = time.monotonic() - started

    # No request hung or lost its connection; the only errors are the designed ones.
    broken = [r for r in results if not r.ok and r.code is None]
    assert not broken, broken[:5]
    for r in results:
        if r.ok:
            continue
        if r.stream and r.chunks > 0:
            assert r.code == "worker_lost", r  # died after the first token: an error event
        else:
            # Killed max_attempts times; or, on a loaded machine where replacements take seconds to
            # start, sent while every worker of the model was dead: the designed retryable 503.
            assert (r.status, r.code) in ((500, "dead_lettered"), (503, "model_not_loaded")), r
    await _check_ledger(cluster, results)
    delays = await _check_reruns(cluster, kills)
    assert len(kills) >= 3
    assert delays, "no SIGKILL caught a job"
    # A lost job is taken up again within a bounded time: typically the lease timeout and a poll;
    # the bound on the slowest leaves room for a machine busy with other work.
    assert sorted(delays)[len(delays) // 2] < LEASE_TIMEOUT_S + 1.5, delays
    assert max(delays) < 15, delays
    print(
        f"\nchaos: {len(results)} requests in {elapsed:.1f}s, {len(kills)} SIGKILLs, "
        f"{sum(r.ok for r in results)} ok, {sum(not r.ok and r.stream for r in results)} streams cut "
        f"after their first token, {sum(r.code == 'dead_lettered' for r in results)} dead-lettered; "
        f"{len(delays)} jobs caught by a kill, taken up again after "
        f"min {min(delays):.2f}s / median {sorted(delays)[len(delays) // 2]:.2f}s / max {max(delays):.2f}s"
    )


async def _load(clients: list[openai.AsyncOpenAI], kills: list[Kill]) -> list[Result]:
    """40 requests at a time: 500, and on until there were 3 kills and one caught a job (a fast
    machine finishes 500 before the chaos has done much), for at most 120 s."""
    rng = random.Random(42)
    results: list[Result] = []
    issued = 0
    until = time.monotonic() + 120

    def more() -> bool:
        caught = any(k.running for k in kills)
        return issued < 500 or ((len(kills) < 3 or not caught) and time.monotonic() < until)

    async def lane() -> None:
        nonlocal issued
        while more():
            index = issued
            issued += 1
            results.append(await _call(clients[index // 4 % 2], index, rng))  # each kind on both

    await asyncio.gather(*(lane() for _ in range(40)))
    return sorted(results, key=lambda r: r.index)


async def _check_ledger(cluster: Cluster, results: list[Result]) -> None:
    # Every job ends. A client is answered only after its job's ending was committed, so only jobs
    # whose client gave up (none is expected) could still be settling.
    active = await cluster.wait_for(
        "SELECT id, status FROM jobs WHERE status NOT IN ('completed', 'failed', 'cancelled', 'dead')",
        timeout_s=5,
        until=lambda rows: not rows,
    )
    assert not active, active[:5]
    jobs = {r["id"]: r for r in await cluster.rows("SELECT * FROM jobs")}
    usage = {r["job_id"]: r for r in await cluster.rows("SELECT * FROM usage_records")}
    (count,) = (await cluster.rows("SELECT count(*) FROM usage_records"))[0]
    # One job per request, none duplicated; none for a request refused because no worker was up.
    refused = sum(1 for r in results if r.code == "model_not_loaded")
    assert len(jobs) == len(results) - refused
    assert count == len(usage) == len(jobs)  # exactly one usage row per job
    assert set(usage) == set(jobs)
    for job_id, job in jobs.items():
        assert usage[job_id]["status"] == job["status"], (job_id, job["status"], usage[job_id]["status"])
    for r in results:
        if r.response_id is None:
            continue
        job_id = job_id_of(r.response_id)
        row, job = usage[job_id], jobs[job_id]
        if r.ok:
            assert job["status"] == "completed", r
            billed = (row["prompt_tokens"], row["completion_tokens"])
            assert billed == (r.prompt_tokens, r.completion_tokens), r
            assert r.chunks <= r.completion_tokens
        else:
            # Cut mid-stream: billed for the tokens published, at least those the client got.
            assert (job["status"], job["error_code"]) == ("failed", "worker_lost"), (r, dict(job))
            assert row["completion_tokens"] >= r.chunks > 0, (r, dict(row))
            assert row["prompt_tokens"] > 0


async def _check_reruns(cluster: Cluster, kills: list[Kill]) -> list[float]:
    """Every job a SIGKILLed worker held ended after the kill: as `worker_lost` (a stream past its
    first token), dead-lettered, or completed by a later attempt on another worker, which its row
    names. Returns the seconds from the kill to that ending or that attempt's start."""
    caught: dict[str, Kill] = {}
    for k in kills:
        for job_id in k.running:
            caught[job_id] = k  # the latest kill that caught it
    delays = []
    for job_id, k in caught.items():
        job = await cluster.job(job_id)
        assert job is not None
        assert job["finished_at"].timestamp() > k.at, dict(job)
        if job["error_code"] == "worker_lost":
            delays.append(job["finished_at"].timestamp() - k.at)
        elif job["status"] == "completed":
            assert job["attempts"] >= 2, dict(job)
            assert job["worker_id"] != k.worker_id, dict(job)  # the accepted attempt's worker
            assert job["started_at"].timestamp() > k.at, dict(job)  # and when that attempt began
            delays.append(job["started_at"].timestamp() - k.at)
        else:
            assert job["status"] == "dead", dict(job)
    return delays


# A worker stopped (not dead) past its lease ----------------------------------------------------

SLOW = "sim-slow"


async def _wait_serving(worker: Worker, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while "serving" not in worker.logs():
        assert time.monotonic() < deadline, worker.logs()[-2000:]
        await asyncio.sleep(0.05)


async def test_sigstopped_worker_loses_its_job_and_its_late_result_is_fenced(
    cluster_factory: ClusterFactory,
) -> None:
    """A worker frozen mid-job (SIGSTOP) past its lease: another worker re-runs the job; the frozen
    one, resumed, adds no second result, no second charge, and does not stay named on the job."""
    cluster = await cluster_factory()
    # 13 s for the job on the slow worker: time enough, on a loaded machine, for the fast worker to
    # start and the stop to find the job still running.
    frozen = cluster.worker(SLOW, "tokens_per_s=3", "natural_end=false", worker_id="stop-slow", slots=2)
    await _wait_serving(frozen)
    cluster.server.wait_for_model(SLOW)
    client = openai_client(cluster.server.v1, cluster.server.admin_key)
    request = client.chat.completions.create(
        model=SLOW, messages=[{"role": "user", "content": "take your time"}], max_tokens=40
    )
    answer = asyncio.ensure_future(request)
    (job,) = await cluster.wait_for("SELECT id, worker_id FROM jobs WHERE status = 'running'")
    assert job["worker_id"] == "stop-slow"
    # A faster machine joins; it runs the job in a tenth of a second once it gets it.
    fast = cluster.worker(SLOW, "tokens_per_s=400", "natural_end=false", worker_id="stop-fast", slots=2)
    await _wait_serving(fast)
    frozen.signal(signal.SIGSTOP)
    stopped = time.time()
    assert (await cluster.job(job["id"]) or {}).get("status") == "running"  # frozen mid-job

    response = await asyncio.wait_for(answer, 15)
    answered = time.time() - stopped
    frozen.signal(signal.SIGCONT)  # it wakes up holding a lease that is no longer its own
    await asyncio.sleep(1.5)  # its renewal fails, or its late outcome arrives and is fenced
    assert job_id_of(response.id) == job["id"]
    assert response.usage is not None
    assert response.usage.completion_tokens == 40
    row = await cluster.job(job["id"])
    assert row is not None
    assert (row["status"], row["attempts"], row["worker_id"]) == ("completed", 2, "stop-fast")
    assert row["started_at"].timestamp() > stopped  # the accepted attempt's start, not the frozen one's
    (usage,) = await cluster.usage(job["id"])
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (
        response.usage.prompt_tokens,
        response.usage.completion_tokens,
    )
    assert len(await cluster.rows("SELECT id FROM usage_records")) == 1
    resumed = frozen.process
    assert resumed is not None
    assert resumed.poll() is None  # alive, not wedged
    await client.close()
    # Which way the stale attempt ended: its worker saw the lease gone, or it reported and was fenced.
    path = "its lease renewal" if "lost the lease" in frozen.logs() else "the finalizer's fence"
    print(
        f"\nSIGSTOP: attempt 2 started on the other worker {row['started_at'].timestamp() - stopped:.2f}s "
        f"after the stop (lease {LEASE_TIMEOUT_S}s), answered after {answered:.2f}s; the resumed "
        f"attempt was stopped by {path}"
    )


# A job that kills every worker that runs it --------------------------------------------------

POISON = "sim-poison"


async def _supervise(cluster: Cluster, workers: list[Worker], exits: list[int], stop: asyncio.Event) -> None:
    """Restart each worker as soon as it dies, as a process supervisor would."""
    generation = 0
    while not stop.is_set():
        for i, worker in enumerate(workers):
            assert worker.process is not None
            code = worker.process.poll()
            if code is not None:
                exits.append(code)
                generation += 1
                workers[i] = _poison_worker(cluster, f"boom-{i}-{generation}")
        await asyncio.sleep(0.05)


def _poison_worker(cluster: Cluster, worker_id: str) -> Worker:
    # One slot: a crash takes down only the job that caused it.
    return cluster.worker(POISON, "crash_marker=BOOM", "tokens_per_s=200", worker_id=worker_id, slots=1)


async def test_job_that_crashes_its_workers_is_dead_lettered_while_others_complete(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = await cluster_factory({"GPUCLOUD_QUEUE__MAX_ATTEMPTS": "2"})
    workers = [_poison_worker(cluster, f"boom-{i}-0") for i in range(2)]
    for worker in workers:
        await _wait_serving(worker)
    cluster.server.wait_for_model(POISON)
    stop, exits = asyncio.Event(), list[int]()
    supervisor = asyncio.create_task(_supervise(cluster, workers, exits, stop))
    client = openai_client(cluster.server.v1, cluster.server.admin_key)
    completed: list[float] = []

    async def ordinary(loop: int) -> None:
        for i in range(1000):
            if poison.done() and i > 3:
                return
            prompt = f"ordinary {loop}.{i}"
            response = await client.completions.create(model=POISON, prompt=prompt, max_tokens=8)
            assert response.choices[0].text
            completed.append(time.monotonic())

    submitted = time.monotonic()
    poison = asyncio.ensure_future(
        client.chat.completions.create(
            model=POISON, messages=[{"role": "user", "content": "please BOOM now"}], max_tokens=8
        )
    )
    try:
        await asyncio.wait_for(asyncio.gather(ordinary(0), ordinary(1)), 40)
        with pytest.raises(openai.InternalServerError) as caught:
            await poison
    finally:
        stop.set()
        await supervisor
        await client.close()
    answered = time.monotonic()

    error = caught.value
    assert error.status_code == 500
    assert error.code == "dead_lettered"
    assert set(error.response.json()["error"]) >= {"message", "type", "param", "code"}
    (dead,) = await cluster.rows("SELECT * FROM jobs WHERE status = 'dead'")
    assert (dead["attempts"], dead["error_code"]) == (2, "dead_lettered")
    assert "BOOM" in str(dead["request"])
    (usage,) = await cluster.usage(dead["id"])
    assert (usage["status"], usage["completion_tokens"]) == ("dead", 0)
    assert exits == [86, 86]  # delivered exactly max_attempts times, each delivery a crash
    during = [t for t in completed if submitted < t < answered]
    assert len(during) >= 5, f"only {len(during)} ordinary jobs completed while the poison job was retried"
    others = await cluster.rows("SELECT id FROM jobs WHERE status <> 'completed' AND id <> $1", dead["id"])
    assert others == []
    listed = await asyncio.to_thread(
        httpx.get,
        f"{cluster.server.base_url}/api/jobs",
        params={"status": "dead"},
        headers={"Authorization": f"Bearer {cluster.server.admin_key}"},
    )
    assert [j["id"] for j in listed.json()["data"]] == [dead["id"]]  # visible to an operator
    print(
        f"\npoison: dead-lettered after {answered - submitted:.1f}s and {len(exits)} worker crashes; "
        f"{len(during)} ordinary jobs completed meanwhile"
    )
