"""`/api/keys` and `/api/me`: API key management and "who am I" (any key).

Platform admins manage every key. A signed-in member (owner, admin or member; not a viewer) of an
organisation creates user keys for themselves in it (`org_id` required): the key records them as
its owner, may not be an admin key nor get high priority, and its limits may only be tighter than
the operator's defaults. Such a user lists, reads and revokes only the keys it owns (others' are
404); changing a key's limits stays with platform admins.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import ConfigDict, Field, field_validator
from starlette.responses import Response

from gpucloud.db import ApiKey
from gpucloud.errors import InvalidRequest, NotFound, PermissionDenied
from gpucloud.gateway.deps import AdminDep, PrincipalDep, RuntimeDep, get_principal
from gpucloud.gateway.inputs import CleanInput
from gpucloud.gateway.permissions import require_role, user_id_of
from gpucloud.gateway.responses import json_response
from gpucloud.gateway.routes.auth import AccountsDep
from gpucloud.gateway.views import ApiKeyCreated, ApiKeyDetail, ApiKeyList, ApiKeyView, documented
from gpucloud.gateway.views.keys import created_key_view, key_detail, key_view
from gpucloud.keys import NewKey, Principal
from gpucloud.queue.protocol import Priority
from gpucloud.settings import KeyDefaults

router = APIRouter(prefix="/api", tags=["keys"], dependencies=[Depends(get_principal)])

PriorityName = Literal["high", "normal", "low"]
BudgetPeriod = Literal["daily", "monthly"]
_INT32 = 2**31 - 1
MAKERS = ("owner", "admin", "member")  # organisation roles that create keys for themselves


class _KeyLimits(CleanInput):
    """Limits of a key; None (or absent) means unlimited."""

    model_config = ConfigDict(extra="forbid")

    # Upper bounds: what the columns hold (32-bit integers; micro-dollars and quotas kept exact
    # below 2**53, as Redis's Lua numbers are doubles). Beyond them a 400, never a 500.
    rpm_limit: int | None = Field(None, ge=0, le=_INT32, description="requests per rolling minute")
    tpm_limit: int | None = Field(
        None, ge=0, le=_INT32, description="tokens per rolling minute (prompt + max_tokens reserved)"
    )
    max_concurrency: int | None = Field(None, ge=0, le=_INT32, description="requests in flight at once")
    token_quota: int | None = Field(None, ge=0, le=10**15, description="tokens per budget period")
    budget_usd: float | None = Field(None, ge=0, le=10**9, description="spend per budget period, in USD")
    budget_period: BudgetPeriod | None = Field(
        None, description="daily, monthly, or null for the key's lifetime"
    )

    @field_validator("expires_at", check_fields=False)
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("expires_at needs a time zone (e.g. 2030-01-01T00:00:00Z)")
        return value


class KeyCreate(_KeyLimits):
    name: str = Field(min_length=1, max_length=200)
    role: Literal["admin", "user"] = "user"
    expires_at: datetime | None = None
    allowed_models: list[str] | None = Field(None, max_length=1000)
    default_priority: PriorityName = "normal"
    max_priority: PriorityName | None = None
    org_id: str | None = Field(
        None, max_length=40, description="the owning organisation; default: the default one"
    )


class KeyPatch(_KeyLimits):
    """Only the fields sent change; null clears a limit."""

    name: str | None = Field(None, min_length=1, max_length=200)
    expires_at: datetime | None = None
    allowed_models: list[str] | None = Field(None, max_length=1000)
    default_priority: PriorityName | None = None
    max_priority: PriorityName | None = None


def _micros(usd: float | None) -> int | None:
    return round(usd * 1_000_000) if usd is not None else None


def _limit_fields(body: _KeyLimits, defaults: KeyDefaults) -> dict[str, Any]:
    """The limits the body sets, completed from the operator's defaults for those it leaves out."""
    given = body.model_fields_set
    pick: dict[str, Any] = {
        "rpm_limit": body.rpm_limit if "rpm_limit" in given else defaults.rpm,
        "tpm_limit": body.tpm_limit if "tpm_limit" in given else defaults.tpm,
        "max_concurrency": body.max_concurrency if "max_concurrency" in given else defaults.max_concurrency,
        "token_quota": body.token_quota if "token_quota" in given else defaults.token_quota,
        "budget_micros": _micros(body.budget_usd if "budget_usd" in given else defaults.budget_usd),
        "budget_period": body.budget_period if "budget_period" in given else defaults.budget_period,
    }
    return pick


@router.post("/keys", status_code=201, responses=documented(ApiKeyCreated, 201))
async def create_key(
    body: KeyCreate, request: Request, principal: PrincipalDep, runtime: RuntimeDep, accounts: AccountsDep
) -> Response:
    owner = await _member_creating(request, principal, body)
    if body.org_id is not None:
        await _known_org(accounts, body.org_id)
    limits = _limit_fields(body, runtime.settings.key_defaults)
    if owner is not None:
        _within_defaults(limits, runtime.settings.key_defaults)
    default = Priority(body.default_priority)
    ceiling = Priority(body.max_priority) if body.max_priority else default
    if body.expires_at is not None and body.expires_at <= datetime.now(body.expires_at.tzinfo):
        raise InvalidRequest("expires_at is in the past.", param="expires_at")
    row, secret = await runtime.keys.create(
        NewKey(
            **limits,
            name=body.name,
            role=body.role,
            expires_at=body.expires_at,
            allowed_models=body.allowed_models,
            default_priority=default,
            max_priority=ceiling,
            org_id=body.org_id,
            owner_user_id=owner,
        )
    )
    request.scope["state"].update(audit_target=row.id, audit_org=row.org_id)  # never the secret
    # The only response that ever carries the secret.
    return json_response(created_key_view(row, secret), status_code=201)


