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
