"""`DeploymentController`: turns deployments and the fleet into replica places, and keeps them.

Each step reads the workers and the deployments, runs the pure scheduler
(`gpucloud.scheduler.schedule`) with the current places as the starting point, and writes the
difference: new places, moved replicas, dropped ones, and each deployment's verdict. Only the
holder of the `worker-monitor` lease runs steps (the `WorkerMonitor` calls `step` after the health
rule, and the API asks for one after a change), so there is one writer.

Choices, recorded here because the scheduler leaves them to its caller:

* An `unhealthy` worker keeps its replicas but takes no new ones (it is passed to the scheduler
  as healthy and draining): a few missed beats do not move models around. `offline` workers
  lose their replicas, which are placed elsewhere at once.
* Always-on deployments are placed first and own their GPU memory. Each `on_demand` deployment is
  then placed alone against what the always-on ones left: on-demand replicas may share memory
  with each other, because they are loaded only when asked for; a worker that needs the memory
  unloads the least recently used idle one (`gpucloud.worker.replicas`). So GPUs are never
  over-committed by what is loaded, while idle on-demand models cost nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from gpucloud.cluster.directory import WorkerDirectory
from gpucloud.cluster.health import WorkerState
from gpucloud.db import Deployment, DeploymentReplica
from gpucloud.db import WorkerNode as WorkerRow
from gpucloud.deployments.autoscale import Autoscaler
from gpucloud.deployments.rollout import Decision, decide, spec_of
from gpucloud.deployments.states import DeploymentState
from gpucloud.deployments.store import DeploymentStore, PlacedReplica
from gpucloud.scheduler import DeploymentSpec, Gpu, Placement, WorkerNode, schedule

log = logging.getLogger(__name__)
_GB = 1e9


def worker_node(row: WorkerRow, reserved: Mapping[str, float] | None = None) -> WorkerNode:
    """A workers-table row as the scheduler sees it (see the module docstring for `unhealthy`)."""
    gpus = tuple(
        Gpu(
            uuid=str(gpu["uuid"]),
            name=str(gpu.get("name") or ""),
            index=int(gpu.get("index") or 0),
            memory_total_gb=int(gpu.get("memory_total_bytes") or 0) / _GB,
        )
        for gpu in (row.inventory or {}).get("gpus", [])
    )
    unhealthy = row.state == WorkerState.UNHEALTHY.value
    return WorkerNode(
        id=row.id,
        state="offline" if row.state == WorkerState.OFFLINE.value else "healthy",
        draining=row.draining or unhealthy,
        labels={str(k): str(v) for k, v in (row.labels or {}).items()},
        gpus=gpus,
        memory_reserved_gb=dict(reserved or {}),
    )


def deployment_spec(row: Deployment, version: int | None = None, count: int | None = None) -> DeploymentSpec:
    """The scheduler's view of one version group of a deployment (see `plan`)."""
    version = row.spec_version if version is None else version
    return DeploymentSpec(
        name=group_name(row.id, version),
        replicas=row.replicas if count is None else count,
        gpu_memory_gb=float(spec_of(row, version)["gpu_memory_gb"]),
        gpu_count=row.gpu_count,
        labels={str(k): str(v) for k, v in (row.labels or {}).items()},
        gpu_type=row.gpu_type,
        policy="binpack" if row.policy == "binpack" else "spread",
    )


def group_name(deployment_id: str, version: int) -> str:
    return f"{deployment_id}@{version}"


@dataclass(frozen=True, slots=True)
class Placed:
    """A replica row's place: `replica` is the row's index, `spec_version` what it runs."""

    deployment: str
    replica: int
    worker_id: str
    gpu_uuids: tuple[str, ...]
    spec_version: int


Targets = Mapping[str, Mapping[int, int]]  # deployment id → version → replicas wanted


