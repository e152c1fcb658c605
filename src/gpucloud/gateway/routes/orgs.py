"""`/api/orgs`: organisations and their members.

Who may call what is in `gateway.permissions` (platform admins create organisations and manage
any; owners and admins manage members; every member reads); the one rule beyond that table is
here: only an owner (or a platform admin) grants, changes or removes the owner role. A signed-in
admin who creates an organisation becomes its owner.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from gpucloud.accounts.orgs import MANAGERS, ORG_ROLES
from gpucloud.errors import PermissionDenied
from gpucloud.gateway.deps import AdminDep, PrincipalDep, get_principal
from gpucloud.gateway.permissions import require_role, user_id_of
from gpucloud.gateway.responses import json_response
from gpucloud.gateway.routes.auth import AccountsDep
from gpucloud.gateway.views import MemberList, MemberRemoved, MemberView, OrgList, OrgView, documented
from gpucloud.gateway.views.accounts import member_view, org_view
from gpucloud.keys import Principal

router = APIRouter(prefix="/api", tags=["orgs"], dependencies=[Depends(get_principal)])


class OrgCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)


class OrgLimitsPatch(BaseModel):
    """Only the fields sent change; null makes a limit unlimited. Enforced across all the
    organisation's keys on every gateway, on top of each key's own limits."""

    model_config = ConfigDict(extra="forbid")

    rpm_limit: int | None = Field(None, ge=0, description="requests per rolling minute")
    tpm_limit: int | None = Field(None, ge=0, description="tokens per rolling minute")
    token_quota: int | None = Field(None, ge=0, description="tokens per budget period")
    budget_usd: float | None = Field(None, ge=0, description="spend per budget period, in USD")
    budget_period: Literal["daily", "monthly"] | None = Field(
        None, description="null: the organisation's lifetime"
    )
    allowed_models: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        None, max_length=1000, description="models its keys may use (on top of each key's); null: any"
    )


class MemberAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(min_length=1, max_length=40)
    role: str = Field(description=f"one of {', '.join(ORG_ROLES)}")


class RoleChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: str = Field(description=f"one of {', '.join(ORG_ROLES)}")


@router.post("/orgs", status_code=201, responses=documented(OrgView, 201))
async def create_org(
    body: OrgCreate, request: Request, principal: AdminDep, accounts: AccountsDep
) -> Response:
    row = await accounts.orgs.create(body.name, owner_user_id=user_id_of(principal))
    request.scope["state"].update(audit_target=row.id, audit_org=row.id)
    return json_response(org_view(row), status_code=201)


@router.get("/orgs", responses=documented(OrgList))
async def list_orgs(principal: PrincipalDep, accounts: AccountsDep) -> Response:
    user_id = user_id_of(principal)
    if principal.is_admin:
        rows = await accounts.orgs.listed()
    else:
        rows = await accounts.orgs.listed(user_id) if user_id else []
    return json_response(OrgList(object="list", data=[org_view(row) for row in rows]))


@router.get("/orgs/{org_id}", responses=documented(OrgView))
async def get_org(org_id: str, accounts: AccountsDep) -> Response:
    return json_response(org_view(await accounts.orgs.get(org_id)))


@router.patch("/orgs/{org_id}", responses=documented(OrgView))
async def set_org_limits(org_id: str, body: OrgLimitsPatch, accounts: AccountsDep) -> Response:
    values: dict[str, object] = body.model_dump(exclude_unset=True)
    if "budget_usd" in values:
        del values["budget_usd"]
        usd = body.budget_usd
        values["budget_micros"] = round(usd * 1_000_000) if usd is not None else None  # micro-dollars
    return json_response(org_view(await accounts.orgs.set_limits(org_id, values)))


@router.get("/orgs/{org_id}/members", responses=documented(MemberList))
async def list_members(org_id: str, accounts: AccountsDep) -> Response:
    rows = await accounts.orgs.members(org_id)
    return json_response(MemberList(object="list", data=[member_view(m, email) for m, email in rows]))


@router.post("/orgs/{org_id}/members", status_code=201, responses=documented(MemberView, 201))
async def add_member(
    org_id: str, body: MemberAdd, request: Request, principal: PrincipalDep, accounts: AccountsDep
) -> Response:
    await may_grant(request, principal, org_id, body.role)
    request.scope["state"]["audit_target"] = body.user_id
    row = await accounts.orgs.add_member(org_id, body.user_id, body.role)
    email = (await accounts.users.get(body.user_id)).email
    return json_response(member_view(row, email), status_code=201)


@router.patch("/orgs/{org_id}/members/{user_id}", responses=documented(MemberView))
async def change_role(
    org_id: str,
    user_id: str,
    body: RoleChange,
    request: Request,
    principal: PrincipalDep,
    accounts: AccountsDep,
) -> Response:
    await may_grant(request, principal, org_id, body.role)
    await may_grant(request, principal, org_id, await accounts.orgs.role_of(org_id, user_id) or "member")
    await accounts.orgs.set_role(org_id, user_id, body.role)
    found = {m.user_id: (m, email) for m, email in await accounts.orgs.members(org_id)}
    return json_response(member_view(*found[user_id]))


@router.delete("/orgs/{org_id}/members/{user_id}", responses=documented(MemberRemoved))
async def remove_member(
    org_id: str, user_id: str, request: Request, principal: PrincipalDep, accounts: AccountsDep
) -> Response:
    await may_grant(request, principal, org_id, await accounts.orgs.role_of(org_id, user_id) or "member")
    await accounts.orgs.remove_member(org_id, user_id)
    return json_response(MemberRemoved(object="org_member", org_id=org_id, user_id=user_id, deleted=True))


async def may_grant(request: Request, principal: Principal, org_id: str, role: str) -> None:
    """Beyond the table (owners and admins manage members): only owners and platform admins grant,
    change or remove the owner role."""
    mine = await require_role(request, principal, org_id, MANAGERS)
    if role == "owner" and mine == "admin":
        raise PermissionDenied("Only an owner can grant or change the owner role.", code="org_role_required")
