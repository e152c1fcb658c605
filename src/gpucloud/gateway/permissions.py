"""Who may call which route: one declarative table (`ROUTES`), checked in one place.

`authorize` runs inside `deps.get_principal`, right after the caller is authenticated, so every
route that takes a caller is checked against the table before its handler runs; a route missing
from the table needs a platform admin (deny by default). Routes that take no API key or user
token (health, sign-in, the worker endpoints) are listed too, so the table is the whole map;
tests/integration/test_route_roles.py walks every route × every kind of caller against it.

Needs, from the most open:
- `public`: anyone; `worker`: a worker token only; `user`: a signed-in user's access token only;
- `key`: any API key (the `/v1` inference routes: never a user's access token);
- `caller`: any API key or signed-in user (the route itself narrows what a non-admin sees);
- `org:read`: a member of the path's organisation in any role; `org:manage`: its owner or admin;
- `admin`: a platform admin (an admin API key, or a user with `is_admin`);
- `admin-key`: an admin API key only (`/metrics`, outside `/api`, where access tokens are refused).
Platform admins pass every check but `worker`, `user` and (by token) `key` and `admin-key`.
"""

from __future__ import annotations

import enum

from fastapi import Request

from gpucloud.accounts.orgs import MANAGERS, ORG_ROLES
from gpucloud.errors import AuthenticationFailed, NotFound, PermissionDenied
from gpucloud.keys import Principal


class Need(enum.StrEnum):
    PUBLIC = "public"
    WORKER = "worker"
    USER = "user"
    KEY = "key"
    CALLER = "caller"
    ORG_READ = "org:read"
    ORG_MANAGE = "org:manage"
    ADMIN = "admin"
    ADMIN_KEY = "admin-key"


P, W, U, K, C, R, M, A, AK = Need  # short names for the table below

ROUTES: dict[tuple[str, str], Need] = {
    ("GET", "/health"): P,
    ("GET", "/ready"): P,
    ("GET", "/v1/models"): K,
    ("GET", "/v1/models/{model}"): K,
    ("POST", "/v1/chat/completions"): K,
    ("POST", "/v1/completions"): K,
    ("POST", "/v1/embeddings"): K,
    ("POST", "/v1/jobs"): K,
    ("GET", "/v1/jobs"): K,
    ("GET", "/v1/jobs/{job_id}"): K,
    ("DELETE", "/v1/jobs/{job_id}"): K,
    ("GET", "/api/jobs"): A,
    ("POST", "/api/jobs/{job_id}/retry"): A,
    # Members make, see and revoke their own keys in their organisations (the routes narrow it).
    ("GET", "/api/keys"): C,
    ("POST", "/api/keys"): C,
    ("GET", "/api/keys/{key_id}"): C,
    ("PATCH", "/api/keys/{key_id}"): A,
    ("DELETE", "/api/keys/{key_id}"): C,
    ("GET", "/api/me"): C,
    ("GET", "/api/usage"): C,
    ("GET", "/metrics"): AK,
    ("GET", "/api/stats"): A,
    ("GET", "/api/workers/tokens"): A,
    ("POST", "/api/workers/tokens"): A,
    ("DELETE", "/api/workers/tokens/{token_id}"): A,
    ("POST", "/api/workers/register"): W,
    ("POST", "/api/workers/{worker_id}/heartbeat"): W,
    ("GET", "/api/workers"): A,
    ("GET", "/api/workers/{worker_id}"): A,
    ("POST", "/api/workers/{worker_id}/drain"): A,
    ("POST", "/api/workers/{worker_id}/undrain"): A,
    ("GET", "/api/cluster"): A,
    ("GET", "/api/deployments"): A,
    ("POST", "/api/deployments"): A,
    ("GET", "/api/deployments/{ref}"): A,
    ("PATCH", "/api/deployments/{ref}"): A,
    ("DELETE", "/api/deployments/{ref}"): A,
    ("POST", "/api/auth/login"): P,
    ("POST", "/api/auth/refresh"): U,
    ("POST", "/api/auth/logout"): U,
    ("GET", "/api/auth/me"): U,
    ("GET", "/api/auth/config"): P,
    ("POST", "/api/auth/invitations/accept"): P,  # the invitation's token is the credential
    ("GET", "/api/auth/oidc/login"): P,
    ("GET", "/api/auth/oidc/callback"): P,  # the state (and its cookie) and the provider's code
    ("POST", "/api/auth/oidc/exchange"): P,  # the one-time code is the credential
    ("GET", "/api/users"): A,
    ("POST", "/api/users"): A,
    ("GET", "/api/users/{user_id}"): A,
    ("PATCH", "/api/users/{user_id}"): A,
    ("DELETE", "/api/users/{user_id}"): A,
    ("POST", "/api/users/{user_id}/password"): A,
    ("GET", "/api/orgs"): C,
    ("POST", "/api/orgs"): A,
    ("GET", "/api/orgs/{org_id}"): R,
    ("PATCH", "/api/orgs/{org_id}"): A,  # an organisation's limits: platform admins only
    ("GET", "/api/orgs/{org_id}/members"): R,
    ("POST", "/api/orgs/{org_id}/members"): M,
    ("PATCH", "/api/orgs/{org_id}/members/{user_id}"): M,
    ("DELETE", "/api/orgs/{org_id}/members/{user_id}"): M,
    ("POST", "/api/orgs/{org_id}/invitations"): M,
    ("GET", "/api/orgs/{org_id}/invitations"): M,
    ("DELETE", "/api/orgs/{org_id}/invitations/{invitation_id}"): M,
    ("GET", "/api/audit"): C,  # platform admins: all rows; owners and admins: their org's (the route)
    ("POST", "/api/deployments/{ref}/rollback"): A,
    ("POST", "/v1/responses"): K,
    # Files and batches belong to the API key that made them (the routes narrow what others see).
    ("POST", "/v1/files"): K,
    ("GET", "/v1/files"): K,
    ("GET", "/v1/files/{file_id}"): K,
    ("GET", "/v1/files/{file_id}/content"): K,
    ("DELETE", "/v1/files/{file_id}"): K,
    ("POST", "/v1/batches"): K,
    ("GET", "/v1/batches"): K,
    ("GET", "/v1/batches/{batch_id}"): K,
    ("POST", "/v1/batches/{batch_id}/cancel"): K,
    # Webhook endpoints take an API key: they are its own or its organisation's (the routes say
    # which, and which of the organisation's keys may change them).
    ("POST", "/api/webhooks"): K,
    ("GET", "/api/webhooks"): K,
    ("DELETE", "/api/webhooks/{webhook_id}"): K,
    ("GET", "/api/webhooks/{webhook_id}/deliveries"): K,
    ("POST", "/api/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"): K,
}