def plan(
    workers: Sequence[WorkerRow],
    deployments: Sequence[Deployment],
    current: Sequence[DeploymentReplica],
    targets: Targets | None = None,
    retiring: Iterable[DeploymentReplica] = (),
) -> tuple[list[Placed], dict[str, str]]:
    """Every replica's place, and why a version group is short of replicas (pure; see the
    docstring). Each (deployment, spec version) is one scheduler deployment whose replicas are
    numbered 0..n-1 in row-index order; new ones get indexes no row of the deployment uses.
    `short` is keyed by deployment id for the current version, `id@version` for others. The indexes
    of `retiring` rows (being removed in the same step) are not reused: their worker may still be
    draining them under that index."""
    wanted = targets or {d.id: {d.spec_version or 1: d.replicas} for d in deployments}
    groups = _groups(deployments, current, wanted, retiring)
    nodes = [worker_node(w) for w in workers]
    always = [g for g in groups if not g.row.on_demand]
    result = schedule(nodes, [g.spec for g in always], [p for g in always for p in g.current()])
    placed = [p for g in always for p in g.physical(result.placements)]
    short = {
        g.short_key: result.unschedulable[g.spec.name] for g in always if g.spec.name in result.unschedulable
    }
    reserved = _reserved(result.placements, [g.spec for g in always])
    shared = [worker_node(w, reserved.get(w.id)) for w in workers]
    for g in groups:
        if g.row.on_demand:
            own = schedule(shared, [g.spec], g.current())
            placed.extend(g.physical(own.placements))
            if g.spec.name in own.unschedulable:
                short[g.short_key] = own.unschedulable[g.spec.name]
    return placed, short


@dataclass(slots=True)
class _Group:
    """The rows of one deployment that run one version, and how logical indexes map to rows."""

    row: Deployment
    version: int
    spec: DeploymentSpec
    rows: list[DeploymentReplica]
    taken: set[int]  # every index a row of the deployment uses (new rows never reuse one)

    @property
    def short_key(self) -> str:
        return self.row.id if self.version == (self.row.spec_version or 1) else self.spec.name

    def current(self) -> list[Placement]:
        return [
            Placement(self.spec.name, i, r.worker_id, tuple(r.gpu_uuids)) for i, r in enumerate(self.rows)
        ]

    def physical(self, placements: Iterable[Placement]) -> list[Placed]:
        out = []
        for p in sorted((p for p in placements if p.deployment == self.spec.name), key=lambda p: p.replica):
            index = self.rows[p.replica].index if p.replica < len(self.rows) else self._fresh()
            out.append(Placed(self.row.id, index, p.worker_id, p.gpu_uuids, self.version))
        return out

    def _fresh(self) -> int:
        index = 0
        while index in self.taken:
            index += 1
        self.taken.add(index)
        return index


def _groups(
    deployments: Sequence[Deployment],
    current: Sequence[DeploymentReplica],
    wanted: Targets,
    retiring: Iterable[DeploymentReplica],
) -> list[_Group]:
    by_id = {d.id: d for d in deployments}
    rows: dict[tuple[str, int], list[DeploymentReplica]] = {}
    taken: dict[str, set[int]] = {}
    for r in retiring:
        taken.setdefault(r.deployment_id, set()).add(r.index)
    for r in sorted(current, key=lambda r: (r.deployment_id, r.index)):
        if r.deployment_id in by_id:
            version = (
                r.spec_version if r.spec_version is not None else by_id[r.deployment_id].spec_version or 1
            )
            rows.setdefault((r.deployment_id, version), []).append(r)
            taken.setdefault(r.deployment_id, set()).add(r.index)
    groups = []
    for d in deployments:
        for version, count in sorted(wanted.get(d.id, {}).items()):
            mine = rows.get((d.id, version), [])
            spec = deployment_spec(d, version, count)
            groups.append(_Group(d, version, spec, mine, taken.setdefault(d.id, set())))
    return groups


def _reserved(
    placements: Iterable[Placement], specs: Sequence[DeploymentSpec]
) -> dict[str, dict[str, float]]:
    size = {spec.name: spec.gpu_memory_gb for spec in specs}
    reserved: dict[str, dict[str, float]] = {}
    for p in placements:
        for uuid in p.gpu_uuids:
            on_worker = reserved.setdefault(p.worker_id, {})
            on_worker[uuid] = on_worker.get(uuid, 0.0) + size[p.deployment]
    return reserved


