"""`/api/workers` and `/api/cluster`: worker tokens, registration and heartbeats (worker tokens
only), drain and the fleet views (admin keys only). The worker API's bodies and answer are
`gpucloud.wire`'s, shared with the worker that sends them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Header, Path
from pydantic import ConfigDict, Field
from starlette.responses import Response

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
    WorkerTokenCreated,
    WorkerTokenList,
    WorkerTokenView,
    WorkerView,
    documented,
)
from gpucloud.gateway.views.deployments import assignment_view, deployment_view
from gpucloud.gateway.views.fleet import cluster_view, token_view, worker_view
from gpucloud.wire import SESSION_HEADER, WORKER_ID, HeartbeatIn, RegisterIn, WorkerOrders, WorkerState

router = APIRouter(prefix="/api", tags=["workers"])

WorkerId = Annotated[str, Path(pattern=WORKER_ID)]


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
    session, session_digest = new_session()
    row = await runtime.workers.register(body, caller.token_id, session_digest)
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
    row = await runtime.workers.heartbeat(worker_id, body, WorkerCredential(caller.token_id, session))
    reports = [ReplicaReport.from_wire(replica) for replica in body.replicas]
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
