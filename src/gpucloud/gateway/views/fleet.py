"""Workers, the cluster, worker tokens and deployments (`routes.workers`, `routes.deployments`)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from gpucloud.gateway.views.base import DeploymentState, ReplicaState, View, WorkerState


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


class Assignment(View):
    """A replica a worker is to hold (`deployments.views.assignment_view`)."""

    deployment_id: str
    name: str
    index: int
    engine: str
    source: str | None
    engine_options: dict[str, str]
    gpu_uuids: list[str]
    gpu_memory_gb: float
    on_demand: bool
    idle_unload_seconds: int | None


class WorkerOrders(View):
    """The answer to a worker's registration or heartbeat."""

    worker_id: str
    state: WorkerState
    draining: bool
    heartbeat_interval_s: float
    assignments: list[Assignment]
    session: str | None = Field(
        None,
        description="registration only: the secret each heartbeat sends in x-gpucloud-worker-session",
    )


class ReplicaView(View):
    index: int
    worker_id: str
    gpu_uuids: list[str]
    state: ReplicaState
    reason: str | None
    updated_at: datetime
    last_used_at: datetime | None
    spec_version: int


class RolloutView(View):
    """A rolling update's progress (`deployments.rollout`)."""

    state: Literal["progressing", "complete", "failed"]
    reason: str | None
    updated_replicas: int
    from_version: int
    to_version: int


class AutoscaleSpec(View):
    """Autoscaling bounds and targets (`deployments.autoscale`)."""

    min_replicas: int = Field(ge=0, le=1000)
    max_replicas: int = Field(ge=1, le=1000)
    target_queue_per_replica: float = Field(4.0, gt=0, le=100_000, description="queued jobs per replica")
    target_wait_s: float | None = Field(None, gt=0, le=86400, description="longest acceptable queue wait")
    scale_down_delay_s: float = Field(60.0, ge=0, le=86400, description="calm this long before scaling down")


class AutoscaleDecision(View):
    at: datetime
    action: Literal["scale_up", "scale_down", "hold"]
    from_replicas: int
    to_replicas: int
    reason: str


class AutoscaleView(AutoscaleSpec):
    last_decision: AutoscaleDecision | None


class DeploymentView(View):
    """A deployment (`deployments.views.deployment_view`)."""

    id: str
    object: Literal["deployment"]
    name: str
    engine: str
    source: str | None
    engine_options: dict[str, str]
    replicas: int
    gpu_memory_gb: float
    gpu_memory_estimated: bool
    gpu_count: int
    labels: dict[str, str]
    gpu_type: str | None
    policy: Literal["spread", "binpack"]
    on_demand: bool
    idle_unload_seconds: int | None
    state: DeploymentState
    reason: str | None
    ready_replicas: int
    created_at: datetime
    updated_at: datetime
    replica_states: list[ReplicaView]
    spec_version: int
    max_surge: int
    max_unavailable: int
    rollout: RolloutView | None
    autoscale: AutoscaleView | None


class DeploymentList(View):
    object: Literal["list"]
    data: list[DeploymentView]


class DeploymentDeleted(View):
    id: str
    object: Literal["deployment"]
    name: str
    deleted: Literal[True]
