"""`gpucloud worker`: a standalone worker process for cluster mode.

It connects to the Redis queue, loads one engine per `--model`, and leases jobs until SIGTERM or
SIGINT, on which it drains (running jobs finish within the grace period, the rest go back to the
queue). With `burst` it drains the queue and exits, which makes tests and batch runs deterministic.

With a control plane (`--server URL --token gcw_…`) it first registers there with its inventory,
then heartbeats in the background (`worker/control.py`); an operator's drain arrives in the
heartbeat's answer. A rejected token (401) ends the process with status 2, at start or later
(a revoked token): running jobs get the grace period, as on SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import uuid
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gpucloud.background import close_within
from gpucloud.engines import build_engine
from gpucloud.engines.protocol import Engine
from gpucloud.observability.tracing import Tracer
from gpucloud.queue.protocol import JobQueue
from gpucloud.worker.agent import WorkerAgent
from gpucloud.worker.assignment import Assignment
from gpucloud.worker.consent import EnginePolicy
from gpucloud.worker.control import ControlPlane, Refused
from gpucloud.worker.inventory import GpuProbe, InventoryError
from gpucloud.worker.replicas import ReplicaSet
from gpucloud.worker.simulated_gpus import SimulatedProbe

log = logging.getLogger(__name__)
# A part that takes longer to close at exit is abandoned, logged with where it hangs (and the
# jobs get this much beyond their grace).
_CLOSE_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    models: Sequence[str]
    engine: str = "simulated"
    engine_options: Mapping[str, str] | None = None
    slots: int = 8
    worker_id: str | None = None
    burst: bool = False
    grace_s: float = 10.0
    lease_timeout_s: float = 15.0
    models_dir: Path | None = None  # where deployment sources live on this machine
    source: str | None = None  # weights of the --model engines (path under models_dir or hub id)
    policy: EnginePolicy = field(default_factory=EnginePolicy)  # what deployments may run here


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def parse_engine_options(pairs: Sequence[str], flag: str = "--engine-option") -> dict[str, str]:
    """KEY=VALUE pairs (--engine-option, --label) as a dict; ValueError naming `flag` otherwise."""
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"{flag} takes KEY=VALUE, got {pair!r}")
        options[key.strip()] = value
    return options


def build_engines(options: WorkerOptions) -> dict[str, Engine]:
    return {
        m: build_engine(
            options.engine,
            m,
            dict(options.engine_options or {}),
            source=options.source,
            models_dir=options.models_dir,
        )
        for m in options.models
    }


def placed_options(a: Assignment, index_of: Mapping[str, int]) -> dict[str, str]:
    """The engine options that pin a replica to the GPUs the scheduler gave it (unless the
    deployment says otherwise): an in-process engine gets its device, an engine server child the
    CUDA_VISIBLE_DEVICES of its GPUs."""
    options = dict(a.engine_options)
    indexes = [index_of[u] for u in a.gpu_uuids if u in index_of]
    if not indexes:
        return options
    if a.engine in ("transformers", "sentence-transformers"):
        options.setdefault("device", f"cuda:{indexes[0]}")
    elif a.engine == "openai" and "url" not in options:
        options.setdefault("cuda_visible_devices", ",".join(a.gpu_uuids))
    return options


def build_replicas(
    models_dir: Path | None, probe: GpuProbe | None, policy: EnginePolicy | None = None
) -> ReplicaSet:
    """The deployment replicas of a worker that has a control plane: engines built from what the
    control plane assigns and `policy` allows (default: presets only), GPU memory accounted
    against the probe's totals."""
    allowed = policy or EnginePolicy()
    totals: dict[str, float] = {}
    index_of: dict[str, int] = {}
    if probe is not None:
        try:
            for gpu in probe.read():
                totals[gpu.uuid] = gpu.memory_total_bytes / 1e9
                index_of[gpu.uuid] = gpu.index
        except InventoryError as exc:
            log.warning("GPU inventory unavailable: %s; GPU memory is not accounted", exc)
    real_gpus = probe is not None and not isinstance(probe, SimulatedProbe)

    def build(a: Assignment) -> Engine:
        allowed.check(a.engine, a.engine_options)
        options = placed_options(a, index_of) if real_gpus else dict(a.engine_options)
        return build_engine(a.engine, a.name, options, source=a.source, models_dir=models_dir)

    def on_memory(used_gb: Mapping[str, float]) -> None:
        # Simulated GPUs show what the replicas hold; real GPUs report what NVML measures.
        if isinstance(probe, SimulatedProbe):
            for uuid, index in index_of.items():
                total = int(totals[uuid] * 1e9)
                probe.set_used(index, min(total, int(used_gb.get(uuid, 0.0) * 1e9)))

    return ReplicaSet(build, gpu_total_gb=totals, on_memory=on_memory)


async def run_worker(
    queue: JobQueue,
    options: WorkerOptions,
    tracer: Tracer | None = None,
    control: ControlPlane | None = None,
) -> int:
    """Run until a signal (or, in burst mode, an empty queue); returns the exit status."""
    agent = WorkerAgent(
        queue,
        build_engines(options),
        worker_id=options.worker_id or default_worker_id(),
        slots=options.slots,
        lease_timeout_s=options.lease_timeout_s,
        tracer=tracer,
        replicas=(
            build_replicas(options.models_dir, control.probe, options.policy) if control is not None else None
        ),
    )
    stop = _stop_on_signal()
    await queue.start()
    try:
        if control is not None and not await _first(control.register(agent), stop):
            return 0  # stopped while the control plane was still unreachable
        if options.burst:
            await agent.run_burst()
            return 0
        return await _serve(agent, options, control, stop)
    except Refused as exc:
        log.error("worker %s: %s", agent.worker_id, exc)
        return 2
    finally:
        if control is not None:
            await close_within("the control plane's connection", control.close, _CLOSE_TIMEOUT_S)
        await close_within("the queue", queue.close, _CLOSE_TIMEOUT_S)
        if tracer is not None:
            tracer.shutdown()


async def _serve(
    agent: WorkerAgent, options: WorkerOptions, control: ControlPlane | None, stop: asyncio.Event
) -> int:
    """Lease jobs until a signal (or the control plane's refusal), then drain; the exit status."""
    await agent.start()
    log.info(
        "worker %s serving %s with %d slots",
        agent.worker_id,
        ", ".join(agent.models) or "deployments only",
        options.slots,
    )
    status = 0 if control is None else await _beat_until(control, agent, stop)
    if control is None:
        await stop.wait()
    log.info("worker %s draining (grace %.0fs)", agent.worker_id, options.grace_s)
    await close_within(
        "the jobs", lambda: agent.stop(grace_s=options.grace_s), options.grace_s + _CLOSE_TIMEOUT_S
    )
    if control is not None and status == 0:
        await control.final_heartbeat(agent)
    return status


async def _first(work: Awaitable[object], stop: asyncio.Event) -> bool:
    """Run `work` unless `stop` is set first; True when `work` finished (its errors propagate)."""
    task = asyncio.ensure_future(work)
    stopper = asyncio.ensure_future(stop.wait())
    await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    if not task.done():
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return False
    task.result()
    return True


async def _beat_until(control: ControlPlane, agent: WorkerAgent, stop: asyncio.Event) -> int:
    """Heartbeat until a signal (0) or until the control plane refuses the worker (2)."""
    try:
        await _first(control.run(agent), stop)
    except Refused as exc:
        log.error("worker %s: %s; stopping", agent.worker_id, exc)
        return 2
    return 0


def _stop_on_signal() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop
