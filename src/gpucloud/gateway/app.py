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
from gpucloud.gateway import errors, webapp
from gpucloud.gateway.inference import Inference
from gpucloud.gateway.middleware import RequestContextMiddleware
from gpucloud.gateway.routes import (
    deployments,
    health,
    jobs,
    keys,
    observe,
    openai,
    responses,
    usage,
    workers,
)
from gpucloud.observability.metrics import Metrics
from gpucloud.observability.tracing import Tracer
from gpucloud.runtime import Runtime
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
        app.state.runtime = runtime
        app.state.inference = Inference(runtime)
        try:
            yield
        finally:
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
    for module in (health, openai, responses, jobs, keys, usage, observe, workers, deployments):
        app.include_router(module.router)
    webapp.mount(app.router.routes)  # the dashboard at /, after (and never shadowing) every API route
    app.state.metrics = metrics
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=settings.limits.max_body_bytes,
        metrics=metrics,
        tracer=tracer,
    )
    return app


def _announce_admin_key(secret: str) -> None:
    # Printed once to the operator's terminal, never logged: log lines travel to other systems.
    print(
        "\n  gpucloud generated an admin API key. It is shown only this once; store it now:\n\n"
        f"    {secret}\n\n  (set GPUCLOUD_ADMIN_KEY to choose your own.)\n",
        file=sys.stderr,
        flush=True,
    )
