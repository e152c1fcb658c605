"""What the API shows of a deployment: its spec, its replicas, and the state derived from them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from gpucloud.db import Deployment, DeploymentReplica
from gpucloud.deployments.rollout import spec_of
from gpucloud.deployments.states import (
    SERVING,
    DeploymentState,
    Derived,
    ReplicaState,
    ReplicaStatus,
    derive,
)
from gpucloud.deployments.store import DeploymentStore
from gpucloud.engines.capabilities import Capabilities, capabilities_of_kind
from gpucloud.registry import CatalogEntry


def replica_view(row: DeploymentReplica) -> dict[str, Any]:
    return {
        "index": row.index,
        "worker_id": row.worker_id,
        "gpu_uuids": list(row.gpu_uuids),
        "state": row.state,
        "reason": row.reason,
        "updated_at": row.updated_at.isoformat(),
        "last_used_at": row.last_used_at.isoformat() if row.last_used_at else None,
        "spec_version": row.spec_version,
    }


def by_deployment(replicas: Iterable[DeploymentReplica]) -> dict[str, list[DeploymentReplica]]:
    """Replica rows grouped by deployment id (rows come sorted by deployment, index)."""
    grouped: dict[str, list[DeploymentReplica]] = {}
    for replica in replicas:
        grouped.setdefault(replica.deployment_id, []).append(replica)
    return grouped


def derived(row: Deployment, replicas: Sequence[DeploymentReplica]) -> Derived:
    return derive(
        [ReplicaStatus(r.index, ReplicaState(r.state), r.reason) for r in replicas],
        wanted=row.replicas,
        scheduled_once=row.state != DeploymentState.PENDING.value,
        unschedulable=row.reason,
    )


def deployment_view(row: Deployment, replicas: Sequence[DeploymentReplica]) -> dict[str, Any]:
    state = derived(row, replicas)
    return {
        "id": row.id,
        "object": "deployment",
        "name": row.name,
        "engine": row.engine,
        "source": row.source,
        "engine_options": row.engine_options,
        "replicas": row.replicas,
        "gpu_memory_gb": row.gpu_memory_gb,
        "gpu_memory_estimated": row.gpu_memory_estimated,
        "gpu_count": row.gpu_count,
        "labels": row.labels,
        "gpu_type": row.gpu_type,
        "policy": row.policy,
        "on_demand": row.on_demand,
        "idle_unload_seconds": row.idle_unload_seconds,
        "state": state.state.value,
        "reason": state.reason,
        "ready_replicas": state.ready_replicas,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
        "replica_states": [replica_view(r) for r in replicas],
        "spec_version": row.spec_version,
        "max_surge": row.max_surge,
        "max_unavailable": row.max_unavailable,
        "rollout": row.rollout,
        "autoscale": {**row.autoscale, "last_decision": row.autoscale_status} if row.autoscale else None,
    }


def assignment_view(replica: DeploymentReplica, deployment: Deployment) -> dict[str, Any]:
    """What a worker is told to run for one replica (the heartbeat's answer): the spec of the
    version the replica runs, which during a rolling update may not be the deployment's newest."""
    runs = spec_of(deployment, replica.spec_version)
    return {
        "deployment_id": deployment.id,
        "name": deployment.name,
        "index": replica.index,
        "engine": runs["engine"],
        "source": runs["source"],
        "engine_options": runs["engine_options"],
        "gpu_uuids": list(replica.gpu_uuids),
        "gpu_memory_gb": runs["gpu_memory_gb"],
        "on_demand": deployment.on_demand,
        "idle_unload_seconds": deployment.idle_unload_seconds,
    }


async def catalog(store: DeploymentStore) -> dict[str, CatalogEntry]:
    """Every deployment as the model registry lists it (`/v1/models`, request admission)."""
    replicas = by_deployment(await store.replicas())
    out: dict[str, CatalogEntry] = {}
    for row in await store.all():
        mine = replicas.get(row.id, [])
        # An autoscaled deployment at zero still takes requests: a queued job wakes a replica.
        waking = bool(row.autoscale) and int((row.autoscale or {}).get("max_replicas", 0)) > 0
        serving = waking or any(ReplicaState(r.state) in SERVING for r in mine)
        state = derived(row, mine)
        out[row.name] = CatalogEntry(
            int(row.created_at.timestamp()),
            serving,
            state.reason or state.state.value,
            _capabilities(row.engine, row.engine_options),
        )
    return out


def _capabilities(engine: str, options: dict[str, str]) -> Capabilities:
    """The deployment's engine's capabilities; none for options its engine will refuse anyway."""
    try:
        return capabilities_of_kind(engine, options)
    except ValueError:
        return Capabilities()
