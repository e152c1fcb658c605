"""Users, sign-in, organisations, invitations and the audit log: the models and their builders
(`routes.users`, `routes.auth`, `routes.orgs`, `routes.invitations`, `routes.audit`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal, cast

from gpucloud.accounts.invitations import InvitationStatus, status_of
from gpucloud.accounts.orgs import OrgRole
from gpucloud.accounts.service import TokenGrant
from gpucloud.db import User
from gpucloud.db.models import AuditEntry, Invitation, Organization, OrgMember
from gpucloud.gateway.views.base import BudgetPeriod, View

AuditResult = Literal["success", "failure"]


class UserView(View):
    """A user as the API shows it: never the password or its hash (`routes.users.user_view`)."""

    id: str
    object: Literal["user"]
    email: str
    is_admin: bool
    created_at: datetime
    disabled_at: datetime | None
    password_changed_at: datetime | None


class UserList(View):
    object: Literal["list"]
    data: list[UserView]


class UserDeleted(View):
    id: str
    object: Literal["user"]
    deleted: Literal[True]


class AccessToken(View):
    """A short-lived access token for the management API (`/api`); never good on `/v1`."""

    access_token: str
    token_type: Literal["bearer"]
    expires_in: int


class SignedOut(View):
    object: Literal["sign_out"]
    revoked: Literal[True]


class OrgView(View):
    """An organisation with its limits (`routes.orgs.org_view`); null limits are unlimited."""

    id: str
    object: Literal["organization"]
    name: str
    created_at: datetime
    allowed_models: list[str] | None
    rpm_limit: int | None
    tpm_limit: int | None
    token_quota: int | None
    budget_usd: float | None
    budget_period: BudgetPeriod | None


class OrgList(View):
    object: Literal["list"]
    data: list[OrgView]


class MemberView(View):
    object: Literal["org_member"]
    org_id: str
    user_id: str
    email: str | None
    role: OrgRole
    created_at: datetime


class MemberList(View):
    object: Literal["list"]
    data: list[MemberView]


class MemberRemoved(View):
    object: Literal["org_member"]
    org_id: str
    user_id: str
    deleted: Literal[True]


class AuditRow(View):
    """One audited management call (`routes.audit.audit_view`)."""

    id: int
    object: Literal["audit_entry"]
    at: datetime
    actor: str
    action: str
    target: str | None
    org_id: str | None
    result: AuditResult
    status: int
    client_ip: str | None
    request_id: str


class AuditList(View):
    object: Literal["list"]
    data: list[AuditRow]
    next_cursor: str | None


class InvitationView(View):
    """An invitation to an organisation (`routes.invitations.invitation_view`); the token and its
    link only in the answer that created it."""

    id: str
    object: Literal["invitation"]
    org_id: str
    email: str
    role: OrgRole
    status: InvitationStatus
    created_by: str
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None
    revoked_at: datetime | None
    token: str | None = None
    url: str | None = None


class InvitationList(View):
    object: Literal["list"]
    data: list[InvitationView]


class OidcConfig(View):
    enabled: bool
    name: str | None


class AuthConfig(View):
    """How people may sign in (`GET /api/auth/config`, public: the dashboard's sign-in page)."""

    password: bool
    oidc: OidcConfig


def user_view(row: User) -> UserView:
    """Never the password hash, never the token version."""
    return UserView(
        id=row.id,
        object="user",
        email=row.email,
        is_admin=row.is_admin,
        created_at=row.created_at,
        disabled_at=row.disabled_at,
        password_changed_at=row.password_changed_at,
    )


def access_token_view(grant: TokenGrant) -> AccessToken:
    return AccessToken(
        access_token=grant.access_token,
        token_type="bearer",  # noqa: S106 (the token's type, not a secret)
        expires_in=grant.expires_in,
    )


def org_view(row: Organization) -> OrgView:
    return OrgView(
        id=row.id,
        object="organization",
        name=row.name,
        created_at=row.created_at,
        allowed_models=row.allowed_models,
        rpm_limit=row.rpm_limit,
        tpm_limit=row.tpm_limit,
        token_quota=row.token_quota,
        budget_usd=row.budget_micros / 1_000_000 if row.budget_micros is not None else None,
        budget_period=cast(BudgetPeriod | None, row.budget_period),  # checked on the way in
    )


def member_view(row: OrgMember, email: str | None) -> MemberView:
    return MemberView(
        object="org_member",
        org_id=row.org_id,
        user_id=row.user_id,
        email=email,
        role=cast(OrgRole, row.role),  # checked on the way in (`accounts.orgs.check_role`)
        created_at=row.created_at,
    )


def audit_view(row: AuditEntry) -> AuditRow:
    return AuditRow(
        id=row.id,
        object="audit_entry",
        at=row.at,
        actor=row.actor,
        action=row.action,
        target=row.target,
        org_id=row.org_id,
        result=cast(AuditResult, row.result),  # written by `gateway.audit` as one of the two
        status=row.status,
        client_ip=row.client_ip,
        request_id=row.request_id,
    )


def audit_list(rows: Sequence[AuditEntry], limit: int) -> AuditList:
    """A page of the log, newest first; a full page carries the cursor of the next one."""
    next_cursor = str(rows[-1].id) if len(rows) == limit else None
    return AuditList(object="list", data=[audit_view(r) for r in rows], next_cursor=next_cursor)


def invitation_view(row: Invitation, token: str | None = None) -> InvitationView:
    """The token and its link only in the answer that created the invitation."""
    view = InvitationView(
        id=row.id,
        object="invitation",
        org_id=row.org_id,
        email=row.email,
        role=cast(OrgRole, row.role),  # checked on the way in
        status=status_of(row),
        created_by=row.created_by,
        created_at=row.created_at,
        expires_at=row.expires_at,
        accepted_at=row.accepted_at,
        revoked_at=row.revoked_at,
    )
    if token is not None:
        view.token, view.url = token, f"/?invite={token}"
    return view
