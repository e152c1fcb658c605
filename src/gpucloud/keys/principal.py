"""Who is calling (`Principal`, with its limits and its organisation's), and what creating or
editing a key may set."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from gpucloud.db import ApiKey
from gpucloud.queue.protocol import Priority


@dataclass(frozen=True, slots=True)
class OrgLimits:
    """The limits of the key's organisation (gpucloud.accounts), read with the key in one query."""

    rpm_limit: int | None
    tpm_limit: int | None
    token_quota: int | None
    budget_micros: int | None
    budget_period: str | None

    @classmethod
    def of(cls, row: object) -> OrgLimits | None:
        """From a key row joined with its organisation (`org_*` columns); None when it sets none."""
        found = cls(*(getattr(row, f"org_{name}", None) for name in ORG_LIMIT_COLUMNS))
        limits = (found.rpm_limit, found.tpm_limit, found.token_quota, found.budget_micros)
        return None if all(v is None for v in limits) else found


ORG_LIMIT_COLUMNS = ("rpm_limit", "tpm_limit", "token_quota", "budget_micros", "budget_period")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the authenticated key, without its secret."""

    key_id: str
    name: str
    role: str
    allowed_models: tuple[str, ...] | None
    default_priority: Priority
    max_priority: Priority
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    max_concurrency: int | None = None
    token_quota: int | None = None
    budget_micros: int | None = None
    budget_period: str | None = None
    org_id: str | None = None  # the owning organisation (gpucloud.accounts); None for a signed-in user
    org_limits: OrgLimits | None = None  # its limits, enforced with the key's (admission)
    org_allowed_models: tuple[str, ...] | None = None  # its models (None: any), on top of the key's

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def may_use(self, model: str) -> bool:
        """Both the key and its organisation allow the model."""
        return self.key_may_use(model) and (
            self.org_allowed_models is None or model in self.org_allowed_models
        )

    def key_may_use(self, model: str) -> bool:
        return self.allowed_models is None or model in self.allowed_models

    @classmethod
    def of(cls, row: ApiKey) -> Principal:
        return cls(
            key_id=row.id,
            name=row.name,
            role=row.role,
            allowed_models=tuple(row.allowed_models) if row.allowed_models is not None else None,
            default_priority=Priority(row.default_priority),
            max_priority=Priority(row.max_priority),
            rpm_limit=row.rpm_limit,
            tpm_limit=row.tpm_limit,
            max_concurrency=row.max_concurrency,
            token_quota=row.token_quota,
            budget_micros=row.budget_micros,
            budget_period=row.budget_period,
            org_id=row.org_id,
            org_limits=OrgLimits.of(row),
            org_allowed_models=_models(getattr(row, "org_allowed_models", None)),
        )


def _models(value: object) -> tuple[str, ...] | None:
    return tuple(str(m) for m in value) if isinstance(value, list) else None


@dataclass(frozen=True, slots=True)
class NewKey:
    name: str
    role: str = "user"
    expires_at: datetime | None = None
    allowed_models: Sequence[str] | None = None
    default_priority: Priority = Priority.NORMAL
    max_priority: Priority = Priority.NORMAL
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    max_concurrency: int | None = None
    token_quota: int | None = None
    budget_micros: int | None = None
    budget_period: str | None = None
    org_id: str | None = None  # None: the default organisation
    owner_user_id: str | None = None  # the member who made it for themselves (None: an admin)


# Fields `KeyService.update` may change (PATCH /api/keys/{id}); None clears a limit.
EDITABLE = frozenset(
    {
        "name",
        "allowed_models",
        "default_priority",
        "max_priority",
        "expires_at",
        "rpm_limit",
        "tpm_limit",
        "max_concurrency",
        "token_quota",
        "budget_micros",
        "budget_period",
    }
)
BUDGET_PERIODS = ("daily", "monthly")
