"""`gpucloud serve`: the gateway under uvicorn, one process or several sharing the port; and
`gpucloud openapi`, the gateway's HTTP API schema.

The flags go on top of `Settings` (read once); with `--workers N` they also go into the
environment (`export_overrides`), because each uvicorn process builds its own app from it.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from gpucloud.cli.main import DataDir, load_settings
from gpucloud.logs import configure_logging
from gpucloud.settings import Settings, export_overrides

Host = Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")]
Port = Annotated[int | None, typer.Option(help="Port to bind (default 8000).")]
LocalWorker = Annotated[
    bool | None,
    typer.Option(
        "--local-worker/--no-local-worker", help="Run a worker in this process (default: without Redis)."
    ),
]
Workers = Annotated[
    int, typer.Option(min=1, max=64, help="Gateway processes sharing the port (cluster mode only).")
]


def serve(
    host: Host = None,
    port: Port = None,
    data_dir: DataDir = None,
    local_worker: LocalWorker = None,
    workers: Workers = 1,
) -> None:
    """Run the gateway (and, in embedded mode, a local worker with the simulated engine)."""
    import uvicorn

    from gpucloud.gateway.app import create_app

    overrides: dict[str, Any] = {"host": host, "port": port, "data_dir": data_dir}
    settings = load_settings(data_dir, host=host, port=port)
    if local_worker is not None:
        settings = settings.model_copy(
            update={"local_worker": settings.local_worker.model_copy(update={"enabled": local_worker})}
        )
        overrides["local_worker__enabled"] = local_worker
    if workers > 1 and settings.redis_url is None:
        typer.echo(
            "error: --workers needs cluster mode (GPUCLOUD_REDIS_URL): embedded mode's in-process "
            "queue lives in one process.",
            err=True,
        )
        raise typer.Exit(2)
    configure_logging(settings.log_level, settings.log_format)
    if workers == 1:
        uvicorn.run(create_app(settings), **_uvicorn_options(settings))
    else:
        _serve_processes(settings, overrides, workers)


def openapi() -> None:
    """Print the HTTP API's OpenAPI schema (for generated clients)."""
    from gpucloud.gateway.app import create_app

    api = create_app(Settings())
    typer.echo(json.dumps(api.openapi(), indent=2))


def _uvicorn_options(settings: Settings) -> dict[str, Any]:
    return {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,
        "log_level": settings.log_level.lower(),
        "access_log": False,  # the gateway writes its own line per request (gpucloud.access)
        # Longer than clients' and load balancers' idle timeouts (5 s for httpx, 60 s for most
        # balancers): the side that closes an idle connection first must be the client, or a
        # request sent just as the server closes it fails.
        "timeout_keep_alive": 75,
        "timeout_graceful_shutdown": 10,
    }


def _serve_processes(settings: Settings, overrides: dict[str, Any], workers: int) -> None:
    """Each process builds its own app (its own runtime, reply channel and finalizer consumer) from
    the same settings; leader-only duties are leases in Redis, so they stay single across them."""
    import uvicorn

    from gpucloud.db.migrate import upgrade

    export_overrides(overrides)
    if settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.resolved_database_url())  # once, before the processes race to do it
    uvicorn.run(
        "gpucloud.gateway.app:app_from_environment",
        factory=True,
        workers=workers,
        **_uvicorn_options(settings),
    )