def user_id_of(principal: Principal) -> str | None:
    """The signed-in user's id; None for an API key."""
    return principal.key_id if principal.key_id.startswith("usr_") else None


async def authorize(request: Request, principal: Principal) -> None:
    """Check the authenticated caller against the route's need (see the module docstring)."""
    route = getattr(request.scope.get("route"), "path_format", "")  # "/v1/models/{model}"
    need = ROUTES.get((request.scope["method"], route), Need.ADMIN)
    if need is Need.KEY and user_id_of(principal) is not None:  # an access token on an /api route
        raise AuthenticationFailed("This route takes an API key, not a user's access token.")
    if need in (Need.KEY, Need.CALLER):  # most calls: nothing more to check
        return
    if need in (Need.ADMIN, Need.ADMIN_KEY):  # an access token never reaches an admin-key route
        if not principal.is_admin:
            raise PermissionDenied("This action needs a platform admin.", code="admin_required")
        return
    if need in (Need.ORG_READ, Need.ORG_MANAGE):
        roles = ORG_ROLES if need is Need.ORG_READ else MANAGERS
        await require_role(request, principal, str(request.path_params["org_id"]), roles)
        return
    raise PermissionDenied("This route does not take this credential.", code="permission_denied")


async def require_role(request: Request, principal: Principal, org_id: str, roles: tuple[str, ...]) -> str:
    """The caller's role in the organisation ("platform" for a platform admin) if in `roles`; to
    a non-member the organisation does not exist (404)."""
    orgs = request.app.state.accounts.orgs
    if principal.is_admin:
        await orgs.get(org_id)
        return "platform"
    user_id = user_id_of(principal)
    role: str | None = await orgs.role_of(org_id, user_id) if user_id else None
    if role is None:
        raise NotFound(f"No organisation with id {org_id!r}.")
    if role not in roles:
        raise PermissionDenied(
            f"This needs the role {' or '.join(roles)} in the organisation.", code="org_role_required"
        )
    return role
