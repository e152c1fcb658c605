"""`/health` (liveness) and `/ready` (database and queue reachable): the only routes without a key.

They say "ok" or name the failing part, nothing more, so they need no protection.
"""

from __future__ import annotations

import logging
from typing import Literal

from fastapi import APIRouter
from starlette.responses import Response

from gpucloud.gateway.deps import RuntimeDep
from gpucloud.gateway.responses import json_response
from gpucloud.gateway.views import Health, Readiness, documented
from gpucloud.queue.protocol import QueueError

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)


@router.get("/health", responses=documented(Health))
async def health() -> Response:
    return json_response(Health(status="ok"))


@router.get("/ready", responses={**documented(Readiness), **documented(Readiness, 503)})
async def ready(runtime: RuntimeDep) -> Response:
    checks: dict[str, Literal["ok", "unavailable"]] = {"database": "ok", "queue": "ok"}
    try:
        await runtime.db.ping()
    except Exception as exc:  # noqa: BLE001 — any driver error means "not ready"; the detail goes to the log only
        log.warning("readiness: database unavailable: %s", type(exc).__name__)
        checks["database"] = "unavailable"
    try:
        await runtime.queue.ping()
    except QueueError:
        checks["queue"] = "unavailable"
    ok = all(v == "ok" for v in checks.values())
    body = Readiness(status="ok" if ok else "unavailable", checks=checks)
    return json_response(body, status_code=200 if ok else 503)
