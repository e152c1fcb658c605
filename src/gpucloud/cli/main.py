"""Command definitions (typer)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from pydantic import ValidationError

from gpucloud.cli.users import users_app
from gpucloud.errors import GpucloudError
from gpucloud.queue.protocol import Priority
from gpucloud.settings import Settings

if TYPE_CHECKING:
    # The control plane's modules (database, keys) are imported by the commands that use them: a
    # `gpucloud worker` on a GPU machine never loads SQLAlchemy, Alembic or the gateway.
    from gpucloud.cluster.tokens import WorkerTokenService
    from gpucloud.db import Database
    from gpucloud.keys import KeyService

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
    from gpucloud.keycache import key_changes
    from gpucloud.keys import KeyService

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
