"""`LocalControl`: the embedded worker's control plane, in-process.

The worker `gpucloud serve` runs by itself (embedded mode) takes part in deployments like any
other: it registers in the workers table, beats, and holds the replicas the controller places on
it. It does so by calling the directory and the deployment store directly instead of over HTTP
(no token: it is the control plane's own process), with the same bodies a remote worker sends
(`worker.reports`, `gpucloud.wire`). It beats every second, whatever the fleet's
interval, so a deployment created on a laptop is loading within a second or two.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from sqlalchemy.exc import SQLAlchemyError

from gpucloud.background import Background
from gpucloud.cluster.directory import WorkerDirectory
from gpucloud.db import Deployment, DeploymentReplica
from gpucloud.deployments import DeploymentStore, ReplicaReport
from gpucloud.gateway.views.deployments import assignment_view
from gpucloud.worker.agent import WorkerAgent
from gpucloud.worker.inventory import GpuProbe
from gpucloud.worker.reports import TokenRate, heartbeat, registration

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
        self._rate = TokenRate()
        self._loop = Background("local-worker-control", self._run)

    async def start(self) -> None:
        body = registration(self._agent, {"local": "true"}, self._probe)
        await self._directory.register(body, token_id=None)
        self._assign(await self._deployments.replicas_of_worker(self._agent.worker_id))
        self._loop.start()

    async def close(self) -> None:
        await self._loop.close()
        if self._probe is not None:
            self._probe.close()

    async def beat(self) -> None:
        beat = await heartbeat(self._agent, self._rate, self._probe)
        row = await self._directory.heartbeat(self._agent.worker_id, beat)
        held = await self._deployments.apply_reports(
            self._agent.worker_id, [ReplicaReport.from_wire(r) for r in beat.replicas]
        )
        if row.draining:
            self._agent.drain()
        else:
            self._agent.undrain()
        self._assign(held)

    def _assign(self, held: Sequence[tuple[DeploymentReplica, Deployment]]) -> None:
        # The same orders the HTTP control plane sends a remote worker.
        self._agent.apply_assignments([assignment_view(replica, deployment) for replica, deployment in held])

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._every_s)
            try:
                await self.beat()
            except SQLAlchemyError as exc:
                log.warning("local worker: heartbeat failed: %s", type(exc).__name__)
