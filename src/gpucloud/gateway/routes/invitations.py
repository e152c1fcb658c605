"""Invitations: `/api/orgs/{org_id}/invitations` (the organisation's owners and admins, or a
platform admin: create, list, revoke) and `POST /api/auth/invitations/accept` (public: the token
is the credential). The accounts side is `accounts.invitations`; as with members, only an owner
(or a platform admin) invites an owner."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from gpucloud.accounts.invitations import NewInvitation
from gpucloud.accounts.orgs import ORG_ROLES
from gpucloud.accounts.passwords import MAX_LENGTH
from gpucloud.gateway.deps import PrincipalDep, facts, get_principal
from gpucloud.gateway.responses import json_response
from gpucloud.gateway.routes.auth import AccountsDep
from gpucloud.gateway.routes.orgs import may_grant
from gpucloud.gateway.views import AccessToken, InvitationList, InvitationView, documented
from gpucloud.gateway.views.accounts import access_token_view, invitation_view

router = APIRouter(tags=["orgs"])
managed = APIRouter(prefix="/api/orgs/{org_id}/invitations", dependencies=[Depends(get_principal)])


class InvitationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=3, max_length=320)
    role: str = Field(description=f"one of {', '.join(ORG_ROLES)}")


class InvitationAccept(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=200)
    password: str = Field(
        min_length=1,
        max_length=MAX_LENGTH,
        description="the new account's password; the existing account's when the email has one",
    )


@managed.post("", status_code=201, responses=documented(InvitationView, 201))
async def create_invitation(
    org_id: str, body: InvitationCreate, request: Request, principal: PrincipalDep, accounts: AccountsDep
) -> Response:
    await may_grant(request, principal, org_id, body.role)
    new = NewInvitation(org_id=org_id, email=body.email, role=body.role, created_by=principal.key_id)
    row, token = await accounts.invitations.create(new)
    request.scope["state"]["audit_target"] = row.id
    view = invitation_view(row, token)
    return json_response(view, status_code=201, headers={"cache-control": "no-store"})


@managed.get("", responses=documented(InvitationList))
async def list_invitations(org_id: str, accounts: AccountsDep) -> Response:
    rows = await accounts.invitations.listed(org_id)
    return json_response(InvitationList(object="list", data=[invitation_view(row) for row in rows]))


@managed.delete("/{invitation_id}", responses=documented(InvitationView))
async def revoke_invitation(org_id: str, invitation_id: str, accounts: AccountsDep) -> Response:
    return json_response(invitation_view(await accounts.invitations.revoke(org_id, invitation_id)))


@router.post("/api/auth/invitations/accept", responses=documented(AccessToken))
async def accept_invitation(body: InvitationAccept, request: Request, accounts: AccountsDep) -> Response:
    row, user = await accounts.invitations.accept(body.token, body.password)
    request.scope["state"].update(audit_target=row.id, audit_org=row.org_id)
    grant = accounts.grant(user)
    facts(request).key_id = user.id
    return json_response(access_token_view(grant), headers={"cache-control": "no-store"})


router.include_router(managed)
