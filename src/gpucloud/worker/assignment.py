"""`Assignment`: one deployment replica the control plane asks a worker to hold, as its heartbeat's
answer carries it (`deployments.assignment_view`); `same_engine` says whether a changed assignment
needs a reload."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


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
    def from_dict(cls, data: Mapping[str, Any]) -> Assignment:
        return cls(
            deployment_id=str(data["deployment_id"]),
            name=str(data["name"]),
            index=int(data["index"]),
            engine=str(data["engine"]),
            source=data.get("source"),
            engine_options={str(k): str(v) for k, v in (data.get("engine_options") or {}).items()},
            gpu_uuids=tuple(str(u) for u in data.get("gpu_uuids") or ()),
            gpu_memory_gb=float(data.get("gpu_memory_gb") or 0.0),
            on_demand=bool(data.get("on_demand", False)),
            idle_unload_seconds=data.get("idle_unload_seconds"),
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
