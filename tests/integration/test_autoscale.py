"""Autoscaling on the fleet of `test_deployments` (a gateway on Redis and PostgreSQL, three
`gpucloud worker` processes with simulated GPUs): a backed-up queue grows a deployment to its
`max_replicas` and, once the load stops, it shrinks back to `min_replicas` after the calm delay;
a deployment at zero replicas is woken by its first request, which succeeds. Every decision is in
`autoscale.last_decision` and in the metrics."""

from __future__ import annotations

import asyncio
import time

import httpx

from tests.integration.cluster_support import openai_client
from tests.integration.test_deployments import admin, chat, create, delete, fleet, show, wait_until
from tests.support import Server

__all__ = ["fleet"]  # the module's fixture, shared


def replicas_of(server: Server, ref: str) -> int:
    return int(show(server, ref)["replicas"])


async def _burst(server: Server, model: str, count: int) -> list[int]:
    client = openai_client(server.v1, server.admin_key, timeout=120)

    async def one() -> int:
        out = await client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "go"}], max_tokens=30
        )
        assert out.usage is not None
        return out.usage.completion_tokens

    try:
        return await asyncio.gather(*(one() for _ in range(count)))
    finally:
        await client.close()


def test_a_backed_up_queue_grows_to_max_and_shrinks_back(fleet: tuple[Server, str]) -> None:
    server, _ = fleet
    scale = {"min_replicas": 1, "max_replicas": 3, "target_queue_per_replica": 2, "scale_down_delay_s": 3}
    options = {"tokens_per_s": "60"}  # 30 tokens: about half a second per request
    r = create(server, name="elastic", replicas=1, gpu_memory_gb=10, engine_options=options, autoscale=scale)
    assert r.status_code == 201, r.text
    assert r.json()["autoscale"]["max_replicas"] == 3
    wait_until(lambda: show(server, "elastic")["ready_replicas"] == 1, timeout_s=20)
    seen: list[int] = []

    async def scenario() -> tuple[list[int], float | None, float | None]:
        began = time.monotonic()
        load = asyncio.create_task(_burst(server, "elastic", 64))
        decided = ready_at = None
        while not load.done() or (ready_at is None and time.monotonic() - began < 20):
            d = await asyncio.to_thread(show, server, "elastic")
            seen.append(d["replicas"])
            if decided is None and d["replicas"] == 3:
                decided = time.monotonic() - began
            if ready_at is None and d["ready_replicas"] == 3:
                ready_at = time.monotonic() - began
            await asyncio.sleep(0.1)
        return await load, decided, ready_at

    tokens, decided, ready_at = asyncio.run(scenario())
    assert len(tokens) == 64
    assert all(t > 0 for t in tokens)
    assert max(seen) == 3, seen  # grew to max_replicas, never past it
    assert decided is not None, seen
    # On a loaded machine the burst may be served before the third replica finishes loading.
    ready = (
        f"all 3 ready after {ready_at:.2f} s" if ready_at is not None else "drained before all 3 were ready"
    )
    print(f"\nqueue backed up: 3 replicas asked for after {decided:.2f} s, {ready}")
    back = wait_until(lambda: (x := show(server, "elastic"))["replicas"] == 1 and x, timeout_s=30)
    decision = back["autoscale"]["last_decision"]
    assert decision["action"] == "scale_down", decision
    assert decision["to_replicas"] == 1
    assert "queued" in decision["reason"]
    wait_until(lambda: len(show(server, "elastic")["replica_states"]) == 1, timeout_s=15)
    metrics = httpx.get(f"{server.base_url}/metrics", headers=admin(server), timeout=10).text
    assert 'gpucloud_autoscale_decisions_total{action="scale_up",deployment="elastic"}' in metrics
    assert 'gpucloud_autoscale_decisions_total{action="scale_down",deployment="elastic"}' in metrics
    delete(server, "elastic")


def test_scale_from_zero_on_the_first_request(fleet: tuple[Server, str]) -> None:
    server, _ = fleet
    scale = {"min_replicas": 0, "max_replicas": 2, "scale_down_delay_s": 1}
    r = create(server, name="sleepy", replicas=0, gpu_memory_gb=10, autoscale=scale)
    assert r.status_code == 201, r.text
    d = show(server, "sleepy")
    assert (d["replicas"], d["replica_states"]) == (0, [])
    started = time.monotonic()
    answer = chat(server, "sleepy")  # queues; the queue's depth wakes one replica
    woke_in = time.monotonic() - started
    assert answer.status_code == 200, answer.text
    print(f"\nscale from zero: first request answered in {woke_in:.2f} s")
    metrics = httpx.get(f"{server.base_url}/metrics", headers=admin(server), timeout=10).text
    assert 'gpucloud_autoscale_decisions_total{action="scale_up",deployment="sleepy"} 1.0' in metrics
    back = wait_until(lambda: (x := show(server, "sleepy"))["replicas"] == 0 and x, timeout_s=20)
    assert back["autoscale"]["last_decision"]["action"] == "scale_down"
    wait_until(lambda: show(server, "sleepy")["replica_states"] == [], timeout_s=15)
    delete(server, "sleepy")


def test_bad_autoscale_bounds_are_a_400(fleet: tuple[Server, str]) -> None:
    server, _ = fleet
    r = create(server, name="inverted", autoscale={"min_replicas": 3, "max_replicas": 1})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == "autoscale.min_replicas"
    r = create(server, name="inverted", autoscale={"min_replicas": 1, "max_replicas": 0})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == "autoscale.max_replicas"
