"""Why a deployment did not get all its replicas, in words an operator can act on.

The explanation walks the same filters the planner applies, in the same order (worker state,
labels, GPU type, GPU count, memory), and reports the first one that leaves nothing: what was
needed, what the best candidate had, and how many replicas were placed. Workers that were not
considered at all (draining, unhealthy, offline) are listed too, since they are often the answer.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from gpucloud.scheduler.capacity import GpuSlot, Ledger, labels_match
from gpucloud.scheduler.spec import DeploymentSpec, WorkerNode

# Enough names to point at the problem without turning a reason into a worker inventory.
_MAX_LISTED = 5


def explain(spec: DeploymentSpec, workers: Collection[WorkerNode], ledger: Ledger, placed: int) -> str:
    ordered = sorted(workers, key=lambda w: w.id)
    reason = _shortfall(spec, ordered, ledger)
    return f"{reason}; {placed} of {spec.replicas} replicas placed{_not_considered(ordered)}"


def _shortfall(spec: DeploymentSpec, workers: Sequence[WorkerNode], ledger: Ledger) -> str:
    if not workers:
        return "no workers registered"
    open_workers = [w for w in workers if w.accepts_new_replicas]
    if not open_workers:
        return "no healthy worker accepts new replicas"
    eligible = [w for w in open_workers if labels_match(spec.labels, w.labels)]
    if not eligible:
        return f"no healthy worker matches labels {format_labels(spec.labels)}"
    if spec.gpu_count == 0:
        # The planner can always place a CPU replica on an eligible worker; kept for completeness.
        return "no eligible worker could take a CPU replica"
    typed = {w.id: ledger.slots(w.id, spec.gpu_type) for w in eligible}
    if not any(typed.values()):
        return _no_gpu_of_type(spec, eligible, ledger)
    most_id = min(typed, key=lambda wid: (-len(typed[wid]), wid))
    if len(typed[most_id]) < spec.gpu_count:
        return (
            f"needs {spec.gpu_count} GPUs{_of_type(spec)} on one worker; the most on one eligible "
            f"worker is {len(typed[most_id])} (worker {most_id})"
        )
    return _memory_shortfall(spec, typed)


def _no_gpu_of_type(spec: DeploymentSpec, eligible: Sequence[WorkerNode], ledger: Ledger) -> str:
    names = sorted({slot.gpu.name for w in eligible for slot in ledger.slots(w.id)})
    if spec.gpu_type is None:
        return "no eligible worker has a GPU"
    return f"no GPU matches type '{spec.gpu_type}' (eligible workers have: {', '.join(names) or 'no GPUs'})"


def _memory_shortfall(spec: DeploymentSpec, typed: Mapping[str, list[GpuSlot]]) -> str:
    need = f"{spec.gpu_memory_gb:.1f} GB"
    if spec.gpu_count == 1:
        wanted = f"needs 1 GPU{_of_type(spec)} with {need} free"
    else:
        wanted = f"needs {spec.gpu_count} GPUs{_of_type(spec)} on one worker with {need} free each"
    largest = min((s for slots in typed.values() for s in slots), key=_largest_first)
    if largest.gpu.memory_total_gb < spec.gpu_memory_gb:
        # Worth saying apart: waiting for other replicas to go away would not help.
        return (
            f"{wanted}; no eligible GPU is that large: the largest has {largest.gpu.memory_total_gb:.1f} GB "
            f"total (worker {largest.worker_id}, GPU {largest.gpu.index}, {largest.gpu.name})"
        )
    return f"{wanted}; best available: {_best_candidate(spec.gpu_count, typed)}"


def _best_candidate(count: int, typed: Mapping[str, list[GpuSlot]]) -> str:
    """The worker whose `count` emptiest GPUs come closest: the one whose weakest of them is best."""
    best: tuple[GpuSlot, ...] = ()
    for worker_id in sorted(typed):
        slots = tuple(sorted(typed[worker_id], key=lambda s: (-s.free_key, s.gpu.index))[:count])
        if len(slots) == count and (not best or slots[-1].free_key > best[-1].free_key):
            best = slots
    first = best[0]
    if count == 1:
        return (
            f"{first.free_gb:.1f} GB free on worker {first.worker_id} "
            f"(GPU {first.gpu.index}, {first.gpu.name}, {first.gpu.memory_total_gb:.1f} GB total)"
        )
    gpus = ", ".join(f"GPU {s.gpu.index} {s.gpu.name} {s.free_gb:.1f} GB" for s in best)
    return (
        f"at most {best[-1].free_gb:.1f} GB free on each of {count} GPUs on worker {first.worker_id} ({gpus})"
    )


def _not_considered(workers: Sequence[WorkerNode]) -> str:
    closed = [
        f"{w.id} ({'draining' if w.state == 'healthy' else w.state})"
        for w in workers
        if not w.accepts_new_replicas
    ]
    if not closed:
        return ""
    more = f" and {len(closed) - _MAX_LISTED} more" if len(closed) > _MAX_LISTED else ""
    return f"; not taking new replicas: {', '.join(closed[:_MAX_LISTED])}{more}"


def format_labels(labels: Mapping[str, str]) -> str:
    return "{" + ", ".join(f"{key}: {labels[key]}" for key in sorted(labels)) + "}"


def _of_type(spec: DeploymentSpec) -> str:
    return f" of type '{spec.gpu_type}'" if spec.gpu_type else ""


def _largest_first(slot: GpuSlot) -> tuple[float, str, int]:
    return (-slot.gpu.memory_total_gb, slot.worker_id, slot.gpu.index)
