"""`schedule()`: keep every replica that may stay, then place the missing ones, biggest first.

The function is pure: the only state it writes is a `Ledger` it creates and drops. Each step
processes its input in a fixed sorted order, so the same workers, deployments and current
placements give the same result whatever order the sequences arrive in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from gpucloud.scheduler.capacity import GpuSlot, Ledger, gpu_type_matches, labels_match
from gpucloud.scheduler.reasons import explain
from gpucloud.scheduler.spec import DeploymentSpec, Placement, ScheduleResult, WorkerNode

# A candidate: the worker and the GPUs one replica would take there (empty for a CPU replica).
_Choice = tuple[WorkerNode, tuple[GpuSlot, ...]]
_RankKey = tuple[float | int | str | tuple[int, ...], ...]


def schedule(
    workers: Sequence[WorkerNode],
    deployments: Sequence[DeploymentSpec],
    current: Sequence[Placement] = (),
) -> ScheduleResult:
    """Decide which worker and GPUs run each replica; see the package docstring for the rules."""
    by_id = _index_unique(workers, deployments)
    ordered = sorted(deployments, key=_placement_order)
    ledger = Ledger(sorted(workers, key=lambda w: w.id))
    kept = _keep_current(current, ordered, by_id, ledger)
    placements = list(kept)
    unschedulable: dict[str, str] = {}
    candidates = sorted((w for w in workers if w.accepts_new_replicas), key=lambda w: w.id)
    for spec in ordered:
        taken = {p.replica for p in kept if p.deployment == spec.name}
        missing = [index for index in range(spec.replicas) if index not in taken]
        added = _place_missing(spec, missing, candidates, ledger)
        placements.extend(added)
        if len(added) < len(missing):
            placed = len(taken) + len(added)
            unschedulable[spec.name] = explain(spec, by_id.values(), ledger, placed)
    placements.sort(key=lambda p: (p.deployment, p.replica))
    return ScheduleResult(placements=tuple(placements), unschedulable=unschedulable)


def _index_unique(
    workers: Sequence[WorkerNode], deployments: Sequence[DeploymentSpec]
) -> dict[str, WorkerNode]:
    # Two entries under one name would make "which one is meant" depend on input order.
    by_id = {worker.id: worker for worker in workers}
    if len(by_id) != len(workers):
        raise ValueError("worker ids must be unique")
    if len({spec.name for spec in deployments}) != len(deployments):
        raise ValueError("deployment names must be unique")
    return by_id


def _placement_order(spec: DeploymentSpec) -> tuple[float, str]:
    # Big replicas first: placed after the small ones, they would find every GPU partly used.
    return (-spec.demand_gb, spec.name)


def _keep_current(
    current: Iterable[Placement],
    ordered: Sequence[DeploymentSpec],
    workers: Mapping[str, WorkerNode],
    ledger: Ledger,
) -> list[Placement]:
    """The current placements that stay, committed to the ledger.

    They are visited in placement order (biggest deployment first, then replica index), so if
    reserved memory grew and a GPU no longer holds all it ran, the smaller replicas are the ones
    that move: they are the easiest to place elsewhere.
    """
    rank = {spec.name: position for position, spec in enumerate(ordered)}
    specs = {spec.name: spec for spec in ordered}
    known = [p for p in current if p.deployment in rank]
    known.sort(key=lambda p: (rank[p.deployment], p.replica, p.worker_id, p.gpu_uuids))
    kept: list[Placement] = []
    seen: set[tuple[str, int]] = set()
    for placement in known:
        spec = specs[placement.deployment]
        key = (placement.deployment, placement.replica)
        if key in seen or not _may_stay(placement, spec, workers.get(placement.worker_id), ledger):
            continue
        ledger.commit(spec, placement.worker_id, placement.gpu_uuids)
        seen.add(key)
        kept.append(placement)
    return kept


def _may_stay(placement: Placement, spec: DeploymentSpec, worker: WorkerNode | None, ledger: Ledger) -> bool:
    # Draining still counts as healthy here: drain stops new work, it does not evict running work.
    if worker is None or worker.state != "healthy":
        return False
    if not 0 <= placement.replica < spec.replicas or not labels_match(spec.labels, worker.labels):
        return False
    uuids = placement.gpu_uuids
    if len(uuids) != spec.gpu_count or len(set(uuids)) != len(uuids):
        return False
    slots = [ledger.slot(worker.id, uuid) for uuid in uuids]
    return all(
        slot is not None and gpu_type_matches(spec.gpu_type, slot.gpu) and slot.fits(spec.gpu_memory_gb)
        for slot in slots
    )


def _place_missing(
    spec: DeploymentSpec, missing: Sequence[int], candidates: Sequence[WorkerNode], ledger: Ledger
) -> list[Placement]:
    """New placements for the missing replica indexes, lowest first, until one does not fit."""
    eligible = [w for w in candidates if labels_match(spec.labels, w.labels)]
    added: list[Placement] = []
    for index in missing:
        choice = _choose(spec, eligible, ledger)
        # Every replica of a deployment asks for the same thing and the ledger only fills up,
        # so once one does not fit, none of the later ones will.
        if choice is None:
            break
        worker, slots = choice
        uuids = tuple(slot.gpu.uuid for slot in slots)
        ledger.commit(spec, worker.id, uuids)
        added.append(Placement(spec.name, index, worker.id, uuids))
    return added


def _choose(spec: DeploymentSpec, eligible: Sequence[WorkerNode], ledger: Ledger) -> _Choice | None:
    ranked: list[tuple[_RankKey, _Choice]] = []
    for worker in eligible:
        slots = _pick_gpus(spec, worker, ledger)
        if slots is not None:
            ranked.append((_rank(spec, worker, slots, ledger), (worker, slots)))
    if not ranked:
        return None
    return min(ranked, key=lambda pair: pair[0])[1]


def _pick_gpus(spec: DeploymentSpec, worker: WorkerNode, ledger: Ledger) -> tuple[GpuSlot, ...] | None:
    """The GPU set this worker would give one replica, or None if it cannot take one."""
    if spec.gpu_count == 0:
        return ()
    fitting = [s for s in ledger.slots(worker.id, spec.gpu_type) if s.fits(spec.gpu_memory_gb)]
    if len(fitting) < spec.gpu_count:
        return None
    # binpack: the fullest GPUs that still fit (best fit); spread: the emptiest.
    sign = 1 if spec.policy == "binpack" else -1
    fitting.sort(key=lambda s: (sign * s.free_key, s.gpu.index, s.gpu.uuid))
    return tuple(fitting[: spec.gpu_count])


def _rank(spec: DeploymentSpec, worker: WorkerNode, slots: tuple[GpuSlot, ...], ledger: Ledger) -> _RankKey:
    """Smaller is better. Worker id and GPU indexes come last so every tie has one answer."""
    indexes = tuple(slot.gpu.index for slot in slots)
    free = round(sum(slot.free_gb for slot in slots), 6)
    if spec.policy == "binpack":
        # CPU replicas have no GPU free memory to compare; fill the busiest worker instead.
        fill = free if slots else -ledger.load(worker.id)
        return (fill, worker.id, indexes)
    return (ledger.replicas_of(spec.name, worker.id), -free, ledger.load(worker.id), worker.id, indexes)
