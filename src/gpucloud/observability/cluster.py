"""`ClusterGauges`: the cluster-wide gauges, refreshed by whichever gateway holds the lease.

Every few seconds each gateway tries to take or keep the `metrics` lease on the queue; the holder
fills queue depth and worker gauges from the queue, worker states and per-GPU readings from the
workers table (`fleet`) and replica states from the deployments (`replicas`), the others clear
theirs (see `metrics`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence

from sqlalchemy.exc import SQLAlchemyError

from gpucloud.background import Background
from gpucloud.cluster.health import WorkerState
from gpucloud.cluster.views import gpus_of
from gpucloud.db import WorkerNode
from gpucloud.observability.metrics import Metrics
from gpucloud.queue.protocol import JobQueue, QueueError

log = logging.getLogger(__name__)


class ClusterGauges:
    def __init__(
        self,
        metrics: Metrics,
        queue: JobQueue,
        holder: str,
        *,
        every_s: float = 5.0,
        fleet: Callable[[], Awaitable[Sequence[WorkerNode]]] | None = None,
        replicas: Callable[[], Awaitable[Mapping[tuple[str, str], int]]] | None = None,
    ) -> None:
        self._metrics = metrics
        self._fleet = fleet
        self._replicas = replicas  # (deployment, replica state) -> count
        self._queue = queue
        self._holder = holder
        self._every_s = every_s
        self._loop = Background("cluster-gauges", self._run)
        self.leading = False

    async def start(self) -> None:
        self._loop.start()

    async def close(self) -> None:
        await self._loop.close()

    async def _run(self) -> None:
        while True:
            try:
                await self.refresh()
            except QueueError as exc:
                log.warning("cluster gauges: queue unavailable: %s", exc)
                self.leading = False
                self._metrics.clear_cluster_gauges()
            await asyncio.sleep(self._every_s)

    async def refresh(self) -> None:
        # The lease outlives three refreshes, so one slow refresh does not hand it over.
        self.leading = await self._queue.lead("metrics", self._holder, self._every_s * 3)
        m = self._metrics
        if not self.leading:
            m.clear_cluster_gauges()
            return
        workers = await self._queue.workers()
        m.clear_cluster_gauges()
        m.workers.labels(state="live").set(len(workers))
        per_model: dict[str, int] = {}
        for worker in workers:
            m.worker_slots.labels(worker=worker.worker_id).set(worker.slots)
            m.worker_running.labels(worker=worker.worker_id).set(worker.running)
            for model, running in worker.running_by_model.items():
                m.replica_running.labels(worker=worker.worker_id, model=model).set(running)
            for model in worker.models:
                per_model[model] = per_model.get(model, 0) + 1
        for model in set(per_model) | set(await self._queue.known_models()):
            m.model_workers.labels(model=model).set(per_model.get(model, 0))
            for priority, depth in (await self._queue.depth(model)).items():
                m.queue_depth.labels(model=model, priority=priority.value).set(depth)
        await self._refresh_fleet()

    async def _refresh_fleet(self) -> None:
        if self._fleet is None:
            return
        try:
            rows = await self._fleet()
            counts = await self._replicas() if self._replicas is not None else {}
        except SQLAlchemyError as exc:
            log.warning("cluster gauges: database unavailable: %s", type(exc).__name__)
            return
        m = self._metrics
        for (deployment, state), count in counts.items():
            m.deployment_replicas.labels(deployment=deployment, state=state).set(count)
        for state in WorkerState:
            m.workers.labels(state=state.value).set(sum(1 for r in rows if r.state == state.value))
        # An offline worker's last readings are stale: its GPUs leave the gauges.
        for worker_id, gpu in gpus_of(r for r in rows if r.state != WorkerState.OFFLINE.value):
            labels = {"worker": worker_id, "gpu": str(gpu["index"])}
            m.gpu_memory_used.labels(**labels).set(gpu["memory_used_bytes"] or 0)
            m.gpu_memory_total.labels(**labels).set(gpu["memory_total_bytes"] or 0)
            for gauge, value in (
                (m.gpu_utilization, gpu["utilization"]),
                (m.gpu_temperature, gpu["temperature_c"]),
                (m.gpu_power, gpu["power_w"]),
            ):
                if value is not None:  # a reading the device does not give is absent, not 0
                    gauge.labels(**labels).set(value)
