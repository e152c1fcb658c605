"""`gpucloud worker`: the flags of a standalone worker, checked and turned into `WorkerOptions`
(and, with `--server`, a control-plane client); `gpucloud.worker.main` runs it.

Like every command it reads `Settings` once and applies its flags on top. The worker's modules are
imported inside the command, and no control-plane module at all: a `gpucloud worker` on a GPU
machine never loads SQLAlchemy, Alembic or the gateway.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import SecretStr

from gpucloud.cli.main import load_settings
from gpucloud.logs import configure_logging
from gpucloud.settings import Settings

if TYPE_CHECKING:
    from gpucloud.worker.control import ControlPlane
    from gpucloud.worker.main import WorkerOptions

Models = Annotated[
    list[str] | None, typer.Option(help="A model to serve (repeatable); with --server, deployments add more.")
]
RedisUrl = Annotated[str | None, typer.Option(help="Redis queue URL (default GPUCLOUD_REDIS_URL).")]
EngineKind = Annotated[str, typer.Option(help="Engine kind.")]
EngineOptions = Annotated[list[str] | None, typer.Option(help="Engine option KEY=VALUE (repeatable).")]
Slots = Annotated[int, typer.Option(min=1, help="Jobs run at once.")]
WorkerId = Annotated[str | None, typer.Option(help="Consumer name (default host-pid-random).")]
Burst = Annotated[bool, typer.Option(help="Drain the queue, then exit.")]
Grace = Annotated[float, typer.Option(help="Seconds running jobs get to finish on SIGTERM.")]
Server = Annotated[
    str | None, typer.Option(help="Control plane URL: register there and heartbeat (needs --token).")
]
Token = Annotated[
    str | None, typer.Option(help="Worker token gcw_… (default GPUCLOUD_WORKER_TOKEN).", show_default=False)
]
Labels = Annotated[list[str] | None, typer.Option(help="A label KEY=VALUE (repeatable).")]
SimulateGpus = Annotated[
    str | None, typer.Option(help="Simulated GPUs instead of NVML, e.g. 'H100:80,A10:24x2'.")
]
Source = Annotated[
    str | None, typer.Option(help="Weights of the --model engines: a path under the models dir or a hub id.")
]
ModelsDir = Annotated[
    Path | None,
    typer.Option(help="Where deployment sources live (default GPUCLOUD_MODELS_DIR or data_dir/models)."),
]
AllowCommand = Annotated[
    list[str] | None,
    typer.Option(help="Let deployments run this engine program or preset (shell pattern; repeatable)."),
]
AllowUrl = Annotated[
    list[str] | None,
    typer.Option(help="Let deployments attach to engine server URLs matching this (repeatable)."),
]


def worker(
    model: Models = None,
    redis_url: RedisUrl = None,
    engine: EngineKind = "simulated",
    engine_option: EngineOptions = None,
    slots: Slots = 8,
    worker_id: WorkerId = None,
    burst: Burst = False,
    grace: Grace = 10.0,
    server: Server = None,
    token: Token = None,
    label: Labels = None,
    simulate_gpus: SimulateGpus = None,
    source: Source = None,
    models_dir: ModelsDir = None,
    allow_command: AllowCommand = None,
    allow_url: AllowUrl = None,
) -> None:
    """Run a worker: lease jobs for MODEL from the Redis queue and run them on an engine."""
    from gpucloud.worker.consent import EnginePolicy
    from gpucloud.worker.main import WorkerOptions, default_worker_id, parse_engine_options

    settings = _worker_settings(redis_url, serves=bool(model) or server is not None)
    with _usage_errors():
        options = WorkerOptions(
            models=model or [],
            engine=engine,
            engine_options=parse_engine_options(engine_option or []),
            slots=slots,
            worker_id=worker_id or default_worker_id(),
            burst=burst,
            grace_s=grace,
            lease_timeout_s=settings.queue.lease_timeout_s,
            models_dir=(models_dir or settings.resolved_models_dir()).resolve(),
            source=source,
            policy=EnginePolicy.of(allow_command or [], allow_url or []),
        )
        control = _control_plane(settings, server, token, label or [], simulate_gpus, options)
    _run(settings, options, control)


def _worker_settings(redis_url: str | None, *, serves: bool) -> Settings:
    """The settings with --redis-url on top; exits 2 without a queue or without anything to serve."""
    settings = load_settings()
    if redis_url is not None:
        settings = settings.model_copy(update={"redis_url": SecretStr(redis_url)})
    if settings.redis_url is None:
        typer.echo("error: a worker needs the Redis queue: --redis-url or GPUCLOUD_REDIS_URL", err=True)
        raise typer.Exit(2)
    configure_logging(settings.log_level, settings.log_format)
    if not serves:
        typer.echo(
            "error: give --model, or --server to serve the deployments a control plane assigns", err=True
        )
        raise typer.Exit(2)
    return settings


@contextmanager
def _usage_errors() -> Iterator[None]:
    """A ValueError (a bad flag, an engine that refuses its options) is one line and exit status 2."""
    try:
        yield
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _run(settings: Settings, options: WorkerOptions, control: ControlPlane | None) -> None:
    from gpucloud.observability.tracing import Tracer
    from gpucloud.queue.factory import build_queue
    from gpucloud.worker.main import run_worker

    with _usage_errors():
        tracer = Tracer(settings.otlp_endpoint, "gpucloud-worker")
        status = asyncio.run(run_worker(build_queue(settings), options, tracer, control))
    if status:
        typer.echo("error: the control plane refused this worker (see the log above)", err=True)
        raise typer.Exit(status)


def _control_plane(
    settings: Settings,
    server: str | None,
    token: str | None,
    labels: list[str],
    simulate_gpus: str | None,
    options: WorkerOptions,
) -> ControlPlane | None:
    """The control-plane client for `gpucloud worker --server`, or None without --server."""
    from gpucloud.worker.control import ControlPlane
    from gpucloud.worker.inventory import GpuProbe
    from gpucloud.worker.main import parse_engine_options
    from gpucloud.worker.nvml import NvmlProbe
    from gpucloud.worker.simulated_gpus import SimulatedProbe

    if server is None:
        return None
    secret = token or (settings.worker_token.get_secret_value() if settings.worker_token else None)
    if not secret:
        raise ValueError("--server needs a worker token: --token or GPUCLOUD_WORKER_TOKEN")
    probe: GpuProbe | None = (
        SimulatedProbe.parse(simulate_gpus, seed=options.worker_id or "")
        if simulate_gpus
        else NvmlProbe.create()
    )
    parsed = parse_engine_options(labels, "--label")
    return ControlPlane(server, secret, labels=parsed, probe=probe)
