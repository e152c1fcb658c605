"""`/api/workers` and `/api/cluster`: worker tokens, registration and heartbeats (worker tokens
only), drain and the fleet views (admin keys only)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Path
from pydantic import ConfigDict, Field, StringConstraints, field_validator
from starlette.responses import Response

from gpucloud.cluster import Beat, Registration
from gpucloud.cluster.health import WorkerState
from gpucloud.cluster.sessions import WorkerCredential, new_session
from gpucloud.db import Deployment, DeploymentReplica, WorkerNode
from gpucloud.deployments import ReplicaReport
from gpucloud.deployments.views import by_deployment
from gpucloud.gateway.deps import AdminDep, RuntimeDep, WorkerDep
from gpucloud.gateway.inputs import CleanInput
from gpucloud.gateway.responses import json_response
from gpucloud.gateway.views import (
    ClusterView,
    WorkerList,
    WorkerOrders,
    WorkerTokenCreated,
    WorkerTokenList,
    WorkerTokenView,
    WorkerView,
    documented,
)
from gpucloud.gateway.views.deployments import assignment_view, deployment_view
from gpucloud.gateway.views.fleet import cluster_view, token_view, worker_view
from gpucloud.wire import SESSION_HEADER

router = APIRouter(prefix="/api", tags=["workers"])

WORKER_ID = r"^[A-Za-z0-9._:\-]{1,128}$"
WorkerId = Annotated[str, Path(pattern=WORKER_ID)]
LabelKey = Annotated[str, StringConstraints(min_length=1, max_length=63, pattern=r"^[A-Za-z0-9._/\-]+$")]
LabelValue = Annotated[str, StringConstraints(max_length=255)]
ModelName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
MAX_GPUS = 64


class GpuIn(CleanInput):
    """One GPU reading (`gpucloud.worker.inventory.GpuReading.to_dict`)."""

    model_config = ConfigDict(extra="forbid")

    index: int = Field(ge=0, le=1023)
    uuid: str = Field(min_length=1, max_length=128)
    name: str = Field(min_length=1, max_length=200)
    memory_total_bytes: int = Field(ge=0)
    memory_used_bytes: int = Field(ge=0)
    utilization: float | None = Field(None, ge=0, le=1)
    temperature_c: float | None = Field(None, ge=-100, le=300)
    power_w: float | None = Field(None, ge=0, le=100_000)


class RegisterIn(CleanInput):
    model_config = ConfigDict(extra="forbid")

    worker_id: str = Field(pattern=WORKER_ID)
    hostname: str = Field(min_length=1, max_length=255)
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict, max_length=64)
    cpu_count: int = Field(ge=1, le=1_000_000)
    memory_total_bytes: int = Field(ge=0)
    memory_available_bytes: int = Field(ge=0)
    gpus: list[GpuIn] = Field(default_factory=list, max_length=MAX_GPUS)
    models: list[ModelName] = Field(default_factory=list, max_length=1000)
    slots: int = Field(ge=1, le=100_000)

    @field_validator("gpus")
    @classmethod
    def _distinct(cls, gpus: list[GpuIn]) -> list[GpuIn]:
        if len({gpu.index for gpu in gpus}) != len(gpus):
            raise ValueError("GPU indexes must be distinct")
        return gpus


class ReplicaIn(CleanInput):
    """One replica the worker holds, as it reports it (`gpucloud.worker.replicas`)."""

    model_config = ConfigDict(extra="forbid")

    deployment_id: str = Field(min_length=1, max_length=40)
    index: int = Field(ge=0, le=1000)
    model: str = Field("", max_length=200)
    state: Literal["loading", "ready", "standby", "failed", "unloading"]
    reason: str | None = Field(None, max_length=2000)
    last_used_at: float | None = Field(None, ge=0)
    running: int = Field(0, ge=0, le=1_000_000)
    load: dict[Annotated[str, StringConstraints(max_length=64)], float] = Field(
        default_factory=dict, max_length=32
    )


class HeartbeatIn(CleanInput):
    model_config = ConfigDict(extra="forbid")

    running: int = Field(0, ge=0, le=1_000_000)
    queued: int = Field(0, ge=0, le=1_000_000)
    tokens_per_s: float = Field(0.0, ge=0, le=1e9)
    gpus: list[GpuIn] = Field(default_factory=list, max_length=MAX_GPUS)
    replicas: list[ReplicaIn] = Field(default_factory=list, max_length=1000)
    engines: dict[ModelName, dict[Annotated[str, StringConstraints(max_length=64)], float]] = Field(
        default_factory=dict, max_length=1000, description="load readings of the fixed engines, by model"
    )


class TokenCreate(CleanInput):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)


def _orders(
    row: WorkerNode,
    runtime: RuntimeDep,
    held: Sequence[tuple[DeploymentReplica, Deployment]],
    session: str | None = None,
) -> WorkerOrders:
    """What a worker learns from each call: its state, whether to drain, how often to beat, and
    the replicas it is to hold (`held`: it loads what is new and unloads what is gone)."""
    orders = WorkerOrders(
        worker_id=row.id,
        state=WorkerState(row.state),
        draining=row.draining,
        heartbeat_interval_s=runtime.settings.cluster.heartbeat_interval_s,
        assignments=[assignment_view(replica, deployment) for replica, deployment in held],
    )
    if session is not None:  # registration only: the one time the session secret is shown
        orders.session = session
    return orders


# worker tokens (admin) ------------------------------------------------------------------------


@router.post("/workers/tokens", status_code=201, responses=documented(WorkerTokenCreated, 201))
async def create_token(body: TokenCreate, _: AdminDep, runtime: RuntimeDep) -> Response:
    row, secret = await runtime.worker_tokens.create(body.name)
    created = WorkerTokenCreated(**token_view(row).model_dump(), token=secret)  # the only time
    return json_response(created, status_code=201)


@router.get("/workers/tokens", responses=documented(WorkerTokenList))
async def list_tokens(_: AdminDep, runtime: RuntimeDep) -> Response:
    rows = await runtime.worker_tokens.list()
    return json_response(WorkerTokenList(object="list", data=[token_view(r) for r in rows]))


@router.delete("/workers/tokens/{token_id}", responses=documented(WorkerTokenView))
async def revoke_token(token_id: str, _: AdminDep, runtime: RuntimeDep) -> Response:
    return json_response(token_view(await runtime.worker_tokens.revoke(token_id)))


# worker agents (worker tokens) ----------------------------------------------------------------


@router.post("/workers/register", responses=documented(WorkerOrders))
async def register(body: RegisterIn, caller: WorkerDep, runtime: RuntimeDep) -> Response:
    registration = Registration(
        worker_id=body.worker_id,
        hostname=body.hostname,
        labels=body.labels,
        cpu_count=body.cpu_count,
        memory_total_bytes=body.memory_total_bytes,
        memory_available_bytes=body.memory_available_bytes,
        gpus=[gpu.model_dump() for gpu in body.gpus],
        models=body.models,
        slots=body.slots,
    )
    session, session_digest = new_session()
    row = await runtime.workers.register(registration, caller.token_id, session_digest)
    held = await runtime.deployments.replicas_of_worker(row.id)
    return json_response(_orders(row, runtime, held, session))


SessionHeader = Annotated[
    str | None,
    Header(alias=SESSION_HEADER, max_length=100, description="the session secret registration returned"),
]


@router.post("/workers/{worker_id}/heartbeat", responses=documented(WorkerOrders))
async def heartbeat(
    worker_id: WorkerId,
    body: HeartbeatIn,
    caller: WorkerDep,
    runtime: RuntimeDep,
    session: SessionHeader = None,
) -> Response:
    beat = Beat(
        running=body.running,
        queued=body.queued,
        tokens_per_s=body.tokens_per_s,
        gpus=[gpu.model_dump() for gpu in body.gpus],
        replicas=[r.model_dump() for r in body.replicas],
        engines=body.engines,
    )
    row = await runtime.workers.heartbeat(worker_id, beat, WorkerCredential(caller.token_id, session))
    reports = [ReplicaReport.from_dict(replica) for replica in beat.replicas]
    held = await runtime.deployments.apply_reports(worker_id, reports)
    return json_response(_orders(row, runtime, held))


# fleet (admin) --------------------------------------------------------------------------------


@router.get("/workers", responses=documented(WorkerList))
async def list_workers(_: AdminDep, runtime: RuntimeDep) -> Response:
    rows = await runtime.workers.list_workers()
    return json_response(WorkerList(object="list", data=[worker_view(r) for r in rows]))


@router.get("/workers/{worker_id}", responses=documented(WorkerView))
async def get_worker(worker_id: WorkerId, _: AdminDep, runtime: RuntimeDep) -> Response:
    return json_response(worker_view(await runtime.workers.get(worker_id)))


@router.post("/workers/{worker_id}/drain", responses=documented(WorkerView))
async def drain(worker_id: WorkerId, _: AdminDep, runtime: RuntimeDep) -> Response:
    return json_response(worker_view(await runtime.workers.set_draining(worker_id, True)))


@router.post("/workers/{worker_id}/undrain", responses=documented(WorkerView))
async def undrain(worker_id: WorkerId, _: AdminDep, runtime: RuntimeDep) -> Response:
    return json_response(worker_view(await runtime.workers.set_draining(worker_id, False)))


@router.get("/cluster", responses=documented(ClusterView))
async def cluster(_: AdminDep, runtime: RuntimeDep) -> Response:
    rows = await runtime.deployments.all()
    replicas = await runtime.deployments.replicas()
    grouped = by_deployment(replicas)
    views = {d.name: deployment_view(d, grouped.get(d.id, [])) for d in rows}
    return json_response(await cluster_view(await runtime.workers.list_workers(), runtime.queue, views))
