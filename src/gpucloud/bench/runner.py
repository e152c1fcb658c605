"""Running one level of a benchmark: a fixed number of requests always in flight (`concurrency`), or
arrivals at a Poisson `request_rate` (exponential gaps, as vLLM's benchmark with burstiness 1); each
for `requests` requests or for `duration_s` seconds (then the requests in flight are awaited and
counted). A level's duration runs from its first send to its last answer.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx

from gpucloud.bench.client import RequestResult, Target, send
from gpucloud.bench.workload import BenchRequest

Progress = Callable[[RequestResult], None]


@dataclass(frozen=True, slots=True)
class Plan:
    """What every level shares. Exactly one of `requests` and `duration_s` is set."""

    target: Target
    api_key: str | None
    requests: int | None
    duration_s: float | None
    timeout_s: float = 600.0
    seed: int = 0


@dataclass(slots=True)
class _Budget:
    """Whether another request may start: by count, or until the deadline."""

    plan: Plan
    started: int = 0
    deadline: float = 0.0

    def take(self) -> bool:
        if self.plan.requests is not None and self.started >= self.plan.requests:
            return False
        if self.plan.duration_s is not None and time.perf_counter() >= self.deadline:
            return False
        self.started += 1
        return True


def _client(plan: Plan, connections: int) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {plan.api_key}"} if plan.api_key else {}
    return httpx.AsyncClient(
        headers=headers,
        timeout=httpx.Timeout(plan.timeout_s, connect=10.0),
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
    )


async def at_concurrency(
    plan: Plan, workload: Iterator[BenchRequest], concurrency: int, progress: Progress
) -> tuple[list[RequestResult], float]:
    results: list[RequestResult] = []
    start = time.perf_counter()
    budget = _Budget(plan, deadline=start + (plan.duration_s or 0))

    async def lane(client: httpx.AsyncClient) -> None:
        while budget.take():
            result = await send(client, plan.target, next(workload))
            results.append(result)
            progress(result)

    async with _client(plan, concurrency) as client:
        await asyncio.gather(*(lane(client) for _ in range(concurrency)))
    return results, time.perf_counter() - start


async def at_rate(
    plan: Plan, workload: Iterator[BenchRequest], rate: float, progress: Progress
) -> tuple[list[RequestResult], float]:
    results: list[RequestResult] = []
    rng = random.Random(plan.seed)
    start = time.perf_counter()
    budget = _Budget(plan, deadline=start + (plan.duration_s or 0))

    async def one(client: httpx.AsyncClient, request: BenchRequest) -> None:
        result = await send(client, plan.target, request)
        results.append(result)
        progress(result)

    async with _client(plan, 1000) as client, asyncio.TaskGroup() as tasks:
        while budget.take():
            tasks.create_task(one(client, next(workload)))
            if plan.requests is not None and budget.started >= plan.requests:
                break  # no gap after the last arrival: it would only pad the duration
            await asyncio.sleep(rng.expovariate(rate))
    return results, time.perf_counter() - start
