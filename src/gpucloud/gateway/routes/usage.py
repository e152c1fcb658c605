"""`/api/usage`: totals from the ledger; a user key sees its own, an admin anyone's."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date

from fastapi import APIRouter, Depends
from starlette.responses import Response

from gpucloud.errors import PermissionDenied
from gpucloud.gateway.deps import PrincipalDep, RuntimeDep, get_principal
from gpucloud.gateway.responses import json_response
from gpucloud.usage import UsageFilter

router = APIRouter(prefix="/api", tags=["usage"], dependencies=[Depends(get_principal)])


@router.get("/usage")
async def usage(
    principal: PrincipalDep,
    runtime: RuntimeDep,
    key_id: str | None = None,
    model: str | None = None,
    start: date | None = None,
    end: date | None = None,
) -> Response:
    if not principal.is_admin:
        if key_id is not None and key_id != principal.key_id:
            raise PermissionDenied("A user key can only see its own usage.", param="key_id")
        key_id = principal.key_id
    rows = await runtime.usage.totals(UsageFilter(key_id=key_id, model=model, start=start, end=end))
    data = [asdict(r) for r in rows]
    totals = {
        "requests": sum(r.requests for r in rows),
        "prompt_tokens": sum(r.prompt_tokens for r in rows),
        "completion_tokens": sum(r.completion_tokens for r in rows),
        "total_tokens": sum(r.total_tokens for r in rows),
        "cost_usd": round(sum(r.cost_usd for r in rows), 6),
    }
    return json_response({"object": "list", "data": data, "totals": totals})
