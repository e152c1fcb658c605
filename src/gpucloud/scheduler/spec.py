"""The scheduler's vocabulary: what a worker offers, what a deployment asks for, where a replica runs.

All types are frozen dataclasses so a scheduling decision can be compared, logged and replayed; the
mappings they hold are read, never written, by the scheduler. Construction checks only what would
make a decision meaningless (negative sizes, duplicate GPU ids on one worker), not policy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

WorkerState = Literal["healthy", "unhealthy", "offline"]
Policy = Literal["binpack", "spread"]

_WORKER_STATES: frozenset[str] = frozenset({"healthy", "unhealthy", "offline"})
_POLICIES: frozenset[str] = frozenset({"binpack", "spread"})


def _require_size(what: str, value: float) -> None:
    # NaN compares false with everything, so it would silently defeat every capacity check.
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{what} must be a finite number >= 0, got {value!r}")


@dataclass(frozen=True, slots=True)
class Gpu:
    """One GPU as the worker agent reports it (`name` as nvidia-smi prints it, or a simulated name)."""

    uuid: str
    name: str
    index: int
    memory_total_gb: float

    def __post_init__(self) -> None:
        _require_size(f"GPU {self.uuid} memory_total_gb", self.memory_total_gb)


@dataclass(frozen=True, slots=True)
class WorkerNode:
    """A worker machine. `memory_reserved_gb` maps GPU uuid to memory held by things the scheduler
    does not manage (another process, a model pinned by hand); unknown uuids are ignored."""

    id: str
    state: WorkerState
    draining: bool
    labels: Mapping[str, str]
    gpus: tuple[Gpu, ...]
    memory_reserved_gb: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.state not in _WORKER_STATES:
            raise ValueError(f"worker {self.id}: unknown state {self.state!r}")
        uuids = [gpu.uuid for gpu in self.gpus]
        if len(set(uuids)) != len(uuids):
            raise ValueError(f"worker {self.id}: duplicate GPU uuid")
        for uuid, reserved in self.memory_reserved_gb.items():
            _require_size(f"worker {self.id} reserved memory on {uuid}", reserved)

    @property
    def accepts_new_replicas(self) -> bool:
        """Draining workers keep what they run but take nothing new; unhealthy ones take nothing."""
        return self.state == "healthy" and not self.draining


@dataclass(frozen=True, slots=True)
class DeploymentSpec:
    """A model deployment: `replicas` copies, each on `gpu_count` GPUs of ONE worker with
    `gpu_memory_gb` free on each. `gpu_count == 0` is a CPU replica (no GPU memory is accounted)."""

    name: str
    replicas: int
    gpu_memory_gb: float
    gpu_count: int = 1
    labels: Mapping[str, str] = field(default_factory=dict)
    gpu_type: str | None = None
    policy: Policy = "spread"

    def __post_init__(self) -> None:
        if self.replicas < 0:
            raise ValueError(f"deployment {self.name}: replicas must be >= 0, got {self.replicas}")
        if self.gpu_count < 0:
            raise ValueError(f"deployment {self.name}: gpu_count must be >= 0, got {self.gpu_count}")
        _require_size(f"deployment {self.name} gpu_memory_gb", self.gpu_memory_gb)
        if self.policy not in _POLICIES:
            raise ValueError(f"deployment {self.name}: unknown policy {self.policy!r}")

    @property
    def demand_gb(self) -> float:
        """Total GPU memory one replica takes; the order in which deployments are placed."""
        return self.gpu_memory_gb * self.gpu_count


@dataclass(frozen=True, slots=True)
class Placement:
    """Replica `replica` of `deployment` runs on `worker_id`, on the GPUs named (empty for CPU)."""

    deployment: str
    replica: int
    worker_id: str
    gpu_uuids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ScheduleResult:
    """Every replica that has a place (sorted by deployment, replica) and, for each deployment that
    did not get all its replicas, why not."""

    placements: tuple[Placement, ...]
    unschedulable: Mapping[str, str]

    def for_deployment(self, name: str) -> tuple[Placement, ...]:
        return tuple(p for p in self.placements if p.deployment == name)
