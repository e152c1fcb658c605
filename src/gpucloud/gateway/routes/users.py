"""`/api/users`: platform admins create users, list them, disable or enable them, make them
admins, reset their passwords and delete them. Every change that touches sign-in revokes the
user's access tokens (`accounts.users`)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from gpucloud.accounts import NewUser
from gpucloud.accounts.passwords import MAX_LENGTH
from gpucloud.gateway.deps import AdminDep, get_principal
from gpucloud.gateway.responses import json_response
from gpucloud.gateway.routes.auth import AccountsDep
from gpucloud.gateway.views import UserDeleted, UserList, UserView, documented
from gpucloud.gateway.views.accounts import user_view

router = APIRouter(prefix="/api", tags=["users"], dependencies=[Depends(get_principal)])


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=MAX_LENGTH)
    is_admin: bool = False


class UserPatch(BaseModel):
    """Only the fields sent change."""

    model_config = ConfigDict(extra="forbid")

    disabled: bool | None = None
    is_admin: bool | None = None


class PasswordReset(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str = Field(min_length=1, max_length=MAX_LENGTH)


@router.post("/users", status_code=201, responses=documented(UserView, 201))
async def create_user(body: UserCreate, request: Request, _: AdminDep, accounts: AccountsDep) -> Response:
    row = await accounts.users.create(NewUser(body.email, body.password, body.is_admin))
    request.scope["state"]["audit_target"] = row.id
    return json_response(user_view(row), status_code=201)


@router.get("/users", responses=documented(UserList))
async def list_users(_: AdminDep, accounts: AccountsDep) -> Response:
    rows = await accounts.users.list()
    return json_response(UserList(object="list", data=[user_view(row) for row in rows]))


@router.get("/users/{user_id}", responses=documented(UserView))
async def get_user(user_id: str, _: AdminDep, accounts: AccountsDep) -> Response:
    return json_response(user_view(await accounts.users.get(user_id)))


@router.patch("/users/{user_id}", responses=documented(UserView))
async def update_user(user_id: str, body: UserPatch, _: AdminDep, accounts: AccountsDep) -> Response:
    row = await accounts.users.update(user_id, disabled=body.disabled, is_admin=body.is_admin)
    return json_response(user_view(row))


@router.post("/users/{user_id}/password", responses=documented(UserView))
async def reset_password(user_id: str, body: PasswordReset, _: AdminDep, accounts: AccountsDep) -> Response:
    return json_response(user_view(await accounts.users.reset_password(user_id, body.password)))


@router.delete("/users/{user_id}", responses=documented(UserDeleted))
async def delete_user(user_id: str, _: AdminDep, accounts: AccountsDep) -> Response:
    await accounts.users.delete(user_id)
    return json_response(UserDeleted(id=user_id, object="user", deleted=True))
