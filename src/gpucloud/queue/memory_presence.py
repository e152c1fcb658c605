"""`MemoryPresence`: the presence and leadership roles of the in-process queue, and its epoch.

Which workers announced themselves (until their announcement expires), the models ever served,
who holds each leader-only role, and the id of this process's queue state (gone with the process,
so the reconciler re-enqueues recorded jobs after a restart). The in-process counterpart of
`queue/redis/presence.py`; `MemoryJobQueue` inherits it.
"""

from __future__ import annotations

import time
import uuid

from gpucloud.queue.messages import WorkerInfo


class MemoryPresence:
    """`Presence` and `Leadership` in one process, plus `epoch` (see module docstring)."""

    def __init__(self) -> None:
        self._workers: dict[str, tuple[WorkerInfo, float]] = {}  # worker_id → (info, expires_at)
        self._models_seen: dict[str, float] = {}
        self._epoch = uuid.uuid4().hex  # this process's queue: gone with it
        self._leases: dict[str, tuple[str, float]] = {}  # role → (holder, expires_at)

    async def epoch(self) -> str:
        return self._epoch

    async def lead(self, role: str, holder: str, ttl_s: float) -> bool:
        now = time.monotonic()
        current = self._leases.get(role)
        if current is None or current[0] == holder or current[1] <= now:
            self._leases[role] = (holder, now + ttl_s)
            return True
        return False

    async def announce(self, worker: WorkerInfo, ttl_s: float) -> None:
        self._workers[worker.worker_id] = (worker, time.monotonic() + ttl_s)
        for model in worker.models:
            self._models_seen[model] = worker.at or time.time()

    async def withdraw(self, worker_id: str) -> None:
        self._workers.pop(worker_id, None)

    async def workers(self) -> list[WorkerInfo]:
        now = time.monotonic()
        return [info for info, expires in self._workers.values() if expires > now]

    async def known_models(self) -> dict[str, float]:
        return dict(self._models_seen)

    async def forget_model(self, model: str) -> None:
        self._models_seen.pop(model, None)
