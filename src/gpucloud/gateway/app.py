"""`create_app(settings)`: the gateway's FastAPI application.

Nothing is built at import time: the runtime (database, queue, finalizer, local worker) is
assembled and started in the lifespan, so tests and the CLI each get their own. The interactive
API docs (`/docs`, `/openapi.json`, see `gateway.apidocs`) follow `settings.api_docs`;
`gpucloud openapi` prints the same schema either way.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI

from gpucloud import __version__
from gpucloud.accounts import Accounts
from gpucloud.accounts.retention import AuditRetention
from gpucloud.accounts.throttle import FailureLog, MemoryFailureLog
from gpucloud.accounts.throttle_redis import RedisFailureLog
from gpucloud.background import close_within
from gpucloud.gateway import apidocs, errors, webapp
from gpucloud.gateway.audit import AuditMiddleware
from gpucloud.gateway.inference import Inference
from gpucloud.gateway.middleware import RequestContextMiddleware
from gpucloud.gateway.offline import Offline
from gpucloud.gateway.routes import (
    audit,
    auth,
    batches,
    deployments,
    files,
    health,
    invitations,
    jobs,
    keys,
    observe,
    openai,
    orgs,
    responses,
    sso,
    usage,
    users,
    webhooks,
    workers,
)
from gpucloud.limits.auth_throttle import build_auth_throttle
from gpucloud.observability.metrics import Metrics
from gpucloud.observability.tracing import Tracer
from gpucloud.runtime import Runtime
from gpucloud.settings import Settings

# A service that takes longer to close at shutdown is abandoned, logged with where it hangs.
_CLOSE_TIMEOUT_S = 10.0

# Room for a multipart upload's boundaries and headers around the file itself.
UPLOAD_OVERHEAD_BYTES = 64 * 1024


ROUTE_MODULES = (
    health,
    openai,
    responses,
    jobs,
    keys,
    usage,
    observe,
    workers,
    deployments,
    files,
    batches,
    webhooks,
    auth,
    sso,
    users,
    orgs,
    invitations,
    audit,
)


def create_app(settings: Settings) -> FastAPI:
    metrics = Metrics()
    tracer = Tracer(settings.otlp_endpoint, "gpucloud-gateway")
    app = FastAPI(
        title="gpucloud",
        version=__version__,
        lifespan=_lifespan(settings, metrics, tracer),
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        # Starlette's slash redirect builds an absolute URL from the Host header: an attacker's
        # host in an unauthenticated 307. A path with a stray slash is a plain 404 instead.
        redirect_slashes=False,
    )
    errors.install(app)
    for module in ROUTE_MODULES:
        app.include_router(module.router)
    apidocs.install(app, enabled=settings.api_docs)
    webapp.mount(app.router.routes)  # the dashboard at /, after (and never shadowing) every API route
    app.state.metrics = metrics
    app.add_middleware(AuditMiddleware)  # inside the request context: it reads its facts
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=settings.limits.max_body_bytes,
        max_upload_bytes=settings.files.max_bytes + UPLOAD_OVERHEAD_BYTES,
        metrics=metrics,
        tracer=tracer,
    )
    return app


def _lifespan(
    settings: Settings, metrics: Metrics, tracer: Tracer
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """The app's lifespan: builds and starts the runtime and the services on it, closes them in
    the reverse order."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime.build(settings, metrics, tracer)
        app.state.auth_throttle = build_auth_throttle(settings)
        await runtime.start()
        if runtime.generated_admin_key:
            _announce_admin_key(runtime.generated_admin_key)
        accounts, retention = await _start_accounts(settings, runtime)
        app.state.runtime = runtime
        app.state.inference = Inference(runtime)
        app.state.offline = offline = Offline.build(runtime, app.state.inference)
        await offline.start()
        app.state.accounts = accounts
        try:
            yield
        finally:
            # Each within bounded time: SIGTERM must end the process even when a connection hangs.
            await close_within("audit retention", retention.close, _CLOSE_TIMEOUT_S)
            await close_within("accounts", accounts.close, _CLOSE_TIMEOUT_S)
            await close_within("batches and webhooks", offline.close, _CLOSE_TIMEOUT_S)
            await runtime.close()  # its parts one by one, each bounded
            await close_within("the auth throttle", app.state.auth_throttle.close, _CLOSE_TIMEOUT_S)
            tracer.shutdown()

    return lifespan


async def _start_accounts(settings: Settings, runtime: Runtime) -> tuple[Accounts, AuditRetention]:
    """Users, organisations and sign-in, and the task that ages out old audit rows."""
    accounts = Accounts(
        runtime.db,
        settings.accounts,
        runtime.key_changes,
        cache_ttl_s=settings.key_cache_ttl_s,
        oidc=settings.oidc,
        failures=login_failures(settings),
    )
    await accounts.start()
    retention = AuditRetention(
        accounts.audit,
        runtime.queue,
        runtime.instance_id,
        days=settings.accounts.audit_retention_days,
        every_s=settings.accounts.audit_retention_every_s,
    )
    retention.start()
    return accounts, retention


def login_failures(settings: Settings) -> FailureLog:
    """Where wrong passwords are counted: Redis in cluster mode (shared by every gateway)."""
    url = settings.redis_dsn()
    return MemoryFailureLog() if url is None else RedisFailureLog(url, settings.redis_prefix)


def app_from_environment() -> FastAPI:
    """The app of one process of `gpucloud serve --workers N`: settings read in that process."""
    from gpucloud.logs import configure_logging

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)


def _announce_admin_key(secret: str) -> None:
    # Printed once to the operator's terminal, never logged: log lines travel to other systems.
    print(
        "\n  gpucloud generated an admin API key. It is shown only this once; store it now:\n\n"
        f"    {secret}\n\n  (set GPUCLOUD_ADMIN_KEY to choose your own.)\n",
        file=sys.stderr,
        flush=True,
    )
