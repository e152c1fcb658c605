"""`create_app(settings)`: the gateway's FastAPI application.

Nothing is built at import time: the runtime (database, queue, finalizer, local worker) is
assembled and started in the lifespan, so tests and the CLI each get their own. Interactive API
docs are off (deny by default); `gpucloud openapi` prints the schema.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from gpucloud import __version__
from gpucloud.accounts import Accounts
from gpucloud.gateway import errors, webapp
from gpucloud.gateway.audit import AuditMiddleware
from gpucloud.gateway.inference import Inference
from gpucloud.gateway.middleware import RequestContextMiddleware
from gpucloud.gateway.routes import (
    audit,
    auth,
    deployments,
    health,
    jobs,
    keys,
    observe,
    openai,
    orgs,
    usage,
    users,
    workers,
)
from gpucloud.observability.metrics import Metrics
from gpucloud.observability.tracing import Tracer
from gpucloud.runtime import Runtime, key_changes
from gpucloud.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    metrics = Metrics()
    tracer = Tracer(settings.otlp_endpoint, "gpucloud-gateway")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime.build(settings, metrics, tracer)
        await runtime.start()
        if runtime.generated_admin_key:
            _announce_admin_key(runtime.generated_admin_key)
        accounts = Accounts(
            runtime.db, settings.accounts, key_changes(settings), cache_ttl_s=settings.key_cache_ttl_s
        )
        await accounts.start()
        app.state.runtime = runtime
        app.state.inference = Inference(runtime)
        app.state.accounts = accounts
        try:
            yield
        finally:
            await accounts.close()
            await runtime.close()
            tracer.shutdown()

    app = FastAPI(
        title="gpucloud",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    errors.install(app)
    for module in (
        health,
        openai,
        jobs,
        keys,
        usage,
        observe,
        workers,
        deployments,
        auth,
        users,
        orgs,
        audit,
    ):
        app.include_router(module.router)
    webapp.mount(app.router.routes)  # the dashboard at /, after (and never shadowing) every API route
    app.state.metrics = metrics
    app.add_middleware(AuditMiddleware)  # inside the request context: it reads its facts
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=settings.limits.max_body_bytes,
        metrics=metrics,
        tracer=tracer,
    )
    return app


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
