"""FastAPI dependencies, as `Annotated` aliases: the runtime, the caller, the admin, the worker."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from gpucloud.accounts.tokens import looks_like_jwt
from gpucloud.cluster import WorkerCaller
from gpucloud.errors import AuthenticationFailed, PermissionDenied
from gpucloud.gateway.inference import Inference
from gpucloud.gateway.middleware import RequestFacts
from gpucloud.gateway.permissions import authorize
from gpucloud.keys import Principal
from gpucloud.runtime import Runtime


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_inference(request: Request) -> Inference:
    inference: Inference = request.app.state.inference
    return inference


def facts(request: Request) -> RequestFacts:
    found: RequestFacts = getattr(request.state, "facts", None) or RequestFacts()
    return found


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationFailed(
            "You didn't provide an API key. Send it in the Authorization header as 'Bearer YOUR_KEY'."
        )
    return token.strip()


async def get_principal(request: Request) -> Principal:
    runtime: Runtime = request.app.state.runtime
    throttle = request.app.state.auth_throttle  # failed-auth throttling (limits.auth_throttle)
    token = bearer_token(request)
    authenticate = runtime.keys.authenticate
    if looks_like_jwt(token) and request.scope["path"].startswith("/api/"):
        # A user's access token (gpucloud.accounts): the management API only; on /v1 it goes to
        # the key service, which refuses it like any unknown key.
        authenticate = request.app.state.accounts.authenticate
    principal: Principal = await throttle.guard(_address(request), authenticate, token)
    facts(request).key_id = principal.key_id  # for logs: the key id, never the key
    await authorize(request, principal)  # the route's need, from gateway.permissions' table
    return principal


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def get_admin(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    if not principal.is_admin:
        raise PermissionDenied("This action needs an admin API key.", code="admin_required")
    return principal


async def get_worker(request: Request) -> WorkerCaller:
    """A worker agent, authenticated by its worker token. API keys (even admin ones) are refused:
    worker endpoints take worker tokens only, and worker tokens are good for nothing else."""
    runtime: Runtime = request.app.state.runtime
    throttle = request.app.state.auth_throttle
    caller: WorkerCaller = await throttle.guard(
        _address(request), runtime.worker_tokens.authenticate, bearer_token(request)
    )
    facts(request).key_id = caller.token_id  # for logs: the token id, never the token
    return caller


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
InferenceDep = Annotated[Inference, Depends(get_inference)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
AdminDep = Annotated[Principal, Depends(get_admin)]
WorkerDep = Annotated[WorkerCaller, Depends(get_worker)]
