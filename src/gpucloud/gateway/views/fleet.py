"""Workers, the cluster and worker tokens (`routes.workers`): the models and their builders."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Literal

from pydantic import Field

from gpucloud.cluster.views import gpu_reading, gpus_of, hosted_models
from gpucloud.db import WorkerNode, WorkerToken
from gpucloud.db.models import utcnow
from gpucloud.gateway.views.base import DeploymentState, ReplicaState, View, WorkerState
from gpucloud.gateway.views.deployments import DeploymentView
from gpucloud.queue.protocol import JobQueue


class GpuView(View):
    index: int
    uuid: str
    name: str
    memory_used_bytes: int
    memory_total_bytes: int
    utilization: float | None
    temperature_c: float | None
    power_w: float | None


class WorkerReplica(View):
    """A replica as the worker last reported it."""

    deployment_id: str
    index: int
    model: str
    state: Literal["loading", "ready", "standby", "failed", "unloading"]
    reason: str | None
    last_used_at: float | None
    running: int
    load: dict[str, float] | None = None


class WorkerView(View):
    """A worker (`cluster.views.worker_view`)."""

    id: str
    object: Literal["worker"]
    hostname: str
    labels: dict[str, str]
    state: WorkerState
    draining: bool
    registered_at: datetime
    last_heartbeat_at: datetime
    last_heartbeat_age_s: float
    consecutive_beats: int
    slots: int
    running: int
    queued: int
    tokens_per_s: float
    models: list[str]
    replicas: list[WorkerReplica]
    engine_load: dict[str, dict[str, float]]  # the fixed (--model) engines' own load readings
    cpu_count: int | None
    memory_total_bytes: int | None
    memory_available_bytes: int | None
    gpus: list[GpuView]


class WorkerList(View):
    object: Literal["list"]
    data: list[WorkerView]


class ClusterWorkers(View):
    total: int
    draining: int
    healthy: int
    unhealthy: int
    offline: int


class ClusterGpus(View):
    count: int
    memory_used_bytes: int
    memory_free_bytes: int
    memory_total_bytes: int


class ClusterDeployment(View):
    state: DeploymentState
    replicas: int
    ready_replicas: int
    replica_states: dict[str, ReplicaState] = Field(description="worker id → replica state")


class ClusterView(View):
    """`/api/cluster` (`cluster.views.cluster_view`): totals over the fleet."""

    object: Literal["cluster"]
    workers: ClusterWorkers
    gpus: ClusterGpus
    slots: int
    running: int
    queue_depth: dict[str, int]
    models: list[str]
    deployments: dict[str, ClusterDeployment]


class WorkerTokenView(View):
    id: str
    object: Literal["worker_token"]
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class WorkerTokenCreated(WorkerTokenView):
    token: str = Field(description="the secret, shown this once")


class WorkerTokenList(View):
    object: Literal["list"]
    data: list[WorkerTokenView]


def worker_view(row: WorkerNode, now: datetime | None = None) -> WorkerView:
    now = now or utcnow()
    load = row.load or {}
    inventory = row.inventory or {}
    return WorkerView(
        id=row.id,
        object="worker",
        hostname=row.hostname,
        labels=row.labels,
        state=WorkerState(row.state),
        draining=row.draining,
        registered_at=row.registered_at,
        last_heartbeat_at=row.last_heartbeat_at,
        last_heartbeat_age_s=round(max(0.0, (now - row.last_heartbeat_at).total_seconds()), 3),
        consecutive_beats=row.consecutive_beats,
        slots=row.slots,
        running=int(load.get("running", 0)),
        queued=int(load.get("queued", 0)),
        tokens_per_s=float(load.get("tokens_per_s", 0.0)),
        models=hosted_models(row),
        replicas=load.get("replicas", []),
        engine_load=load.get("engines", {}),
        cpu_count=inventory.get("cpu_count"),
        memory_total_bytes=inventory.get("memory_total_bytes"),
        memory_available_bytes=inventory.get("memory_available_bytes"),
        gpus=[GpuView(**gpu_reading(gpu)) for gpu in inventory.get("gpus", [])],
    )


def token_view(row: WorkerToken) -> WorkerTokenView:
    """A worker token as the API shows it: never the secret, never the digest."""
    return WorkerTokenView(
        id=row.id,
        object="worker_token",
        name=row.name,
        prefix=row.prefix,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


async def cluster_view(
    rows: Sequence[WorkerNode], queue: JobQueue, deployments: Mapping[str, DeploymentView]
) -> ClusterView:
    """Totals over the fleet, queue depth per model from the queue, and each deployment's replicas."""
    serving = [r for r in rows if r.state == WorkerState.HEALTHY.value and not r.draining]
    served = sorted({model for row in serving for model in hosted_models(row)})
    depth: dict[str, int] = {}
    for model in sorted(set(served) | set(await queue.known_models()) | set(deployments)):
        depth[model] = sum((await queue.depth(model)).values())
    return ClusterView(
        object="cluster",
        workers=_worker_totals(rows),
        gpus=_gpu_totals(rows),
        slots=sum(r.slots for r in serving),
        # An offline worker's last report is stale: its jobs were reclaimed by now.
        running=sum(
            int((r.load or {}).get("running", 0)) for r in rows if r.state != WorkerState.OFFLINE.value
        ),
        queue_depth=depth,
        models=served,
        deployments={name: _cluster_deployment(view) for name, view in deployments.items()},
    )


def _worker_totals(rows: Sequence[WorkerNode]) -> ClusterWorkers:
    by_state = {state.value: 0 for state in WorkerState}
    for row in rows:
        by_state[row.state] = by_state.get(row.state, 0) + 1
    return ClusterWorkers(total=len(rows), draining=sum(1 for r in rows if r.draining), **by_state)


def _gpu_totals(rows: Sequence[WorkerNode]) -> ClusterGpus:
    gpus = [gpu for _, gpu in gpus_of(rows)]
    used = sum(int(gpu["memory_used_bytes"] or 0) for gpu in gpus)
    total = sum(int(gpu["memory_total_bytes"] or 0) for gpu in gpus)
    return ClusterGpus(
        count=len(gpus),
        memory_used_bytes=used,
        memory_free_bytes=max(0, total - used),
        memory_total_bytes=total,
    )


def _cluster_deployment(view: DeploymentView) -> ClusterDeployment:
    return ClusterDeployment(
        state=view.state,
        replicas=view.replicas,
        ready_replicas=view.ready_replicas,
        replica_states={r.worker_id: r.state for r in view.replica_states},
    )
