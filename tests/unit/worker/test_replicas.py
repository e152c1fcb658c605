"""`ReplicaSet` with the real simulated engine: loading, on-demand loads, LRU eviction, idle unload,
the breaker and memory accounting. The clock is faked; the engines and event loop are real."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pytest

from gpucloud.engines import build_engine
from gpucloud.engines.protocol import Engine, EngineError
from gpucloud.worker.assignment import Assignment
from gpucloud.worker.main import placed_options
from gpucloud.worker.replica import BreakerPolicy
from gpucloud.worker.replicas import ReplicaSet

GPU = "GPU-0"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def assignment(
    name: str, gb: float, *, index: int = 0, on_demand: bool = False, idle: int | None = None, **options: str
) -> Assignment:
    return Assignment(
        deployment_id=f"dep_{name}",
        name=name,
        index=index,
        engine="simulated",
        source=None,
        engine_options=options,
        gpu_uuids=(GPU,),
        gpu_memory_gb=gb,
        on_demand=on_demand,
        idle_unload_seconds=idle,
    )


def build(a: Assignment) -> Engine:
    return build_engine(a.engine, a.name, a.engine_options)


def replica_set(
    clock: Clock, memory: dict[str, float] | None = None, breaker: BreakerPolicy | None = None
) -> ReplicaSet:
    def on_memory(used: Mapping[str, float]) -> None:
        if memory is not None:
            memory.clear()
            memory.update(used)

    return ReplicaSet(build, gpu_total_gb={GPU: 80.0}, on_memory=on_memory, breaker=breaker, clock=clock)


async def settle(rs: ReplicaSet) -> None:
    """Until no replica is loading (engines are built in a thread, then started)."""
    for _ in range(500):
        await asyncio.sleep(0.01)
        if all(r.state != "loading" for r in rs.reports()):
            return


def states(rs: ReplicaSet) -> dict[str, str]:
    return {r.model: r.state for r in rs.reports()}


async def test_always_on_replicas_load_at_once_and_count_their_memory() -> None:
    clock, memory = Clock(), dict[str, float]()
    rs = replica_set(clock, memory)
    rs.apply([assignment("a", 30), assignment("b", 20)])
    await settle(rs)
    assert states(rs) == {"a": "ready", "b": "ready"}
    assert memory == {GPU: 50.0}
    assert rs.models() == ["a", "b"]
    rs.apply([assignment("b", 20)])  # a is no longer assigned here
    await rs.close()
    assert memory == {}


async def test_on_demand_waits_in_standby_and_loads_on_first_acquire() -> None:
    clock = Clock()
    rs = replica_set(clock)
    rs.apply([assignment("od", 30, on_demand=True, idle=10, load_s="0.05")])
    await settle(rs)
    assert states(rs) == {"od": "standby"}
    assert rs.models() == ["od"]  # leasable: the first job loads it
    replica = await rs.acquire("od", timeout_s=5)
    assert replica.engine is not None
    assert states(rs) == {"od": "ready"}
    rs.release(replica)
    clock.now += 11
    await rs.tick()
    report = rs.reports()[0]
    assert report.state == "standby"
    assert "idle" in str(report.reason)
    await rs.close()


async def test_loading_evicts_the_least_recently_used_idle_on_demand_replica() -> None:
    clock, memory = Clock(), dict[str, float]()
    rs = replica_set(clock, memory)
    rs.apply([assignment(n, 35, on_demand=True) for n in ("x", "y", "z")])
    for name in ("x", "y"):
        rs.release(await rs.acquire(name, timeout_s=5))
        clock.now += 1
    assert memory == {GPU: 70.0}
    busy = await rs.acquire("y", timeout_s=5)  # y is busy and the most recent; x is the LRU idle one
    rs.release(await rs.acquire("z", timeout_s=5))
    got = {r.model: (r.state, r.reason) for r in rs.reports()}
    assert got["x"] == ("standby", "unloaded to make room for z")
    assert got["y"][0] == "ready"
    assert got["z"][0] == "ready"
    assert memory == {GPU: 70.0}
    rs.release(busy)
    await rs.close()


async def test_no_room_and_nothing_idle_fails_with_the_shortfall() -> None:
    clock = Clock()
    rs = replica_set(clock)
    rs.apply([assignment("big", 60), assignment("od", 30, on_demand=True)])
    await settle(rs)
    with pytest.raises(EngineError, match=r"needs 30.0 GB, 20.0 GB free"):
        await rs.acquire("od", timeout_s=5)
    await rs.close()


async def test_the_breaker_opens_after_repeated_failures_and_closes_after_the_cooldown() -> None:
    clock = Clock()
    rs = replica_set(clock, breaker=BreakerPolicy(threshold=3, window_s=60, cooldown_s=30))
    rs.apply([assignment("m", 10)])
    await settle(rs)
    for _ in range(3):
        rs.release(await rs.acquire("m", timeout_s=1), error="engine exploded on 'my secret prompt'")
    report = rs.reports()[0]
    assert report.state == "failed"
    assert "taken out of rotation" in str(report.reason)
    assert "secret prompt" not in str(report.reason)  # the reason reaches other clients' 503s
    assert rs.models() == []
    with pytest.raises(EngineError):
        await rs.acquire("m", timeout_s=0.1)
    clock.now += 31
    await rs.tick()
    assert rs.models() == ["m"]
    assert rs.reports()[0].state == "ready"
    await rs.close()


async def test_failures_spread_out_do_not_open_the_breaker() -> None:
    clock = Clock()
    rs = replica_set(clock, breaker=BreakerPolicy(threshold=3, window_s=60, cooldown_s=30))
    rs.apply([assignment("m", 10)])
    await settle(rs)
    for _ in range(5):
        rs.release(await rs.acquire("m", timeout_s=1), error="flaky")
        clock.now += 40
    assert rs.models() == ["m"]
    await rs.close()


async def test_a_failed_load_is_reported_and_retried_with_backoff() -> None:
    clock = Clock()
    rs = replica_set(clock)
    rs.apply([assignment("bad", 10, bogus="1")])
    await settle(rs)
    report = rs.reports()[0]
    assert report.state == "failed"
    assert "unknown simulated engine option" in str(report.reason)
    await rs.tick()  # too early for a retry
    assert rs.reports()[0].state == "failed"
    clock.now += 2.5
    await rs.tick()
    assert rs.reports()[0].state == "loading"
    await settle(rs)
    assert rs.reports()[0].state == "failed"  # still bad; the next retry waits longer (4 s)
    clock.now += 2.5
    await rs.tick()
    assert rs.reports()[0].state == "failed"
    await rs.close()


async def test_a_changed_spec_reloads_the_replica() -> None:
    clock = Clock()
    rs = replica_set(clock)
    rs.apply([assignment("m", 10, ttft_ms="1")])
    await settle(rs)
    first = await rs.acquire("m", timeout_s=1)
    rs.release(first)
    rs.apply([assignment("m", 10, ttft_ms="2")])
    await settle(rs)
    second = await rs.acquire("m", timeout_s=1)
    assert second is not first
    assert second.engine is not first.engine
    rs.release(second)
    await rs.close()


@pytest.mark.parametrize(
    ("engine", "options", "expected"),
    [
        ("transformers", {}, {"device": "cuda:1"}),
        ("transformers", {"device": "cpu"}, {"device": "cpu"}),  # the operator's word wins
        ("sentence-transformers", {}, {"device": "cuda:1"}),
        ("openai", {"preset": "vllm"}, {"preset": "vllm", "cuda_visible_devices": "GPU-b"}),
        ("openai", {"url": "http://127.0.0.1:9"}, {"url": "http://127.0.0.1:9"}),
        ("simulated", {}, {}),
    ],
)
def test_a_replica_is_pinned_to_the_gpus_it_was_given(
    engine: str, options: dict[str, str], expected: dict[str, str]
) -> None:
    a = Assignment("dep_x", "x", 0, engine, None, options, ("GPU-b",), 10.0)
    assert placed_options(a, {"GPU-a": 0, "GPU-b": 1}) == expected
