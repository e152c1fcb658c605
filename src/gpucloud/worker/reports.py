"""What a worker tells the control plane, as the worker API's bodies (`gpucloud.wire`): its
registration and each heartbeat. A remote worker sends them over HTTP (`worker.control`), the
embedded one hands them over in-process (`worker.local`); both build them here, so the two say
the same things.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from gpucloud.wire import HeartbeatIn, RegisterIn
from gpucloud.worker.agent import WorkerAgent
from gpucloud.worker.inventory import GpuProbe, read_gpus, read_host


class TokenRate:
    """Tokens per second since the previous beat (the first beat counts from creation)."""

    def __init__(self) -> None:
        self._last_tokens = 0
        self._last_at = time.monotonic()

    def __call__(self, tokens_total: int) -> float:
        now = time.monotonic()
        elapsed, self._last_at = now - self._last_at, now
        tokens, self._last_tokens = tokens_total - self._last_tokens, tokens_total
        return round(tokens / elapsed, 3) if elapsed > 0 else 0.0


def registration(agent: WorkerAgent, labels: Mapping[str, str], probe: GpuProbe | None) -> RegisterIn:
    """The agent's registration: this host, the probe's GPUs, the models it serves, its slots.
    Raises pydantic's ValidationError (a ValueError) when a reading breaks the API's limits."""
    host = read_host(None)  # its GPUs come from `read_gpus`, which tolerates a failing probe
    return RegisterIn(
        worker_id=agent.worker_id,
        hostname=host.hostname,
        labels=dict(labels),
        cpu_count=host.cpu_count,
        memory_total_bytes=host.memory_total_bytes,
        memory_available_bytes=host.memory_available_bytes,
        gpus=read_gpus(probe),
        models=agent.models,
        slots=agent.slots,
    )


async def heartbeat(agent: WorkerAgent, rate: TokenRate, probe: GpuProbe | None) -> HeartbeatIn:
    """One beat: the agent's load, fresh GPU readings, its replicas' states and engines' loads.
    Raises pydantic's ValidationError (a ValueError) when a reading breaks the API's limits."""
    return HeartbeatIn(
        running=agent.running,
        queued=0,  # the agent leases only what it can run at once: nothing waits on it
        tokens_per_s=rate(agent.tokens_total),
        gpus=read_gpus(probe),
        replicas=await agent.replica_reports(),
        engines=await agent.engine_loads(),
    )
