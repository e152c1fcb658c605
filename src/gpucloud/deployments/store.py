"""`DeploymentStore`: the deployments and deployment_replicas tables.

The API writes deployment specs; the controller writes replica places (`replace_placements`);
workers write their replicas' states through their heartbeats (`apply_reports`), fenced by the
worker id so that a report from a worker that no longer holds a replica changes nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from gpucloud.db import Database, Deployment, DeploymentReplica
from gpucloud.db.models import utcnow
from gpucloud.deployments.rollout import RUNS, current_spec, new_version, started
from gpucloud.deployments.spec import Validated
from gpucloud.deployments.states import REPORTABLE, DeploymentState, ReplicaState
from gpucloud.errors import Conflict, NotFound
from gpucloud.wire import ReplicaIn

# What PATCH may change. Changing what runs (`rollout.RUNS`) rolls the replicas over one by one.
PATCHABLE = (
    "replicas",
    "engine",
    "source",
    "engine_options",
    "gpu_memory_gb",
    "max_surge",
    "max_unavailable",
    "autoscale",
    "labels",
    "gpu_type",
    "policy",
    "on_demand",
    "idle_unload_seconds",
)


@dataclass(frozen=True, slots=True)
class ReplicaReport:
    """One replica's state as its worker reports it in a heartbeat."""

    deployment_id: str
    index: int
    state: ReplicaState
    reason: str | None = None
    last_used_at: float | None = None  # Unix seconds of the last job it ran

    @classmethod
    def from_wire(cls, entry: ReplicaIn) -> ReplicaReport:
        """From a heartbeat's replica entry (`worker.replicas.ReplicaSet.reports`)."""
        state = ReplicaState(entry.state)
        return cls(entry.deployment_id, entry.index, state, entry.reason, entry.last_used_at)


@dataclass(frozen=True, slots=True)
class PlacedReplica:
    deployment_id: str
    index: int
    worker_id: str
    gpu_uuids: tuple[str, ...]
    spec_version: int = 1


def new_deployment_id() -> str:
    return "dep_" + secrets.token_hex(8)


class DeploymentStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, spec: Validated) -> Deployment:
        request = spec.request
        now = utcnow()
        values: dict[str, Any] = {
            "id": new_deployment_id(),
            "name": request.name,
            "engine": request.engine,
            "source": request.source,
            "engine_options": dict(request.engine_options),
            "replicas": request.replicas,
            "gpu_memory_gb": spec.gpu_memory_gb,
            "gpu_memory_estimated": spec.estimated,
            "gpu_count": spec.gpu_count,
            "labels": dict(request.labels),
            "gpu_type": request.gpu_type,
            "policy": request.policy,
            "on_demand": request.on_demand,
            "idle_unload_seconds": request.idle_unload_seconds,
            "state": DeploymentState.PENDING.value,
            "reason": None,
            "spec_version": 1,
            "spec_history": {},
            "max_surge": request.max_surge,
            "max_unavailable": request.max_unavailable,
            "rollout": None,
            "autoscale": dict(request.autoscale) if request.autoscale else None,
            "created_at": now,
            "updated_at": now,
        }
        try:
            async with self._db.transaction() as connection:
                await connection.execute(insert(Deployment).values(**values))
        except IntegrityError:
            raise Conflict(f"A deployment named {request.name!r} exists already.", param="name") from None
        return await self.get(values["id"])

    async def get(self, ref: str) -> Deployment:
        """By id or by name (the model id)."""
        async with self._db.session() as session:
            row = await session.get(Deployment, ref)
            if row is None:
                row = (await session.execute(select(Deployment).where(Deployment.name == ref))).scalar()
        if row is None:
            raise NotFound(f"No deployment {ref!r}.", code="deployment_not_found")
        return row

    async def all(self) -> list[Deployment]:
        async with self._db.session() as session:
            return list((await session.execute(select(Deployment).order_by(Deployment.name))).scalars())

    async def update(self, ref: str, changes: Mapping[str, Any]) -> Deployment:
        """Apply a PATCH; a change to what runs starts a rolling update (`deployments.rollout`)."""
        row = await self.get(ref)
        values = {k: v for k, v in changes.items() if k in PATCHABLE}
        values.update(await self._versioned(row, values))
        values["updated_at"] = utcnow()
        async with self._db.transaction() as connection:
            await connection.execute(update(Deployment).where(Deployment.id == row.id).values(**values))
        return await self.get(row.id)

    async def autoscaled(self, decisions: Mapping[str, tuple[int, dict[str, Any]]]) -> None:
        """The autoscaler's step: each deployment's new replica count and its last decision."""
        async with self._db.transaction() as connection:
            for deployment_id, (replicas, decision) in decisions.items():
                await connection.execute(
                    update(Deployment)
                    .where(Deployment.id == deployment_id)
                    .values(replicas=replicas, autoscale_status=decision)
                )

    async def rollback(self, ref: str) -> Deployment:
        """Return to the spec that ran before the latest change (a roll back to it)."""
        row = await self.get(ref)
        previous = (row.rollout or {}).get("from_version")
        spec = (row.spec_history or {}).get(str(previous)) if previous is not None else None
        if spec is None or previous == row.spec_version:
            raise Conflict(
                f"Deployment {row.name!r} has no previous spec to roll back to.", code="no_previous_spec"
            )
        return await self.update(row.id, dict(spec))

    async def _versioned(self, row: Deployment, values: Mapping[str, Any]) -> dict[str, Any]:
        spec = current_spec(row)
        wanted = {**spec, **{k: v for k, v in values.items() if k in RUNS}}
        if wanted == spec:
            return {}
        referenced = {r.spec_version for r in await self.replicas(row.id)}
        version, history = new_version(row, wanted, sorted(referenced))
        return {"spec_version": version, "spec_history": history, "rollout": started(row, version)}

    async def delete(self, ref: str) -> Deployment:
        row = await self.get(ref)
        async with self._db.transaction() as connection:
            # Explicit: SQLite enforces ON DELETE CASCADE only with a per-connection pragma.
            await connection.execute(
                delete(DeploymentReplica).where(DeploymentReplica.deployment_id == row.id)
            )
            await connection.execute(delete(Deployment).where(Deployment.id == row.id))
        return row

    async def replicas(self, deployment_id: str | None = None) -> list[DeploymentReplica]:
        query = select(DeploymentReplica).order_by(DeploymentReplica.deployment_id, DeploymentReplica.index)
        if deployment_id is not None:
            query = query.where(DeploymentReplica.deployment_id == deployment_id)
        async with self._db.session() as session:
            return list((await session.execute(query)).scalars())

    async def replica_counts(self) -> dict[tuple[str, str], int]:
        """(deployment name, replica state) → replicas, for the gauges."""
        query = (
            select(Deployment.name, DeploymentReplica.state, func.count())
            .join(Deployment, Deployment.id == DeploymentReplica.deployment_id)
            .group_by(Deployment.name, DeploymentReplica.state)
        )
        async with self._db.read() as connection:
            return {(name, state): int(n) for name, state, n in (await connection.execute(query)).all()}

    async def replicas_of_worker(self, worker_id: str) -> list[tuple[DeploymentReplica, Deployment]]:
        query = (
            select(DeploymentReplica, Deployment)
            .join(Deployment, Deployment.id == DeploymentReplica.deployment_id)
            .where(DeploymentReplica.worker_id == worker_id)
            .order_by(DeploymentReplica.deployment_id, DeploymentReplica.index)
        )
        async with self._db.session() as session:
            return [(r, d) for r, d in (await session.execute(query)).all()]

    async def apply_reports(
        self, worker_id: str, reports: Sequence[ReplicaReport]
    ) -> list[tuple[DeploymentReplica, Deployment]]:
        """Record what a worker says of its replicas; only rows placed on that worker change, and
        only when something changed (SQLite has one writer at a time). Returns the replicas placed
        on the worker (read once per beat; what the beat's answer assigns)."""
        placed = await self.replicas_of_worker(worker_id)
        held = {(r.deployment_id, r.index): r for r, _ in placed}
        due = [rep for rep in reports if _changes(held.get((rep.deployment_id, rep.index)), rep)]
        if not due:
            return placed
        now = utcnow()
        async with self._db.transaction() as connection:
            for rep in due:
                values: dict[str, Any] = {"state": rep.state.value, "reason": rep.reason, "updated_at": now}
                if rep.last_used_at is not None:
                    values["last_used_at"] = datetime.fromtimestamp(rep.last_used_at, UTC)
                await connection.execute(
                    update(DeploymentReplica)
                    .where(
                        DeploymentReplica.deployment_id == rep.deployment_id,
                        DeploymentReplica.index == rep.index,
                        DeploymentReplica.worker_id == worker_id,
                    )
                    .values(**values)
                )
        return placed

    async def replace_placements(
        self,
        add: Sequence[PlacedReplica],
        remove: Sequence[tuple[str, int]],
        verdicts: Mapping[str, tuple[str, str | None]],
        rollouts: Mapping[str, dict[str, Any]] | None = None,
    ) -> None:
        """The controller's step: move/insert/delete replica rows and record per-deployment verdicts
        (state, unschedulable reason) and rollout progress, in one transaction."""
        now = utcnow()
        async with self._db.transaction() as connection:
            for deployment_id, index in remove:
                await connection.execute(
                    delete(DeploymentReplica).where(
                        DeploymentReplica.deployment_id == deployment_id, DeploymentReplica.index == index
                    )
                )
            for placed in add:
                await connection.execute(
                    insert(DeploymentReplica).values(
                        deployment_id=placed.deployment_id,
                        index=placed.index,
                        worker_id=placed.worker_id,
                        gpu_uuids=list(placed.gpu_uuids),
                        state=ReplicaState.SCHEDULED.value,
                        reason=None,
                        updated_at=now,
                        spec_version=placed.spec_version,
                    )
                )
            for deployment_id, (state, reason) in verdicts.items():
                await connection.execute(
                    update(Deployment)
                    .where(Deployment.id == deployment_id)
                    .values(state=state, reason=reason)
                )
            for deployment_id, rollout in (rollouts or {}).items():
                query = update(Deployment).where(Deployment.id == deployment_id)
                await connection.execute(query.values(rollout=rollout))


def _changes(row: DeploymentReplica | None, report: ReplicaReport) -> bool:
    if row is None or report.state not in REPORTABLE:
        return False
    if row.state != report.state.value or row.reason != report.reason:
        return True
    if report.last_used_at is None:
        return False
    last = row.last_used_at.timestamp() if row.last_used_at else 0.0
    return report.last_used_at - last >= 1.0  # a busy replica need not rewrite its row every beat
