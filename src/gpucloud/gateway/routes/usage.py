"""`/api/usage`: totals and time series from the ledger, as JSON or CSV.

A user key sees its own usage only; an admin sees anyone's and may filter by `key_id` or
`org_id`; an organisation's owners, admins and viewers may filter by their `org_id`; any other
signed-in user sees the usage of the keys it made for itself (in `org_id` if given). Series are
per UTC day or hour (`granularity`), per key and model unless `group_by` narrows it.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict
from datetime import date
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from gpucloud.accounts.orgs import ORG_ROLES
from gpucloud.errors import PermissionDenied
from gpucloud.gateway.deps import PrincipalDep, RuntimeDep, get_principal
from gpucloud.gateway.permissions import require_role, user_id_of
from gpucloud.gateway.responses import json_response
from gpucloud.gateway.views import UsageReport, documented
from gpucloud.gateway.views.observe import usage_report
from gpucloud.keys import Principal
from gpucloud.usage import UsageFilter, UsageTotal

router = APIRouter(prefix="/api", tags=["usage"], dependencies=[Depends(get_principal)])
ORG_USAGE = ("owner", "admin", "viewer")  # roles that see all their organisation's usage
_COLUMNS = (
    "period",
    "key_id",
    "model",
    "requests",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cost_usd",
)


@router.get("/usage", responses=documented(UsageReport, description="JSON, or CSV with `format=csv`"))
async def usage(
    request: Request,
    principal: PrincipalDep,
    runtime: RuntimeDep,
    key_id: str | None = None,
    model: str | None = None,
    start: date | None = None,
    end: date | None = None,
    granularity: Literal["day", "hour"] = "day",
    group_by: list[Literal["key", "model", "org"]] = Query(default=["key", "model"]),  # noqa: B008 - FastAPI query list
    format: Literal["json", "csv"] = "json",
    org_id: str | None = None,
) -> Response:
    owner = await _own_keys_only(request, principal, org_id)
    if owner is None and org_id is None and not principal.is_admin:
        if key_id is not None and key_id != principal.key_id:
            raise PermissionDenied("A user key can only see its own usage.", param="key_id")
        key_id = principal.key_id
    where = UsageFilter(
        owner_user_id=owner,
        key_id=key_id,
        model=model,
        start=start,
        end=end,
        granularity=granularity,
        by_key="key" in group_by,
        by_model="model" in group_by,
        org_id=org_id,
        by_org="org" in group_by,
    )
    rows = await runtime.usage.totals(where)
    if format == "csv":
        return _csv(rows)
    return json_response(usage_report(rows, granularity))


async def _own_keys_only(request: Request, principal: Principal, org_id: str | None) -> str | None:
    """The signed-in user whose own keys' usage is all the caller may see; None when it may see
    more (a platform admin, an organisation's owner, admin or viewer) or is an API key."""
    user_id = user_id_of(principal)
    if principal.is_admin or user_id is None:
        if org_id is not None and not principal.is_admin:
            await require_role(request, principal, org_id, ORG_USAGE)
        return None
    if org_id is None:
        return user_id
    role = await require_role(request, principal, org_id, ORG_ROLES)  # 404 to a non-member
    return None if role in ORG_USAGE else user_id


def _csv(rows: list[UsageTotal]) -> Response:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(_COLUMNS)
    for row in rows:
        values = asdict(row)
        writer.writerow([values[c] if values[c] is not None else "" for c in _COLUMNS])
    return Response(
        out.getvalue(),
        media_type="text/csv",
        headers={"content-disposition": 'attachment; filename="gpucloud-usage.csv"'},
    )
