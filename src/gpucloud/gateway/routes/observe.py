"""`/metrics` (Prometheus text, admin key) and `/api/stats` (live numbers for the dashboard)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from gpucloud.gateway.deps import AdminDep, RuntimeDep, get_admin
from gpucloud.gateway.responses import json_response
from gpucloud.gateway.views import Stats, documented

router = APIRouter(tags=["observability"], dependencies=[Depends(get_admin)])


@router.get("/metrics")
async def metrics(_: AdminDep, runtime: RuntimeDep) -> Response:
    return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/api/stats", responses=documented(Stats))
async def stats(_: AdminDep, runtime: RuntimeDep) -> Response:
    return json_response(Stats.model_validate(await runtime.stats.snapshot()))
