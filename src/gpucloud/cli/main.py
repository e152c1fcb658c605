"""Command definitions (typer)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from pydantic import SecretStr, ValidationError

from gpucloud.cli.users import users_app
from gpucloud.errors import GpucloudError
from gpucloud.logs import configure_logging
from gpucloud.queue.protocol import Priority
from gpucloud.settings import Settings, export_overrides

if TYPE_CHECKING:
    # The control plane's modules (database, keys) are imported by the commands that use them: a
    # `gpucloud worker` on a GPU machine never loads SQLAlchemy, Alembic or the gateway.
    from gpucloud.cluster.tokens import WorkerTokenService
    from gpucloud.db import Database
    from gpucloud.keys import KeyService
    from gpucloud.worker.control import ControlPlane

app = typer.Typer(help="gpucloud: a self-hosted GPU inference cloud.", no_args_is_help=True)
keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
workers_app = typer.Typer(help="Manage worker machines.", no_args_is_help=True)
worker_tokens_app = typer.Typer(help="Manage worker tokens (gcw_…).", no_args_is_help=True)
workers_app.add_typer(worker_tokens_app, name="token")
app.add_typer(keys_app, name="keys")
app.add_typer(workers_app, name="workers")
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")

T = TypeVar("T")
DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Where embedded mode keeps its data.")]


def load_settings(data_dir: Path | None = None, **overrides: Any) -> Settings:
    settings = Settings()
    update = {k: v for k, v in overrides.items() if v is not None}
    if data_dir is not None:
        update["data_dir"] = data_dir
    return settings.model_copy(update=update) if update else settings


def _with_keys(settings: Settings, action: Callable[[KeyService], Awaitable[T]]) -> T:
    from gpucloud.keys import KeyService
    from gpucloud.runtime import key_changes

    async def with_service(db: Database) -> T:
        service = KeyService(db, changes=key_changes(settings))  # a revoke reaches every gateway
        try:
            return await action(service)
        finally:
            await service.close()

    return _with_db(settings, with_service)


def _with_worker_tokens(settings: Settings, action: Callable[[WorkerTokenService], Awaitable[T]]) -> T:
    from gpucloud.cluster.tokens import WorkerTokenService

    return _with_db(settings, lambda db: action(WorkerTokenService(db)))


def _with_db(settings: Settings, action: Callable[[Database], Awaitable[T]]) -> T:
    from gpucloud.db import Database
    from gpucloud.db.migrate import upgrade

    async def run() -> T:
        db = Database(settings.resolved_database_url(), busy_timeout_ms=settings.sqlite_busy_timeout_ms)
        try:
            return await action(db)
        finally:
            await db.close()

    if settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)  # before the migrations open the file
    upgrade(settings.resolved_database_url())
    try:
        return asyncio.run(run())
    except GpucloudError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from None


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind (default 8000).")] = None,
    data_dir: DataDir = None,
    local_worker: Annotated[
        bool | None,
        typer.Option(
            "--local-worker/--no-local-worker", help="Run a worker in this process (default: without Redis)."
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(min=1, max=64, help="Gateway processes sharing the port (cluster mode only)."),
    ] = 1,
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
    options: dict[str, Any] = {
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
    if workers == 1:
        uvicorn.run(create_app(settings), **options)
        return
    # Each process builds its own app (its own runtime, reply channel and finalizer consumer) from
    # the same settings; leader-only duties are leases in Redis, so they stay single across them.
    from gpucloud.db.migrate import upgrade

    export_overrides(overrides)
    if settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.resolved_database_url())  # once, before the processes race to do it
    uvicorn.run("gpucloud.gateway.app:app_from_environment", factory=True, workers=workers, **options)


@app.command()
def worker(
    model: Annotated[
        list[str] | None,
        typer.Option(help="A model to serve (repeatable); with --server, deployments add more."),
    ] = None,
    redis_url: Annotated[
        str | None, typer.Option(help="Redis queue URL (default GPUCLOUD_REDIS_URL).")
    ] = None,
    engine: Annotated[str, typer.Option(help="Engine kind.")] = "simulated",
    engine_option: Annotated[
        list[str] | None, typer.Option(help="Engine option KEY=VALUE (repeatable).")
    ] = None,
    slots: Annotated[int, typer.Option(min=1, help="Jobs run at once.")] = 8,
    worker_id: Annotated[str | None, typer.Option(help="Consumer name (default host-pid-random).")] = None,
    burst: Annotated[bool, typer.Option(help="Drain the queue, then exit.")] = False,
    grace: Annotated[float, typer.Option(help="Seconds running jobs get to finish on SIGTERM.")] = 10.0,
    server: Annotated[
        str | None, typer.Option(help="Control plane URL: register there and heartbeat (needs --token).")
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(help="Worker token gcw_… (default GPUCLOUD_WORKER_TOKEN).", show_default=False),
    ] = None,
    label: Annotated[list[str] | None, typer.Option(help="A label KEY=VALUE (repeatable).")] = None,
    simulate_gpus: Annotated[
        str | None, typer.Option(help="Simulated GPUs instead of NVML, e.g. 'H100:80,A10:24x2'.")
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(help="Weights of the --model engines: a path under the models dir or a hub id."),
    ] = None,
    models_dir: Annotated[
        Path | None,
        typer.Option(help="Where deployment sources live (default GPUCLOUD_MODELS_DIR or data_dir/models)."),
    ] = None,
    allow_command: Annotated[
        list[str] | None,
        typer.Option(help="Let deployments run this engine program or preset (shell pattern; repeatable)."),
    ] = None,
    allow_url: Annotated[
        list[str] | None,
        typer.Option(help="Let deployments attach to engine server URLs matching this (repeatable)."),
    ] = None,
) -> None:
    """Run a worker: lease jobs for MODEL from the Redis queue and run them on an engine."""
    from gpucloud.observability.tracing import Tracer
    from gpucloud.queue.factory import build_queue
    from gpucloud.worker.consent import EnginePolicy
    from gpucloud.worker.main import WorkerOptions, default_worker_id, parse_engine_options, run_worker

    settings = load_settings()
    if redis_url is not None:
        settings = settings.model_copy(update={"redis_url": SecretStr(redis_url)})
    if settings.redis_url is None:
        typer.echo("error: a worker needs the Redis queue: --redis-url or GPUCLOUD_REDIS_URL", err=True)
        raise typer.Exit(2)
    configure_logging(settings.log_level, settings.log_format)
    if not model and server is None:
        typer.echo(
            "error: give --model, or --server to serve the deployments a control plane assigns", err=True
        )
        raise typer.Exit(2)
    try:
        options = WorkerOptions(
            models=model or [],
            engine=engine,
            engine_options=parse_engine_options(engine_option or []),
            slots=slots,
            worker_id=worker_id,
            burst=burst,
            grace_s=grace,
            lease_timeout_s=settings.queue.lease_timeout_s,
            models_dir=(models_dir or settings.resolved_models_dir()).resolve(),
            source=source,
            policy=EnginePolicy.of(allow_command or [], allow_url or []),
        )
        worker_id = options.worker_id or default_worker_id()
        options = dataclasses.replace(options, worker_id=worker_id)
        control = _control_plane(settings, server, token, label or [], simulate_gpus, worker_id)
        tracer = Tracer(settings.otlp_endpoint, "gpucloud-worker")
        status = asyncio.run(run_worker(build_queue(settings), options, tracer, control))
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if status:
        typer.echo("error: the control plane refused this worker (see the log above)", err=True)
        raise typer.Exit(status)


def _control_plane(
    settings: Settings,
    server: str | None,
    token: str | None,
    labels: list[str],
    simulate_gpus: str | None,
    worker_id: str,
) -> ControlPlane | None:
    """The control-plane client for `gpucloud worker --server`, or None without --server."""
    from gpucloud.worker.control import ControlPlane
    from gpucloud.worker.inventory import GpuProbe, NvmlProbe, SimulatedProbe
    from gpucloud.worker.main import parse_engine_options

    if server is None:
        return None
    secret = token or (settings.worker_token.get_secret_value() if settings.worker_token else None)
    if not secret:
        raise ValueError("--server needs a worker token: --token or GPUCLOUD_WORKER_TOKEN")
    probe: GpuProbe | None = (
        SimulatedProbe.parse(simulate_gpus, seed=worker_id) if simulate_gpus else NvmlProbe.create()
    )
    parsed = parse_engine_options(labels, "--label")
    return ControlPlane(server, secret, labels=parsed, probe=probe)


@app.command()
def openapi() -> None:
    """Print the HTTP API's OpenAPI schema (for generated clients)."""
    from gpucloud.gateway.app import create_app

    api = create_app(Settings())
    typer.echo(json.dumps(api.openapi(), indent=2))


