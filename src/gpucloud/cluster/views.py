"""What the admin API shows of the fleet: one worker, and the cluster's totals."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from gpucloud.cluster.health import WorkerState
from gpucloud.db import WorkerNode
from gpucloud.db.models import utcnow
from gpucloud.queue.protocol import JobQueue


def gpu_view(gpu: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "index": gpu.get("index"),
        "uuid": gpu.get("uuid"),
        "name": gpu.get("name"),
        "memory_used_bytes": gpu.get("memory_used_bytes", 0),
        "memory_total_bytes": gpu.get("memory_total_bytes", 0),
        "utilization": gpu.get("utilization"),
        "temperature_c": gpu.get("temperature_c"),
        "power_w": gpu.get("power_w"),
    }


def worker_view(row: WorkerNode, now: datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    load = row.load or {}
    inventory = row.inventory or {}
    return {
        "id": row.id,
        "object": "worker",
        "hostname": row.hostname,
        "labels": row.labels,
        "state": row.state,
        "draining": row.draining,
        "registered_at": row.registered_at.isoformat(),
        "last_heartbeat_at": row.last_heartbeat_at.isoformat(),
        "last_heartbeat_age_s": round(max(0.0, (now - row.last_heartbeat_at).total_seconds()), 3),
        "consecutive_beats": row.consecutive_beats,
        "slots": row.slots,
        "running": int(load.get("running", 0)),
        "queued": int(load.get("queued", 0)),
        "tokens_per_s": float(load.get("tokens_per_s", 0.0)),
        "models": hosted_models(row),
        "replicas": load.get("replicas", []),
        "engine_load": load.get("engines", {}),
        "cpu_count": inventory.get("cpu_count"),
        "memory_total_bytes": inventory.get("memory_total_bytes"),
        "memory_available_bytes": inventory.get("memory_available_bytes"),
        "gpus": [gpu_view(gpu) for gpu in inventory.get("gpus", [])],
    }


def gpus_of(rows: Iterable[WorkerNode]) -> list[tuple[str, dict[str, Any]]]:
    """(worker id, GPU view) for every GPU of every worker."""
    return [(row.id, gpu_view(gpu)) for row in rows for gpu in (row.inventory or {}).get("gpus", [])]


def hosted_models(row: WorkerNode) -> list[str]:
    """What a worker serves: its fixed models and the deployment replicas its last beat reported."""
    replicas = (row.load or {}).get("replicas", [])
    dynamic = {
        str(r.get("model")) for r in replicas if r.get("model") and r.get("state") in ("ready", "standby")
    }
    return sorted(set(row.models) | dynamic)


async def cluster_view(
    rows: Sequence[WorkerNode], queue: JobQueue, deployments: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Totals over the fleet, queue depth per model from the queue, and (given the deployment
    views) each deployment's replicas."""
    by_state = {state.value: 0 for state in WorkerState}
    for row in rows:
        by_state[row.state] = by_state.get(row.state, 0) + 1
    serving = [r for r in rows if r.state == WorkerState.HEALTHY.value and not r.draining]
    served = sorted({model for row in serving for model in hosted_models(row)})
    depth: dict[str, int] = {}
    for model in sorted(set(served) | set(await queue.known_models()) | set(deployments or {})):
        depth[model] = sum((await queue.depth(model)).values())
    return {
        "object": "cluster",
        "workers": {"total": len(rows), "draining": sum(1 for r in rows if r.draining), **by_state},
        "gpus": _gpu_totals(rows),
        "slots": sum(r.slots for r in serving),
        # An offline worker's last report is stale: its jobs were reclaimed by now.
        "running": sum(
            int((r.load or {}).get("running", 0)) for r in rows if r.state != WorkerState.OFFLINE.value
        ),
        "queue_depth": depth,
        "models": served,
        "deployments": {name: _deployment_summary(view) for name, view in (deployments or {}).items()},
    }


def _gpu_totals(rows: Sequence[WorkerNode]) -> dict[str, int]:
    gpus = [gpu for _, gpu in gpus_of(rows)]
    used = sum(int(gpu["memory_used_bytes"] or 0) for gpu in gpus)
    total = sum(int(gpu["memory_total_bytes"] or 0) for gpu in gpus)
    return {
        "count": len(gpus),
        "memory_used_bytes": used,
        "memory_free_bytes": max(0, total - used),
        "memory_total_bytes": total,
    }


def _deployment_summary(view: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "state": view["state"],
        "replicas": view["replicas"],
        "ready_replicas": view["ready_replicas"],
        "replica_states": {r["worker_id"]: r["state"] for r in view["replica_states"]},
    }
