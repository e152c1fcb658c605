"""`ClusterGauges` (observability/cluster.py) on the real in-process queue: only the lease holder
exports the cluster-wide gauges, from the queue's workers and the fleet's rows."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from gpucloud.db import WorkerNode
from gpucloud.engines.protocol import GenerationRequest
from gpucloud.observability.cluster import ClusterGauges
from gpucloud.observability.metrics import Metrics
from gpucloud.queue.memory import MemoryJobQueue
from gpucloud.queue.messages import JobMessage, Priority, WorkerInfo

NOW = datetime(2026, 11, 29, tzinfo=UTC)


def row(wid: str, state: str, *gpus: dict[str, object]) -> WorkerNode:
    return WorkerNode(
        id=wid,
        hostname=wid,
        labels={},
        inventory={"gpus": list(gpus)},
        models=[],
        slots=4,
        state=state,
        draining=False,
        registered_at=NOW,
        last_heartbeat_at=NOW,
        consecutive_beats=3,
    )


GPU = {
    "index": 0,
    "uuid": "u",
    "name": "H100",
    "memory_used_bytes": 5,
    "memory_total_bytes": 80,
    "utilization": 0.5,
}


async def fleet() -> Sequence[WorkerNode]:
    return [row("w1", "healthy", GPU), row("w2", "offline", GPU), row("w3", "unhealthy")]


async def replicas() -> Mapping[tuple[str, str], int]:
    return {("llama", "ready"): 2, ("llama", "starting"): 1}


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


async def test_the_leader_exports_and_the_follower_clears() -> None:
    queue = MemoryJobQueue()
    await queue.announce(WorkerInfo("w1", ["llama"], slots=8, running=3, running_by_model={"llama": 3}), 60)
    for i, priority in enumerate((Priority.HIGH, Priority.LOW, Priority.LOW)):
        await queue.submit(
            JobMessage(
                f"job_{i}",
                "llama",
                priority,
                GenerationRequest("chat", "llama"),
                "gw",
                enqueued_at=time.time(),
            )
        )
    leader_metrics, follower_metrics = Metrics(), Metrics()
    leader = ClusterGauges(leader_metrics, queue, "gw-a", fleet=fleet, replicas=replicas)
    follower = ClusterGauges(follower_metrics, queue, "gw-b", fleet=fleet, replicas=replicas)
    follower_metrics.workers.labels(state="live").set(99)  # stale, from when it led
    await leader.refresh()
    await follower.refresh()
    assert (leader.leading, follower.leading) == (True, False)
    assert value(follower_metrics, "gpucloud_workers", state="live") is None

    m = leader_metrics
    assert value(m, "gpucloud_workers", state="live") == 1
    assert value(m, "gpucloud_worker_slots", worker="w1") == 8
    assert value(m, "gpucloud_worker_running_jobs", worker="w1") == 3
    assert value(m, "gpucloud_model_workers", model="llama") == 1
    assert value(m, "gpucloud_queue_depth", model="llama", priority="high") == 1
    assert value(m, "gpucloud_queue_depth", model="llama", priority="normal") == 0
    assert value(m, "gpucloud_queue_depth", model="llama", priority="low") == 2
    assert value(m, "gpucloud_replica_running_requests", worker="w1", model="llama") == 3
    assert value(m, "gpucloud_deployment_replicas", deployment="llama", state="starting") == 1
    assert [value(m, "gpucloud_workers", state=s) for s in ("healthy", "unhealthy", "offline")] == [1, 1, 1]
    assert value(m, "gpucloud_gpu_memory_used_bytes", worker="w1", gpu="0") == 5
    assert value(m, "gpucloud_gpu_utilization_ratio", worker="w1", gpu="0") == 0.5
    # An offline worker's readings are stale; a reading a GPU does not give is absent, not 0.
    assert value(m, "gpucloud_gpu_memory_used_bytes", worker="w2", gpu="0") is None
    assert value(m, "gpucloud_gpu_temperature_celsius", worker="w1", gpu="0") is None


async def test_a_refresh_drops_workers_that_left() -> None:
    queue = MemoryJobQueue()
    await queue.announce(WorkerInfo("w1", ["a"], slots=2), 60)
    metrics = Metrics()
    gauges = ClusterGauges(metrics, queue, "gw")
    await gauges.refresh()
    assert value(metrics, "gpucloud_worker_slots", worker="w1") == 2
    await queue.withdraw("w1")
    await gauges.refresh()
    assert value(metrics, "gpucloud_worker_slots", worker="w1") is None
    assert value(metrics, "gpucloud_model_workers", model="a") == 0  # still a known model, now unserved
    assert value(metrics, "gpucloud_workers", state="live") == 0
