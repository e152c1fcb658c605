"""`Assignment`: one deployment replica the control plane asks a worker to hold, as the worker
keeps it (frozen: each answer's replicas are compared with the held ones), made from the
answer's `wire.Assignment` (`deployments.assignment_view`); `same_engine` says whether a changed
assignment needs a reload."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gpucloud import wire


@dataclass(frozen=True, slots=True)
class Assignment:
    """One replica the control plane asks this worker to hold (`deployments.assignment_view`)."""

    deployment_id: str
    name: str
    index: int
    engine: str
    source: str | None
    engine_options: Mapping[str, str]
    gpu_uuids: tuple[str, ...]
    gpu_memory_gb: float
    on_demand: bool = False
    idle_unload_seconds: int | None = None

    @classmethod
    def from_wire(cls, order: wire.Assignment) -> Assignment:
        """From the control plane's answer (`wire.WorkerOrders.assignments`)."""
        return cls(
            deployment_id=order.deployment_id,
            name=order.name,
            index=order.index,
            engine=order.engine,
            source=order.source,
            engine_options=dict(order.engine_options),
            gpu_uuids=tuple(order.gpu_uuids),
            gpu_memory_gb=order.gpu_memory_gb,
            on_demand=order.on_demand,
            idle_unload_seconds=order.idle_unload_seconds,
        )

    @property
    def key(self) -> tuple[str, int]:
        return (self.deployment_id, self.index)

    def same_engine(self, other: Assignment) -> bool:
        """Whether `other` runs the same thing in the same place (no reload needed)."""
        return (self.engine, self.source, dict(self.engine_options), self.gpu_uuids, self.name) == (
            other.engine,
            other.source,
            dict(other.engine_options),
            other.gpu_uuids,
            other.name,
        )
