"""What the fleet's rows say, read for the API and the metrics: each GPU's last reading and the
models a worker serves (the response shapes themselves are built in `gateway.views.fleet`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from gpucloud.db import WorkerNode


def gpu_reading(gpu: Mapping[str, Any]) -> dict[str, Any]:
    """A GPU as the worker's last inventory reported it, every field present."""
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


def gpus_of(rows: Iterable[WorkerNode]) -> list[tuple[str, dict[str, Any]]]:
    """(worker id, GPU reading) for every GPU of every worker."""
    return [(row.id, gpu_reading(gpu)) for row in rows for gpu in (row.inventory or {}).get("gpus", [])]


def hosted_models(row: WorkerNode) -> list[str]:
    """What a worker serves: its fixed models and the deployment replicas its last beat reported."""
    replicas = (row.load or {}).get("replicas", [])
    dynamic = {
        str(r.get("model")) for r in replicas if r.get("model") and r.get("state") in ("ready", "standby")
    }
    return sorted(set(row.models) | dynamic)
