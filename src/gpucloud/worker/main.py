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
from dataclasses import dataclass

from gpucloud.engines import build_engine
from gpucloud.engines.protocol import Engine
from gpucloud.observability.tracing import Tracer
from gpucloud.queue.protocol import JobQueue
from gpucloud.worker.agent import WorkerAgent
from gpucloud.worker.control import ControlPlane, Refused

log = logging.getLogger(__name__)


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
    return {m: build_engine(options.engine, m, dict(options.engine_options or {})) for m in options.models}


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
    )
    stop = _stop_on_signal()
    await queue.start()
    try:
        if control is not None and not await _first(control.register(agent), stop):
            return 0  # stopped while the control plane was still unreachable
        if options.burst:
            await agent.run_burst()
            return 0
        await agent.start()
        log.info(
            "worker %s serving %s with %d slots", agent.worker_id, ", ".join(agent.models), options.slots
        )
        status = 0 if control is None else await _beat_until(control, agent, stop)
        if control is None:
            await stop.wait()
        log.info("worker %s draining (grace %.0fs)", agent.worker_id, options.grace_s)
        await agent.stop(grace_s=options.grace_s)
        if control is not None and status == 0:
            await control.final_heartbeat(agent)
        return status
    except Refused as exc:
        log.error("worker %s: %s", agent.worker_id, exc)
        return 2
    finally:
        if control is not None:
            await control.close()
        await queue.close()
        if tracer is not None:
            tracer.shutdown()


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
