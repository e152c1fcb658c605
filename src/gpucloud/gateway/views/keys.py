"""API keys and `/api/me` (`routes.keys`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, cast

from pydantic import Field

from gpucloud.db import ApiKey
from gpucloud.gateway.views.base import BudgetPeriod, Priority, Role, View


class ApiKeyView(View):
    """An API key as the API shows it: never the secret, never the digest (`key_view`)."""

    id: str
    object: Literal["api_key"]
    name: str
    prefix: str
    role: Role
    allowed_models: list[str] | None
    default_priority: Priority
    max_priority: Priority
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    rpm_limit: int | None
    tpm_limit: int | None
    max_concurrency: int | None
    token_quota: int | None
    budget_usd: float | None
    budget_period: BudgetPeriod | None
    org_id: str = Field(description="the organisation that owns the key")
    owner_user_id: str | None = Field(
        description="the member who made the key for themselves; null: made by an admin"
    )


class ApiKeyCreated(ApiKeyView):
    """The create call's answer: the only one that carries the secret."""

    key: str = Field(description="the secret, shown this once")


class KeyWindow(View):
    """Use of the rolling one-minute window (None where that limit is not set)."""

    remaining_requests: int | None
    remaining_tokens: int | None
    reset_requests_s: float | None
    reset_tokens_s: float | None


class KeyStatus(View):
    """Limits in use and what is left of the budgets (`Admission.status`)."""

    window: KeyWindow | None
    token_quota_remaining: int | None
    budget_usd_remaining: float | None
    period: str
    unavailable: bool | None = Field(None, description="present (true) when the limit store is down")


class ApiKeyDetail(ApiKeyView):
    status: KeyStatus


class ApiKeyList(View):
    object: Literal["list"]
    data: list[ApiKeyView]


def key_view(row: ApiKey) -> ApiKeyView:
    """Never the secret, never the digest."""
    return ApiKeyView(
        id=row.id,
        object="api_key",
        name=row.name,
        prefix=row.prefix,
        role=cast(Role, row.role),  # checked on the way in
        allowed_models=row.allowed_models,
        default_priority=Priority(row.default_priority),
        max_priority=Priority(row.max_priority),
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        rpm_limit=row.rpm_limit,
        tpm_limit=row.tpm_limit,
        max_concurrency=row.max_concurrency,
        token_quota=row.token_quota,
        budget_usd=row.budget_micros / 1_000_000 if row.budget_micros is not None else None,
        budget_period=cast(BudgetPeriod | None, row.budget_period),  # checked on the way in
        org_id=row.org_id,
        owner_user_id=row.owner_user_id,
    )


def created_key_view(row: ApiKey, secret: str) -> ApiKeyCreated:
    """The one answer that carries the secret."""
    return ApiKeyCreated(**key_view(row).model_dump(), key=secret)


def key_detail(row: ApiKey, status: dict[str, Any]) -> ApiKeyDetail:
    """A key with its limits in use (`Admission.status`)."""
    return ApiKeyDetail(**key_view(row).model_dump(), status=KeyStatus.model_validate(status))
