"""`/api/auth/oidc/*`: single sign-on through an OpenID Connect provider (`accounts.sso`).

- `GET login`: 302 to the provider's authorize URL. The state also goes into a short-lived
  HttpOnly cookie scoped to these paths, so the callback is accepted only in the browser that
  started the sign-in (no login CSRF); the nonce and PKCE verifier stay in the database.
- `GET callback?code&state`: 302 to `/?sso_code=<one-time code>`, or to `/?sso_error=<reason>`.
  A GET, so the audit middleware does not see it: it records its own row, success or failure
  (the status recorded is what the sign-in amounted to: 302, 401 or 403).
- `POST exchange {"code"}`: the one-time code for the same answer as `POST /api/auth/login`.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import RedirectResponse, Response

from gpucloud.accounts.audit import AuditRecord
from gpucloud.accounts.oidc import SsoFailed
from gpucloud.accounts.sso import LOGIN_TTL_S
from gpucloud.errors import NotFound
from gpucloud.gateway.deps import facts
from gpucloud.gateway.responses import json_response
from gpucloud.gateway.routes.auth import AccountsDep
from gpucloud.gateway.views import AccessToken, documented
from gpucloud.gateway.views.accounts import access_token_view

router = APIRouter(prefix="/api/auth/oidc", tags=["auth"])
STATE_COOKIE = "gc_oidc_state"
_COOKIE_PATH = "/api/auth/oidc"
_CALLBACK = "GET /api/auth/oidc/callback"


class Exchange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=200)


def _redirect_uri(request: Request) -> str:
    configured = request.app.state.runtime.settings.oidc.redirect_uri
    return str(configured or request.url_for("oidc_callback"))


def _to_dashboard(**query: str) -> RedirectResponse:
    response = RedirectResponse(f"/?{urlencode(query)}", status_code=302)
    response.headers["cache-control"] = "no-store"
    response.delete_cookie(STATE_COOKIE, path=_COOKIE_PATH)
    return response


@router.get("/login", status_code=302, response_class=RedirectResponse)
async def oidc_login(request: Request, accounts: AccountsDep) -> Response:
    if accounts.sso is None:
        return _to_dashboard(sso_error="sso_disabled")
    try:
        url, state = await accounts.sso.begin(_redirect_uri(request))
    except SsoFailed as failed:
        return _to_dashboard(sso_error=failed.reason)
    response = RedirectResponse(url, status_code=302)
    response.headers["cache-control"] = "no-store"
    response.set_cookie(
        STATE_COOKIE,
        state,
        max_age=LOGIN_TTL_S,
        path=_COOKIE_PATH,
        httponly=True,
        samesite="lax",  # sent on the provider's top-level redirect back, not on cross-site posts
        secure=request.url.scheme == "https",
    )
    return response


@router.get("/callback", status_code=302, response_class=RedirectResponse, name="oidc_callback")
async def oidc_callback(request: Request, accounts: AccountsDep) -> Response:
    params = request.query_params
    try:
        if accounts.sso is None:
            raise SsoFailed("sso_disabled", "Single sign-on is not configured.")
        if params.get("error"):
            raise SsoFailed("provider_error", "The identity provider refused the sign-in.")
        state, code = params.get("state", ""), params.get("code", "")
        cookie = request.cookies.get(STATE_COOKIE, "")
        if not state or not code or not hmac.compare_digest(state.encode(), cookie.encode()):
            raise SsoFailed("invalid_state", "The sign-in was not started in this browser. Try again.")
        user, identity = await accounts.sso.finish(state, code, _redirect_uri(request))
        one_time = await accounts.sso.issue_code(user.id)
    except SsoFailed as failed:
        await _audit(request, accounts, "anonymous", failed.reason, 403 if _denied(failed) else 401)
        return _to_dashboard(sso_error=failed.reason)
    await _audit(request, accounts, user.id, identity.email, 302)
    return _to_dashboard(sso_code=one_time)


@router.post("/exchange", responses=documented(AccessToken))
async def oidc_exchange(body: Exchange, request: Request, accounts: AccountsDep) -> Response:
    if accounts.sso is None:
        raise NotFound("Single sign-on is not configured.")
    user = await accounts.sso.redeem(body.code)
    grant = accounts.grant(user)
    facts(request).key_id = user.id
    request.scope["state"]["audit_target"] = user.email
    return json_response(access_token_view(grant), headers={"cache-control": "no-store"})


def _denied(failed: SsoFailed) -> bool:
    """Who the user is was proved, but they may not sign in here (403, not 401)."""
    return failed.reason in ("domain_not_allowed", "account_disabled", "email_not_verified")


async def _audit(request: Request, accounts: AccountsDep, actor: str, target: str, status: int) -> None:
    client = request.client
    entry = AuditRecord(
        actor=actor,
        action=_CALLBACK,
        target=target,
        org_id=None,
        status=status,
        client_ip=client.host if client else None,
        request_id=str(request.scope.get("state", {}).get("request_id", "")),
    )
    await accounts.audit.record(entry)
