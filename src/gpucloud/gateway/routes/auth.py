"""`/api/auth/*`: a user signs in with email and password for a short-lived access token,
refreshes it, signs out (revoking every token it was issued), and asks who it is."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from gpucloud.accounts import Accounts
from gpucloud.accounts.passwords import MAX_LENGTH
from gpucloud.accounts.tokens import looks_like_jwt
from gpucloud.errors import AuthenticationFailed
from gpucloud.gateway.deps import bearer_token, facts
from gpucloud.gateway.responses import json_response
from gpucloud.gateway.views import AccessToken, AuthConfig, SignedOut, UserView, documented
from gpucloud.gateway.views.accounts import OidcConfig, access_token_view, user_view

router = APIRouter(prefix="/api/auth", tags=["auth"])


async def get_accounts(request: Request) -> Accounts:
    accounts: Accounts = request.app.state.accounts
    return accounts


AccountsDep = Annotated[Accounts, Depends(get_accounts)]


def access_token(request: Request) -> str:
    """The request's bearer token, which must be an access token (not an API key)."""
    token = bearer_token(request)
    if not looks_like_jwt(token):
        raise AuthenticationFailed("This call takes a user's access token.", code="invalid_token")
    return token


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=MAX_LENGTH)


@router.post("/login", responses=documented(AccessToken))
async def login(body: Login, request: Request, accounts: AccountsDep) -> Response:
    client_ip = request.client.host if request.client else "unknown"
    request.scope["state"]["audit_target"] = body.email.strip().lower()[:320]  # who tried to sign in
    grant = await accounts.login(body.email, body.password, client_ip)
    facts(request).key_id = grant.user_id
    return json_response(access_token_view(grant), headers={"cache-control": "no-store"})


@router.post("/refresh", responses=documented(AccessToken))
async def refresh(request: Request, accounts: AccountsDep) -> Response:
    grant = await accounts.refresh(access_token(request))
    facts(request).key_id = grant.user_id
    return json_response(access_token_view(grant), headers={"cache-control": "no-store"})


@router.post("/logout", responses=documented(SignedOut))
async def logout(request: Request, accounts: AccountsDep) -> Response:
    facts(request).key_id = await accounts.logout(access_token(request))
    return json_response(SignedOut(object="sign_out", revoked=True))


@router.get("/me", responses=documented(UserView))
async def me(request: Request, accounts: AccountsDep) -> Response:
    principal = await accounts.authenticate(access_token(request))
    facts(request).key_id = principal.key_id
    return json_response(user_view(await accounts.users.get(principal.key_id)))


@router.get("/config", responses=documented(AuthConfig))
async def config(accounts: AccountsDep) -> Response:
    """How people may sign in (public): the dashboard shows a single sign-on button when on."""
    sso = accounts.sso
    name = sso.display_name if sso is not None else None
    return json_response(AuthConfig(password=True, oidc=OidcConfig(enabled=sso is not None, name=name)))
