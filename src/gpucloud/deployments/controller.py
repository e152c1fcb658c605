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

from gpucloud.cluster.directory import WorkerDirectory
from gpucloud.cluster.health import WorkerState
from gpucloud.db import Deployment, DeploymentReplica
from gpucloud.db import WorkerNode as WorkerRow
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


def deployment_spec(row: Deployment) -> DeploymentSpec:
    return DeploymentSpec(
        name=row.id,  # replica rows refer to deployments by id
        replicas=row.replicas,
        gpu_memory_gb=row.gpu_memory_gb,
        gpu_count=row.gpu_count,
        labels={str(k): str(v) for k, v in (row.labels or {}).items()},
        gpu_type=row.gpu_type,
        policy="binpack" if row.policy == "binpack" else "spread",
    )


def plan(
    workers: Sequence[WorkerRow], deployments: Sequence[Deployment], current: Sequence[DeploymentReplica]
) -> tuple[list[Placement], dict[str, str]]:
    """Every replica's place, and why a deployment is short of replicas (pure; see the docstring)."""
    placements = [Placement(r.deployment_id, r.index, r.worker_id, tuple(r.gpu_uuids)) for r in current]
    nodes = [worker_node(w) for w in workers]
    always = [deployment_spec(d) for d in deployments if not d.on_demand]
    result = schedule(nodes, always, placements)
    placed = list(result.placements)
    short = dict(result.unschedulable)
    reserved = _reserved(result.placements, always)
    shared = [worker_node(w, reserved.get(w.id)) for w in workers]
    for row in deployments:
        if not row.on_demand:
            continue
        spec = deployment_spec(row)
        own = schedule(shared, [spec], [p for p in placements if p.deployment == row.id])
        placed.extend(own.placements)
        short.update(own.unschedulable)
    return placed, short


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
    def __init__(self, store: DeploymentStore, directory: WorkerDirectory) -> None:
        self._store = store
        self._directory = directory
        self._lock = asyncio.Lock()  # the monitor's round and an API change may ask at once

    async def step(self) -> None:
        """One reconciliation: compute the places and write what differs."""
        async with self._lock:
            await self._step()

    async def _step(self) -> None:
        workers = await self._directory.list_workers()
        deployments = await self._store.all()
        current = await self._store.replicas()
        placements, short = plan(workers, deployments, current)
        held = {(r.deployment_id, r.index): r for r in current}
        wanted = {(p.deployment, p.replica): p for p in placements}
        add = [
            PlacedReplica(p.deployment, p.replica, p.worker_id, p.gpu_uuids)
            for key, p in wanted.items()
            if key not in held or _moved(held[key], p)
        ]
        remove = [key for key, row in held.items() if key not in wanted or _moved(row, wanted[key])]
        verdicts = _verdicts(deployments, short)
        if add or remove or verdicts:
            await self._store.replace_placements(add, remove, verdicts)
            for p in add:
                log.info(
                    "deployment %s: replica %d placed on %s %s",
                    p.deployment_id,
                    p.index,
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


def _moved(row: DeploymentReplica, placement: Placement) -> bool:
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