async def _known_org(accounts: AccountsDep, org_id: str) -> None:
    try:
        await accounts.orgs.get(org_id)
    except NotFound:
        raise InvalidRequest(f"No organisation with id {org_id!r}.", param="org_id") from None


async def _member_creating(request: Request, principal: Principal, body: KeyCreate) -> str | None:
    """None for a platform admin; for a member making a key for itself, its user id (see the
    module docstring for what it may not do)."""
    if principal.is_admin:
        return None
    user_id = user_id_of(principal)
    if user_id is None:
        raise PermissionDenied("Only an admin key creates API keys.", code="admin_required")
    if body.org_id is None:
        raise InvalidRequest("org_id is required: the organisation the key is for.", param="org_id")
    await require_role(request, principal, body.org_id, MAKERS)
    if body.role != "user":
        raise PermissionDenied("Only a platform admin creates admin keys.", param="role")
    if "high" in (body.default_priority, body.max_priority):
        raise PermissionDenied("Only a platform admin grants high priority.", param="max_priority")
    return user_id


def _within_defaults(limits: dict[str, Any], defaults: KeyDefaults) -> None:
    """A member's key may be limited more than the operator's defaults, never less."""
    ceilings = {
        "rpm_limit": defaults.rpm,
        "tpm_limit": defaults.tpm,
        "max_concurrency": defaults.max_concurrency,
        "token_quota": defaults.token_quota,
        "budget_micros": _micros(defaults.budget_usd),
    }
    for field, ceiling in ceilings.items():
        if ceiling is not None and (limits[field] is None or limits[field] > ceiling):
            param = "budget_usd" if field == "budget_micros" else field
            raise PermissionDenied(f"{param} may not exceed the operator's default.", param=param)
    if defaults.budget_usd is not None and limits["budget_period"] != defaults.budget_period:
        raise PermissionDenied("budget_period may not differ from the default.", param="budget_period")


async def _visible_key(principal: Principal, runtime: RuntimeDep, key_id: str) -> ApiKey:
    """The key if the caller may see it: an admin any, a member the keys it owns, a user key
    itself (else 404)."""
    row = await runtime.keys.get(key_id)
    mine = row.id == principal.key_id or (
        row.owner_user_id is not None and row.owner_user_id == user_id_of(principal)
    )
    if not principal.is_admin and not mine:
        raise NotFound(f"No API key with id {key_id!r}.")
    return row


@router.get("/keys", responses=documented(ApiKeyList))
async def list_keys(principal: PrincipalDep, runtime: RuntimeDep) -> Response:
    if principal.is_admin:
        rows = await runtime.keys.list()
    elif (user_id := user_id_of(principal)) is not None:
        rows = await runtime.keys.list(owner_user_id=user_id)
    else:  # a user key sees itself only (as GET /api/me)
        rows = [await runtime.keys.get(principal.key_id)]
    return json_response(ApiKeyList(object="list", data=[key_view(k) for k in rows]))


@router.get("/keys/{key_id}", responses=documented(ApiKeyDetail))
async def get_key(key_id: str, principal: PrincipalDep, runtime: RuntimeDep) -> Response:
    row = await _visible_key(principal, runtime, key_id)
    status = await runtime.admission.status(Principal.of(row))
    return json_response(key_detail(row, status))


@router.patch("/keys/{key_id}", responses=documented(ApiKeyView))
async def update_key(key_id: str, body: KeyPatch, _: AdminDep, runtime: RuntimeDep) -> Response:
    changes: dict[str, object] = body.model_dump(exclude_unset=True)
    if "budget_usd" in changes:
        changes["budget_micros"] = _micros(body.budget_usd)
        del changes["budget_usd"]
    for field in ("name", "default_priority"):
        if field in changes and changes[field] is None:
            raise InvalidRequest(f"{field} cannot be null.", param=field)
    if changes.get("max_priority", "") is None:
        raise InvalidRequest("max_priority cannot be null.", param="max_priority")
    return json_response(key_view(await runtime.keys.update(key_id, changes)))


@router.delete("/keys/{key_id}", responses=documented(ApiKeyView))
async def revoke_key(key_id: str, principal: PrincipalDep, runtime: RuntimeDep) -> Response:
    await _visible_key(principal, runtime, key_id)
    if not principal.is_admin and user_id_of(principal) is None:
        raise PermissionDenied("Only an admin revokes API keys.", code="admin_required")
    return json_response(key_view(await runtime.keys.revoke(key_id)))


@router.get("/me", responses=documented(ApiKeyView))
async def me(principal: PrincipalDep, runtime: RuntimeDep) -> Response:
    return json_response(key_view(await runtime.keys.get(principal.key_id)))
