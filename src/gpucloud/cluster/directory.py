"""`WorkerDirectory`: the workers table — registration, heartbeats, drain, health, the views.

Registration upserts a worker by the id it chose (`--worker-id`), so a restarted worker takes up
its row again; the id stays bound to the token that registered it (`cluster.sessions`).
Heartbeats refresh its load and GPU readings and count the run of consecutive beats; the
heartbeat applies the health rule at once, so recovery does not wait for the monitor, while
silence is noticed by the `WorkerMonitor`. All times are the control plane's clock. Both take
the worker API's bodies (`wire.RegisterIn`, `wire.HeartbeatIn`) as they are, over HTTP and from
the embedded worker alike; the `inventory` and `load` columns hold their JSON.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from gpucloud.cluster.health import HealthPolicy, WorkerState, beats_after, next_state, transition_reason
from gpucloud.cluster.sessions import WorkerCredential, check_heartbeat, check_registration
from gpucloud.db import Database, WorkerNode, WorkerToken
from gpucloud.db.models import utcnow
from gpucloud.errors import NotFound
from gpucloud.wire import HeartbeatIn, RegisterIn

log = logging.getLogger(__name__)


def _inventory(reg: RegisterIn) -> dict[str, Any]:
    """The `inventory` column: the host and its GPUs, as the registration reported them."""
    return {
        "hostname": reg.hostname,
        "cpu_count": reg.cpu_count,
        "memory_total_bytes": reg.memory_total_bytes,
        "memory_available_bytes": reg.memory_available_bytes,
        "gpus": [gpu.model_dump() for gpu in reg.gpus],
    }


def _load(beat: HeartbeatIn) -> dict[str, Any]:
    """The `load` column: the last beat's load, replicas and the fixed engines' load readings."""
    return {
        "running": beat.running,
        "queued": beat.queued,
        "tokens_per_s": beat.tokens_per_s,
        "replicas": [r.model_dump() for r in beat.replicas],
        "engines": {model: dict(load) for model, load in beat.engines.items()},
    }


@dataclass(frozen=True, slots=True)
class Transition:
    worker_id: str
    old: WorkerState
    new: WorkerState
    reason: str


def _log(transition: Transition) -> None:
    log.info(
        "worker %s: %s -> %s (%s)",
        transition.worker_id,
        transition.old.value,
        transition.new.value,
        transition.reason,
        extra={"worker_id": transition.worker_id, "from_state": transition.old.value},
    )


class WorkerDirectory:
    def __init__(self, db: Database, policy: HealthPolicy) -> None:
        self._db = db
        self.policy = policy

    async def register(
        self, reg: RegisterIn, token_id: str | None, session_digest: str | None = None
    ) -> WorkerNode:
        """Create or take up the worker's row. A returning worker keeps its state and drain flag:
        it must beat `recover_beats` times to be healthy again, and an operator's drain holds.
        `token_id` None is the embedded worker (in-process); otherwise the id must be free or
        this token's (409 `worker_id_taken`), and `session_digest` becomes its only session."""
        now = utcnow()
        values: dict[str, Any] = {
            "hostname": reg.hostname,
            "labels": dict(reg.labels),
            "inventory": _inventory(reg),
            "models": list(reg.models),
            "slots": reg.slots,
            "last_heartbeat_at": now,
            "consecutive_beats": 1,
            "token_id": token_id,
            "session_digest": session_digest,
        }
        try:
            await self._upsert(reg.worker_id, values, now)
        except IntegrityError:  # registered concurrently under the same id: the row exists now
            await self._upsert(reg.worker_id, values, now)
        log.info("worker %s registered from %s (%d GPUs)", reg.worker_id, reg.hostname, len(reg.gpus))
        return await self.get(reg.worker_id)

    async def _upsert(self, worker_id: str, values: dict[str, Any], now: datetime) -> None:
        owners = (
            select(WorkerNode.token_id, WorkerToken.revoked_at)
            .select_from(WorkerNode)
            .outerjoin(WorkerToken, WorkerToken.id == WorkerNode.token_id)
            .where(WorkerNode.id == worker_id)
        )
        async with self._db.transaction() as connection:
            held = (await connection.execute(owners)).first()
            if held is not None:
                check_registration(worker_id, held.token_id, held.revoked_at is None, values["token_id"])
            found = await connection.execute(
                update(WorkerNode).where(WorkerNode.id == worker_id).values(**values)
            )
            if found.rowcount == 0:
                await connection.execute(
                    insert(WorkerNode).values(
                        id=worker_id,
                        state=WorkerState.HEALTHY.value,
                        draining=False,
                        registered_at=now,
                        **values,
                    )
                )

    async def heartbeat(
        self, worker_id: str, beat: HeartbeatIn, credential: WorkerCredential | None = None
    ) -> WorkerNode:
        """Record a beat; NotFound for a worker that never registered (it registers again).
        Over HTTP `credential` must own the worker's current session (`cluster.sessions`); the
        embedded worker beats in-process without one."""
        now = utcnow()
        async with self._db.transaction() as connection:
            row = (
                await connection.execute(select(WorkerNode.__table__).where(WorkerNode.id == worker_id))
            ).first()
            if row is None:
                raise NotFound(f"No worker with id {worker_id!r}; register first.", code="worker_not_found")
            if credential is not None:
                check_heartbeat(worker_id, row.token_id, row.session_digest, credential)
            gap = (now - row.last_heartbeat_at).total_seconds()
            beats = beats_after(row.consecutive_beats, gap, self.policy)
            old = WorkerState(row.state)
            new = next_state(old, 0.0, beats, self.policy)
            inventory = dict(row.inventory)
            inventory["gpus"] = [gpu.model_dump() for gpu in beat.gpus]
            await connection.execute(
                update(WorkerNode)
                .where(WorkerNode.id == worker_id)
                .values(
                    last_heartbeat_at=now,
                    consecutive_beats=beats,
                    state=new.value,
                    load=_load(beat),
                    inventory=inventory,
                )
            )
        if new is not old:
            _log(Transition(worker_id, old, new, transition_reason(old, new, gap, beats)))
        return await self.get(worker_id)

    async def set_draining(self, worker_id: str, draining: bool) -> WorkerNode:
        async with self._db.transaction() as connection:
            result = await connection.execute(
                update(WorkerNode).where(WorkerNode.id == worker_id).values(draining=draining)
            )
        if result.rowcount == 0:
            raise NotFound(f"No worker with id {worker_id!r}.", code="worker_not_found")
        log.info("worker %s: %s", worker_id, "draining" if draining else "drain lifted")
        return await self.get(worker_id)

    async def get(self, worker_id: str) -> WorkerNode:
        async with self._db.session() as session:
            row = await session.get(WorkerNode, worker_id)
        if row is None:
            raise NotFound(f"No worker with id {worker_id!r}.", code="worker_not_found")
        return row

    async def list_workers(self) -> list[WorkerNode]:
        async with self._db.session() as session:
            return list((await session.execute(select(WorkerNode).order_by(WorkerNode.id))).scalars())

    async def apply_health(self, now: datetime | None = None) -> list[Transition]:
        """Apply the health rule to every worker (the monitor's step); returns the transitions.
        It reads first and writes only when a state changes (SQLite has one writer at a time)."""
        now = now or utcnow()
        table = WorkerNode.__table__
        query = select(table.c.id, table.c.state, table.c.last_heartbeat_at, table.c.consecutive_beats)
        async with self._db.read() as connection:
            rows = (await connection.execute(query)).all()
        due: list[tuple[Transition, datetime, int]] = []
        for row in rows:
            gap = max(0.0, (now - row.last_heartbeat_at).total_seconds())
            old = WorkerState(row.state)
            new = next_state(old, gap, row.consecutive_beats, self.policy)
            if new is not old:
                # Silence ends the run of beats; the view then shows what recovery still needs.
                beats = row.consecutive_beats if new is WorkerState.HEALTHY else 0
                reason = transition_reason(old, new, gap, row.consecutive_beats)
                due.append((Transition(row.id, old, new, reason), row.last_heartbeat_at, beats))
        changes: list[Transition] = []
        if due:
            async with self._db.transaction() as connection:
                for change, judged_beat, beats in due:
                    # Guarded by the beat it judged: a beat that landed meanwhile wins.
                    result = await connection.execute(
                        update(WorkerNode)
                        .where(WorkerNode.id == change.worker_id, WorkerNode.last_heartbeat_at == judged_beat)
                        .values(state=change.new.value, consecutive_beats=beats)
                    )
                    if result.rowcount:
                        changes.append(change)
        for change in changes:
            _log(change)
        return changes
