"""Users and sign-in (`routes.users`, `routes.auth`)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from gpucloud.gateway.views.base import View


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
    budget_period: Literal["daily", "monthly"] | None


class OrgList(View):
    object: Literal["list"]
    data: list[OrgView]


class MemberView(View):
    object: Literal["org_member"]
    org_id: str
    user_id: str
    email: str | None
    role: Literal["owner", "admin", "member", "viewer"]
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
    result: Literal["success", "failure"]
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
    role: Literal["owner", "admin", "member", "viewer"]
    status: Literal["pending", "accepted", "revoked", "expired"]
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
