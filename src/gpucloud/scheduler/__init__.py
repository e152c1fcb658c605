"""The deployment scheduler: which GPUs of which worker run each replica of each deployment.

It owns the placement rules and nothing else. `schedule()` is a pure function — frozen
dataclasses in, frozen dataclasses out, no I/O, no clock, no randomness — so the control plane can
call it on every change, compare the result with what runs, and act on the difference. Storing
deployments, talking to workers and starting engines belong to its callers.

Rules, as implemented:

1. **Who gets new replicas.** Only `healthy`, non-draining workers. An existing placement in
   `current` is kept when its worker is still `healthy` (draining included: drain means "no new
   work", not "evict" — the operator removes replicas by scaling down or by taking the worker
   out), the deployment still exists with `replica < replicas`, the placement still has
   `gpu_count` distinct GPUs of that worker, the labels and `gpu_type` still match and the
   memory still fits. Everything else is dropped: worker unhealthy, offline or gone; deployment
   deleted; scaled down (indexes `>= replicas`, i.e. the highest go first); spec changed so it
   no longer fits. A replica that may stay is never moved. If several kept replicas no longer
   fit together (reserved memory grew), the biggest deployments keep their places and smaller
   ones move; duplicate entries for one replica keep the first in (worker id, GPUs) order.
2. **No over-commit.** On every GPU, reserved memory + Σ `gpu_memory_gb` of its replicas ≤
   `memory_total_gb` (+1e-6 GB for float rounding). Memory is accounted per (worker, GPU uuid).
3. **Policies.** `binpack`: the eligible GPU(s) with the least free memory that still fit
   (best fit; fills GPUs and workers up). `spread`: the worker with the fewest replicas of this
   deployment, then the GPU(s) with the most free memory, then the least-loaded worker. Ties go
   to the lowest worker id, then GPU index. For CPU replicas (`gpu_count == 0`, no GPU memory,
   `gpu_type` ignored) binpack picks the worker with the most replicas and spread the one with the
   fewest replicas of this deployment.
4. **Order.** Kept replicas are committed first; then deployments are placed by
   `gpu_memory_gb × gpu_count` descending, then name, so big models are not starved by
   fragmentation.
5. **Multi-GPU replicas** take `gpu_count` distinct GPUs of one worker, chosen per the policy
   (the fullest that fit for binpack, the emptiest for spread).
6. **Indexes.** Replicas are numbered 0..replicas-1; missing indexes are filled lowest first, so
   a replacement for a lost replica reuses its index.
7. **Pure and deterministic.** Inputs are sorted before use and never mutated; the same input in
   any order gives the same `ScheduleResult`. Placements are sorted by (deployment, replica).

A deployment that does not get all its replicas is named in `ScheduleResult.unschedulable` with
the first filter that left nothing (worker state, labels, GPU type, GPU count, memory), the best
candidate found and how many replicas were placed. `estimate_gpu_memory_gb` and
`estimate_from_config` suggest a `gpu_memory_gb` for a model.
"""

from __future__ import annotations

from gpucloud.scheduler.capacity import EPSILON_GB
from gpucloud.scheduler.estimate import (
    BYTES_PER_PARAM,
    estimate_from_config,
    estimate_gpu_memory_gb,
    estimate_parameters,
)
from gpucloud.scheduler.planner import schedule
from gpucloud.scheduler.spec import (
    DeploymentSpec,
    Gpu,
    Placement,
    Policy,
    ScheduleResult,
    WorkerNode,
    WorkerState,
)

__all__ = [
    "BYTES_PER_PARAM",
    "EPSILON_GB",
    "DeploymentSpec",
    "Gpu",
    "Placement",
    "Policy",
    "ScheduleResult",
    "WorkerNode",
    "WorkerState",
    "estimate_from_config",
    "estimate_gpu_memory_gb",
    "estimate_parameters",
    "schedule",
]