@db_app.command("upgrade")
def db_upgrade(data_dir: DataDir = None) -> None:
    """Apply database migrations up to the newest."""
    from gpucloud.db.migrate import upgrade

    settings = load_settings(data_dir)
    if settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.resolved_database_url())
    typer.echo("database is up to date")


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="A name to recognise the key by.")],
    role: Annotated[str, typer.Option(help="admin or user.")] = "user",
    expires_at: Annotated[
        datetime | None, typer.Option(help="Expiry (UTC), e.g. 2030-01-01T00:00:00.")
    ] = None,
    model: Annotated[list[str] | None, typer.Option(help="Allow only this model (repeatable).")] = None,
    priority: Annotated[str, typer.Option(help="Default queue class: high, normal, low.")] = "normal",
    max_priority: Annotated[str | None, typer.Option(help="Highest class the key may ask for.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Create an API key and print its secret (shown only this once)."""
    from datetime import UTC

    from gpucloud.keys import NewKey

    try:
        default, ceiling = Priority(priority), Priority(max_priority or priority)
    except ValueError:
        typer.echo("error: priorities are high, normal or low", err=True)
        raise typer.Exit(2) from None
    new = NewKey(
        name=name,
        role=role,
        expires_at=expires_at.replace(tzinfo=UTC) if expires_at and expires_at.tzinfo is None else expires_at,
        allowed_models=model or None,
        default_priority=default,
        max_priority=ceiling,
    )
    row, secret = _with_keys(load_settings(data_dir), lambda keys: keys.create(new))
    typer.echo(f"id:     {row.id}\nname:   {row.name}\nrole:   {row.role}\nkey:    {secret}")
    typer.echo("Store the key now: it cannot be shown again.", err=True)


@keys_app.command("list")
def keys_list(data_dir: DataDir = None) -> None:
    """List API keys (never their secrets)."""
    rows = _with_keys(load_settings(data_dir), lambda keys: keys.list())
    for row in rows:
        state = "revoked" if row.revoked_at else "active"
        typer.echo(f"{row.id}  {row.prefix}…  {row.role:<5}  {state:<7}  {row.name}")


@keys_app.command("revoke")
def keys_revoke(key_id: str, data_dir: DataDir = None) -> None:
    """Revoke an API key; requests with it get 401 from then on."""
    row = _with_keys(load_settings(data_dir), lambda keys: keys.revoke(key_id))
    typer.echo(f"revoked {row.id} ({row.name})")


@worker_tokens_app.command("create")
def worker_token_create(
    name: Annotated[str, typer.Option(help="A name to recognise the token by.")],
    data_dir: DataDir = None,
) -> None:
    """Create a worker token and print its secret (shown only this once)."""
    row, secret = _with_worker_tokens(load_settings(data_dir), lambda tokens: tokens.create(name))
    typer.echo(f"id:     {row.id}\nname:   {row.name}\ntoken:  {secret}")
    typer.echo("Store the token now: it cannot be shown again.", err=True)


@worker_tokens_app.command("list")
def worker_token_list(data_dir: DataDir = None) -> None:
    """List worker tokens (never their secrets)."""
    for row in _with_worker_tokens(load_settings(data_dir), lambda tokens: tokens.list()):
        state = "revoked" if row.revoked_at else "active"
        typer.echo(f"{row.id}  {row.prefix}…  {state:<7}  {row.name}")


@worker_tokens_app.command("revoke")
def worker_token_revoke(token_id: str, data_dir: DataDir = None) -> None:
    """Revoke a worker token; workers using it get 401 on their next heartbeat and exit."""
    row = _with_worker_tokens(load_settings(data_dir), lambda tokens: tokens.revoke(token_id))
    typer.echo(f"revoked {row.id} ({row.name})")


def main() -> None:
    try:
        app()
    except ValidationError as exc:  # bad settings: one line per mistake, exit 2, no traceback
        for error in exc.errors(include_input=False, include_url=False):
            where = "__".join(str(part) for part in error["loc"]).upper()
            message = str(error["msg"]).removeprefix("Value error, ")
            typer.echo(f"error: GPUCLOUD_{where}: {message}", err=True)
        raise SystemExit(2) from None
