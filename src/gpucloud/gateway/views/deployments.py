"""Deployments as the API shows them (`routes.deployments`, the workers' orders): the models and
the functions that build them from the rows, so each shape is written once and type-checked.
A worker's `Assignment` is the worker API's (`gpucloud.wire`); `assignment_view` builds it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal, cast

from pydantic import Field

from gpucloud.db import Deployment, DeploymentReplica
from gpucloud.deployments.rollout import spec_of
from gpucloud.deployments.views import derived
from gpucloud.gateway.views.base import DeploymentState, ReplicaState, View
from gpucloud.scheduler.spec import Policy
from gpucloud.wire import Assignment


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
    """A deployment (`deployment_view`)."""

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
    policy: Policy
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


def replica_view(row: DeploymentReplica) -> ReplicaView:
    return ReplicaView(
        index=row.index,
        worker_id=row.worker_id,
        gpu_uuids=list(row.gpu_uuids),
        state=ReplicaState(row.state),
        reason=row.reason,
        updated_at=row.updated_at,
        last_used_at=row.last_used_at,
        spec_version=row.spec_version,
    )


def deployment_view(row: Deployment, replicas: Sequence[DeploymentReplica]) -> DeploymentView:
    state = derived(row, replicas)
    return DeploymentView(
        id=row.id,
        object="deployment",
        name=row.name,
        engine=row.engine,
        source=row.source,
        engine_options=row.engine_options,
        replicas=row.replicas,
        gpu_memory_gb=row.gpu_memory_gb,
        gpu_memory_estimated=row.gpu_memory_estimated,
        gpu_count=row.gpu_count,
        labels=row.labels,
        gpu_type=row.gpu_type,
        policy=cast(Policy, row.policy),  # checked on the way in (`deployments.spec.validate`)
        on_demand=row.on_demand,
        idle_unload_seconds=row.idle_unload_seconds,
        state=state.state,
        reason=state.reason,
        ready_replicas=state.ready_replicas,
        created_at=row.created_at,
        updated_at=row.updated_at,
        replica_states=[replica_view(r) for r in replicas],
        spec_version=row.spec_version,
        max_surge=row.max_surge,
        max_unavailable=row.max_unavailable,
        rollout=RolloutView(**row.rollout) if row.rollout else None,
        autoscale=_autoscale(row),
    )


def _autoscale(row: Deployment) -> AutoscaleView | None:
    if not row.autoscale:
        return None
    decision = AutoscaleDecision(**row.autoscale_status) if row.autoscale_status else None
    return AutoscaleView(**row.autoscale, last_decision=decision)


def deleted_view(row: Deployment) -> DeploymentDeleted:
    return DeploymentDeleted(id=row.id, object="deployment", name=row.name, deleted=True)


def assignment_view(replica: DeploymentReplica, deployment: Deployment) -> Assignment:
    """What a worker is told to run for one replica (the heartbeat's answer): the spec of the
    version the replica runs, which during a rolling update may not be the deployment's newest."""
    runs = spec_of(deployment, replica.spec_version)
    return Assignment(
        deployment_id=deployment.id,
        name=deployment.name,
        index=replica.index,
        engine=runs["engine"],
        source=runs["source"],
        engine_options=runs["engine_options"],
        gpu_uuids=list(replica.gpu_uuids),
        gpu_memory_gb=runs["gpu_memory_gb"],
        on_demand=deployment.on_demand,
        idle_unload_seconds=deployment.idle_unload_seconds,
    )
