"""`/api/deployments`: create, list, show, scale/change and delete model deployments (admin keys).

A change asks the deployment controller for a step at once when this replica leads; otherwise the
leading replica's next round (every `cluster.monitor_every_s`) places it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path
from pydantic import ConfigDict, Field, StringConstraints
from starlette.responses import Response

from gpucloud.deployments import DeploymentRequest, validate
from gpucloud.deployments.views import by_deployment
from gpucloud.errors import InvalidRequest
from gpucloud.gateway.deps import AdminDep, RuntimeDep, get_admin
from gpucloud.gateway.inputs import CleanInput
from gpucloud.gateway.responses import json_response
from gpucloud.gateway.views import DeploymentDeleted, DeploymentList, DeploymentView, documented
from gpucloud.gateway.views.deployments import AutoscaleSpec, deleted_view, deployment_view
from gpucloud.runtime import Runtime

router = APIRouter(prefix="/api", tags=["deployments"], dependencies=[Depends(get_admin)])

LabelKey = Annotated[str, StringConstraints(min_length=1, max_length=63, pattern=r"^[A-Za-z0-9._/\-]+$")]
LabelValue = Annotated[str, StringConstraints(max_length=255)]
OptionKey = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
OptionValue = Annotated[str, StringConstraints(max_length=4096)]
Ref = Annotated[str, Path(min_length=1, max_length=200)]
# PATCH may set these to null: no GPU constraint, no idle unload, fixed replicas.
_NULLABLE = frozenset({"gpu_type", "idle_unload_seconds", "autoscale"})
# And this one, to have it estimated again from the model's config.json.
_NULL_MEANS_SOMETHING = _NULLABLE | {"gpu_memory_gb"}
EngineName = Literal["simulated", "transformers", "openai", "sentence-transformers"]


class DeploymentPatch(CleanInput):
    """What may change after creation; only the fields sent change. Changing what runs (`engine`,
    `source`, `engine_options`, `gpu_memory_gb`) is a rolling update, replica by replica, within
    `max_surge` / `max_unavailable`; a new constraint moves the replicas that no longer fit."""

    model_config = ConfigDict(extra="forbid")

    replicas: int | None = Field(None, ge=0, le=1000, description="copies to run")
    engine: EngineName | None = None
    source: str | None = Field(
        None, min_length=1, max_length=1024, description="path under models_dir or hub id"
    )
    engine_options: dict[OptionKey, OptionValue] | None = Field(None, max_length=64)
    gpu_memory_gb: float | None = Field(
        None, gt=0, le=100_000, description="per GPU of a replica; estimated from config.json when null"
    )
    labels: dict[LabelKey, LabelValue] | None = Field(None, max_length=64)
    gpu_type: str | None = Field(None, min_length=1, max_length=200, description="substring of the GPU name")
    policy: Literal["spread", "binpack"] | None = None
    on_demand: bool | None = Field(None, description="load on the first request, unload when idle")
    idle_unload_seconds: int | None = Field(None, ge=1, le=30 * 86400)
    max_surge: int | None = Field(None, ge=0, le=100, description="extra replicas during a roll (1)")
    max_unavailable: int | None = Field(None, ge=0, le=100, description="replicas a roll may take down (0)")
    autoscale: AutoscaleSpec | None = Field(None, description="scale on queue pressure; null: fixed replicas")


class DeploymentCreate(DeploymentPatch):
    name: str = Field(min_length=1, max_length=200, description="the model id clients use")
    engine: EngineName
    gpu_count: int | None = Field(None, ge=0, le=64, description="GPUs per replica (default 1; 0: CPU)")

    def request(self) -> DeploymentRequest:
        fields = self.model_dump(exclude_none=True)
        return DeploymentRequest(
            **{k: v for k, v in fields.items() if k != "gpu_memory_gb"}, gpu_memory_gb=self.gpu_memory_gb
        )


def _merged(current: Any, changes: dict[str, Any]) -> DeploymentRequest:
    """The deployment as it would be after `changes` (a PATCH), for `validate`."""

    def pick(name: str) -> Any:
        return changes[name] if name in changes and changes[name] is not None else getattr(current, name)

    memory = current.gpu_memory_gb if current.gpu_count else None
    return DeploymentRequest(
        name=current.name,
        engine=pick("engine"),
        source=pick("source"),
        engine_options=pick("engine_options"),
        replicas=pick("replicas"),
        gpu_memory_gb=changes.get("gpu_memory_gb", memory),
        gpu_count=current.gpu_count,
        labels=pick("labels"),
        gpu_type=changes.get("gpu_type", current.gpu_type),
        policy=pick("policy"),
        on_demand=pick("on_demand"),
        idle_unload_seconds=changes.get("idle_unload_seconds", current.idle_unload_seconds),
        max_surge=pick("max_surge"),
        max_unavailable=pick("max_unavailable"),
        autoscale=changes.get("autoscale", current.autoscale),
    )


async def _view(runtime: Runtime, ref: str) -> DeploymentView:
    row = await runtime.deployments.get(ref)
    return deployment_view(row, await runtime.deployments.replicas(row.id))


@router.post("/deployments", status_code=201, responses=documented(DeploymentView, 201))
async def create(body: DeploymentCreate, _: AdminDep, runtime: RuntimeDep) -> Response:
    row = await runtime.deployments.create(validate(body.request(), runtime.settings.resolved_models_dir()))
    await runtime.kick_controller()
    return json_response(await _view(runtime, row.id), status_code=201)


@router.get("/deployments", responses=documented(DeploymentList))
async def list_deployments(runtime: RuntimeDep) -> Response:
    rows = await runtime.deployments.all()
    replicas = await runtime.deployments.replicas()
    grouped = by_deployment(replicas)
    data = [deployment_view(row, grouped.get(row.id, [])) for row in rows]
    return json_response(DeploymentList(object="list", data=data))


@router.get("/deployments/{ref:path}", responses=documented(DeploymentView))
async def get_deployment(ref: Ref, runtime: RuntimeDep) -> Response:
    return json_response(await _view(runtime, ref))


@router.patch("/deployments/{ref:path}", responses=documented(DeploymentView))
async def patch_deployment(ref: Ref, body: DeploymentPatch, runtime: RuntimeDep) -> Response:
    current = await runtime.deployments.get(ref)
    changes = body.model_dump(exclude_unset=True)
    _refuse_nulls(changes)
    merged = _merged(current, changes)
    checked = validate(merged, runtime.settings.resolved_models_dir())
    if "gpu_memory_gb" in changes:
        changes["gpu_memory_gb"] = checked.gpu_memory_gb
    if changes.get("source") is not None:
        changes["source"] = checked.request.source
    row = await runtime.deployments.update(
        current.id, {k: v for k, v in changes.items() if v is not None or k in _NULLABLE}
    )
    await runtime.kick_controller()
    return json_response(await _view(runtime, row.id))


def _refuse_nulls(changes: dict[str, Any]) -> None:
    """A null is a change only where the field has a null meaning; elsewhere it is refused rather
    than taken as "no change", which would answer 200 while ignoring what the client sent."""
    for name in sorted(changes):
        if changes[name] is None and name not in _NULL_MEANS_SOMETHING:
            raise InvalidRequest(f"{name} cannot be null: leave it out to keep its value.", param=name)


@router.post("/deployments/{ref:path}/rollback", responses=documented(DeploymentView))
async def rollback_deployment(ref: Ref, runtime: RuntimeDep) -> Response:
    """Roll back to the spec that ran before the latest change (409 when there is none)."""
    row = await runtime.deployments.rollback(ref)
    await runtime.kick_controller()
    return json_response(await _view(runtime, row.id))


@router.delete("/deployments/{ref:path}", responses=documented(DeploymentDeleted))
async def delete_deployment(ref: Ref, runtime: RuntimeDep) -> Response:
    row = await runtime.deployments.delete(ref)
    await runtime.queue.forget_model(row.name)  # the registries retire it; this covers restarts
    await runtime.kick_controller()
    return json_response(deleted_view(row))
