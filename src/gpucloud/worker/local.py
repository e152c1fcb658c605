"""`LocalControl`: the embedded worker's control plane, in-process.

The worker `gpucloud serve` runs by itself (embedded mode) takes part in deployments like any
other: it registers in the workers table, beats, and holds the replicas the controller places on
it. It does so by calling the directory and the deployment store directly instead of over HTTP
(no token: it is the control plane's own process). It beats every second, whatever the fleet's
interval, so a deployment created on a laptop is loading within a second or two.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from gpucloud.background import Background
from gpucloud.cluster.directory import Beat, Registration, WorkerDirectory
from gpucloud.db import Deployment, DeploymentReplica
from gpucloud.deployments import DeploymentStore, ReplicaReport
from gpucloud.gateway.views.deployments import assignment_view
from gpucloud.worker.agent import WorkerAgent
from gpucloud.worker.inventory import GpuProbe, read_gpus, read_host

log = logging.getLogger(__name__)

LOCAL_BEAT_S = 1.0


class LocalControl:
    def __init__(
        self,
        agent: WorkerAgent,
        directory: WorkerDirectory,
        deployments: DeploymentStore,
        *,
        probe: GpuProbe | None = None,
        every_s: float = LOCAL_BEAT_S,
    ) -> None:
        self._agent = agent
        self._directory = directory
        self._deployments = deployments
        self._probe = probe
        self._every_s = every_s
        self._last_tokens = 0
        self._last_at = time.monotonic()
        self._loop = Background("local-worker-control", self._run)

    async def start(self) -> None:
        host = read_host(None)
        registration = Registration(
            worker_id=self._agent.worker_id,
            hostname=host.hostname,
            labels={"local": "true"},
            cpu_count=host.cpu_count,
            memory_total_bytes=host.memory_total_bytes,
            memory_available_bytes=host.memory_available_bytes,
            gpus=self._gpus(),
            models=self._agent.models,
            slots=self._agent.slots,
        )
        await self._directory.register(registration, token_id=None)
        self._assign(await self._deployments.replicas_of_worker(self._agent.worker_id))
        self._loop.start()

    async def close(self) -> None:
        await self._loop.close()
        if self._probe is not None:
            self._probe.close()

    async def beat(self) -> None:
        now = time.monotonic()
        elapsed, self._last_at = now - self._last_at, now
        tokens, self._last_tokens = self._agent.tokens_total - self._last_tokens, self._agent.tokens_total
        reports = await self._agent.replica_reports()
        beat = Beat(
            running=self._agent.running,
            queued=0,
            tokens_per_s=round(tokens / elapsed, 3) if elapsed > 0 else 0.0,
            gpus=self._gpus(),
            replicas=reports,
            engines=await self._agent.engine_loads(),
        )
        row = await self._directory.heartbeat(self._agent.worker_id, beat)
        held = await self._deployments.apply_reports(
            self._agent.worker_id, [ReplicaReport.from_dict(r) for r in reports]
        )
        if row.draining:
            self._agent.drain()
        else:
            self._agent.undrain()
        self._assign(held)

    def _assign(self, held: Sequence[tuple[DeploymentReplica, Deployment]]) -> None:
        # The same orders the HTTP control plane sends a remote worker, as the JSON it would decode.
        orders = [assignment_view(replica, deployment).model_dump() for replica, deployment in held]
        self._agent.apply_assignments(orders)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._every_s)
            try:
                await self.beat()
            except SQLAlchemyError as exc:
                log.warning("local worker: heartbeat failed: %s", type(exc).__name__)

    def _gpus(self) -> list[dict[str, Any]]:
        return read_gpus(self._probe)