class DeploymentController:
    def __init__(
        self, store: DeploymentStore, directory: WorkerDirectory, autoscaler: Autoscaler | None = None
    ) -> None:
        self._store = store
        self._directory = directory
        self._autoscaler = autoscaler
        self._lock = asyncio.Lock()  # the monitor's round and an API change may ask at once

    async def step(self) -> None:
        """One reconciliation: compute the places and write what differs."""
        async with self._lock:
            await self._step()

    async def _step(self) -> None:
        workers = await self._directory.list_workers()
        deployments = await self._store.all()
        if self._autoscaler is not None:
            scaled = await self._autoscaler.step(deployments)
            if scaled:
                await self._store.autoscaled(scaled)
                deployments = await self._store.all()
        current = await self._store.replicas()
        grouped: dict[str, list[DeploymentReplica]] = {}
        for r in current:
            grouped.setdefault(r.deployment_id, []).append(r)
        decisions = {d.id: decide(d, grouped.get(d.id, [])) for d in deployments}
        placements, short = _planned(workers, deployments, current, decisions)
        blocked = [d for d in deployments if d.id in short and _rolling(decisions[d.id])]
        if blocked:  # no room for a surge replica: decide again, replacing one at a time
            for d in blocked:
                decisions[d.id] = decide(d, grouped.get(d.id, []), surge_blocked=True)
            placements, short = _planned(workers, deployments, current, decisions)
        held = {(r.deployment_id, r.index): r for r in current}
        wanted = {(p.deployment, p.replica): p for p in placements}
        add = [
            PlacedReplica(p.deployment, p.replica, p.worker_id, p.gpu_uuids, p.spec_version)
            for key, p in wanted.items()
            if key not in held or _moved(held[key], p)
        ]
        remove = [key for key, row in held.items() if key not in wanted or _moved(row, wanted[key])]
        verdicts = _verdicts(deployments, {k: v for k, v in short.items() if k in decisions})
        rollouts = {i: d.rollout for i, d in decisions.items() if d.rollout is not None}
        if add or remove or verdicts or rollouts:
            await self._store.replace_placements(add, remove, verdicts, rollouts)
            _log_changes(add, remove, held)


def _planned(
    workers: Sequence[WorkerRow],
    deployments: Sequence[Deployment],
    current: Sequence[DeploymentReplica],
    decisions: Mapping[str, Decision],
) -> tuple[list[Placed], dict[str, str]]:
    kept: list[DeploymentReplica] = []
    retiring: list[DeploymentReplica] = []
    for r in current:
        if r.deployment_id in decisions:
            (retiring if r.index in decisions[r.deployment_id].remove else kept).append(r)
    return plan(workers, deployments, kept, {i: d.targets for i, d in decisions.items()}, retiring)


def _rolling(decision: Decision) -> bool:
    return len(decision.targets) > 1


def _log_changes(
    add: Sequence[PlacedReplica],
    remove: Sequence[tuple[str, int]],
    held: Mapping[tuple[str, int], DeploymentReplica],
) -> None:
    for p in add:
        log.info(
            "deployment %s: replica %d (spec v%d) placed on %s %s",
            p.deployment_id,
            p.index,
            p.spec_version,
            p.worker_id,
            list(p.gpu_uuids),
        )
    for deployment_id, index in remove:
        log.info(
            "deployment %s: replica %d removed from %s",
            deployment_id,
            index,
            held[(deployment_id, index)].worker_id,
        )


def _moved(row: DeploymentReplica, placement: Placed) -> bool:
    return row.worker_id != placement.worker_id or tuple(row.gpu_uuids) != placement.gpu_uuids


def _verdicts(
    deployments: Sequence[Deployment], short: Mapping[str, str]
) -> dict[str, tuple[str, str | None]]:
    """Deployments whose stored verdict changes: scheduled (maybe with a shortfall) or unschedulable."""
    changed: dict[str, tuple[str, str | None]] = {}
    for row in deployments:
        reason = short.get(row.id)
        state = DeploymentState.SCHEDULED.value
        if (row.state, row.reason) != (state, reason):
            changed[row.id] = (state, reason)
    return changed
