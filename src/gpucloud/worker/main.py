"""`gpucloud worker`: a standalone worker process for cluster mode.

It connects to the Redis queue, loads one engine per `--model`, and leases jobs until SIGTERM or
SIGINT, on which it drains (running jobs finish within the grace period, the rest go back to the
queue). With `burst` it drains the queue and exits, which makes tests and batch runs deterministic.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gpucloud.engines import build_engine
from gpucloud.engines.protocol import Engine
from gpucloud.observability.tracing import Tracer
from gpucloud.queue.protocol import JobQueue
from gpucloud.worker.agent import WorkerAgent

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


def parse_engine_options(pairs: Sequence[str]) -> dict[str, str]:
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--engine-option takes KEY=VALUE, got {pair!r}")
        options[key.strip()] = value
    return options


def build_engines(options: WorkerOptions) -> dict[str, Engine]:
    return {m: build_engine(options.engine, m, dict(options.engine_options or {})) for m in options.models}


async def run_worker(queue: JobQueue, options: WorkerOptions, tracer: Tracer | None = None) -> None:
    agent = WorkerAgent(
        queue,
        build_engines(options),
        worker_id=options.worker_id or default_worker_id(),
        slots=options.slots,
        lease_timeout_s=options.lease_timeout_s,
        tracer=tracer,
    )
    await queue.start()
    try:
        if options.burst:
            await agent.run_burst()
            return
        await agent.start()
        log.info(
            "worker %s serving %s with %d slots", agent.worker_id, ", ".join(agent.models), options.slots
        )
        await _until_signal()
        log.info("worker %s draining (grace %.0fs)", agent.worker_id, options.grace_s)
        await agent.stop(grace_s=options.grace_s)
    finally:
        await queue.close()
        if tracer is not None:
            tracer.shutdown()


async def _until_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
