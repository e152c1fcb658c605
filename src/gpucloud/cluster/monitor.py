"""`WorkerMonitor`: notices silent workers. Every gateway runs one; only the holder of the
`worker-monitor` lease on the queue acts, so state changes are written (and logged) once. After
the health rule the leader runs the deployment controller's step (`then`), so replicas move off
a worker in the same round that finds it offline."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.exc import SQLAlchemyError

from gpucloud.background import Background
from gpucloud.cluster.directory import Transition, WorkerDirectory
from gpucloud.queue.protocol import Leadership, QueueError

log = logging.getLogger(__name__)


class WorkerMonitor:
    def __init__(
        self,
        directory: WorkerDirectory,
        queue: Leadership,
        holder: str,
        *,
        every_s: float,
        then: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._directory = directory
        self._then = then  # run by the leader after the health rule (the deployment controller)
        self._queue = queue
        self._holder = holder
        self._every_s = every_s
        self._loop = Background("worker-monitor", self._run)
        self.leading = False

    async def start(self) -> None:
        self._loop.start()

    async def close(self) -> None:
        await self._loop.close()

    async def step(self) -> list[Transition]:
        """One round: take or keep the lease, and if held apply the health rule."""
        # The lease outlives three rounds, so one slow round does not hand it over.
        self.leading = await self._queue.lead("worker-monitor", self._holder, max(self._every_s * 3, 1.0))
        if not self.leading:
            return []
        changes = await self._directory.apply_health()
        if self._then is not None:
            await self._then()
        return changes

    async def _run(self) -> None:
        while True:
            try:
                await self.step()
            except QueueError as exc:
                log.warning("worker monitor: queue unavailable: %s", exc)
                self.leading = False
            except SQLAlchemyError as exc:
                log.warning("worker monitor: database unavailable: %s", type(exc).__name__)
            await asyncio.sleep(self._every_s)
