"""`/api/keys` and `/api/me`: API key management (admin) and "who am I" (any key)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.responses import Response

from gpucloud.db import ApiKey
from gpucloud.errors import InvalidRequest
from gpucloud.gateway.deps import AdminDep, PrincipalDep, RuntimeDep, get_principal
from gpucloud.gateway.responses import json_response
from gpucloud.keys import NewKey
from gpucloud.queue.protocol import Priority

router = APIRouter(prefix="/api", tags=["keys"], dependencies=[Depends(get_principal)])

PriorityName = Literal["high", "normal", "low"]


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    role: Literal["admin", "user"] = "user"
    expires_at: datetime | None = None
    allowed_models: list[str] | None = Field(None, max_length=1000)
    default_priority: PriorityName = "normal"
    max_priority: PriorityName | None = None

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("expires_at needs a time zone (e.g. 2030-01-01T00:00:00Z)")
        return value


def key_view(row: ApiKey) -> dict[str, object]:
    """A key as the API shows it: never the secret, never the digest."""
    return {
        "id": row.id,
        "object": "api_key",
        "name": row.name,
        "prefix": row.prefix,
        "role": row.role,
        "allowed_models": row.allowed_models,
        "default_priority": row.default_priority,
        "max_priority": row.max_priority,
        "created_at": row.created_at.isoformat(),
        "expires_at": row.expires_at.isoformat() if row.expires_at else None,
        "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
    }


@router.post("/keys", status_code=201)
async def create_key(body: KeyCreate, _: AdminDep, runtime: RuntimeDep) -> Response:
    default = Priority(body.default_priority)
    ceiling = Priority(body.max_priority) if body.max_priority else default
    if body.expires_at is not None and body.expires_at <= datetime.now(body.expires_at.tzinfo):
        raise InvalidRequest("expires_at is in the past.", param="expires_at")
    row, secret = await runtime.keys.create(
        NewKey(
            name=body.name,
            role=body.role,
            expires_at=body.expires_at,
            allowed_models=body.allowed_models,
            default_priority=default,
            max_priority=ceiling,
        )
    )
    # The only response that ever carries the secret.
    return json_response({**key_view(row), "key": secret}, status_code=201)


@router.get("/keys")
async def list_keys(_: AdminDep, runtime: RuntimeDep) -> Response:
    return json_response({"object": "list", "data": [key_view(k) for k in await runtime.keys.list()]})


@router.get("/keys/{key_id}")
async def get_key(key_id: str, _: AdminDep, runtime: RuntimeDep) -> Response:
    return json_response(key_view(await runtime.keys.get(key_id)))


@router.delete("/keys/{key_id}")
async def revoke_key(key_id: str, _: AdminDep, runtime: RuntimeDep) -> Response:
    return json_response(key_view(await runtime.keys.revoke(key_id)))


@router.get("/me")
async def me(principal: PrincipalDep, runtime: RuntimeDep) -> Response:
    return json_response(key_view(await runtime.keys.get(principal.key_id)))
