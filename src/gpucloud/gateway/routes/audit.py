"""`GET /api/audit`: the audit log, newest first, filtered, a page at a time.

Platform admins read every row; an organisation's owners and admins read the rows of their
organisation (`org_id` is then required). The next page starts at `next_cursor`. There is no
route that changes or deletes a row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from gpucloud.accounts.audit import AuditQuery
from gpucloud.accounts.orgs import MANAGERS
from gpucloud.errors import InvalidRequest
from gpucloud.gateway.deps import PrincipalDep, get_principal
from gpucloud.gateway.permissions import require_role
from gpucloud.gateway.responses import json_response
from gpucloud.gateway.routes.auth import AccountsDep
from gpucloud.gateway.views import AuditList, documented
from gpucloud.gateway.views.accounts import audit_list

router = APIRouter(prefix="/api", tags=["audit"], dependencies=[Depends(get_principal)])


@router.get("/audit", responses=documented(AuditList))
async def audit(
    request: Request,
    principal: PrincipalDep,
    accounts: AccountsDep,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    org_id: str | None = None,
    result: Literal["success", "failure"] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: str | None = None,
    limit: int = Query(100, ge=1, le=500),
) -> Response:
    if not principal.is_admin:
        if org_id is None:
            raise InvalidRequest(
                "org_id is required: you may read your organisation's audit log.", param="org_id"
            )
        await require_role(request, principal, org_id, MANAGERS)
    if cursor is not None and not cursor.isdigit():
        raise InvalidRequest("cursor must be a next_cursor this route returned.", param="cursor")
    where = AuditQuery(
        actor=actor,
        action=action,
        target=target,
        org_id=org_id,
        result=result,
        since=since,
        until=until,
        before_id=int(cursor) if cursor is not None else None,
        limit=limit,
    )
    rows = await accounts.audit.page(where)
    return json_response(audit_list(rows, limit))
