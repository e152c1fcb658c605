"""The worker ↔ control-plane HTTP API, written once: its session header and its bodies.

The worker (`worker.control`, and in-process `worker.local`) builds the request bodies and parses
the answer with these models; the control plane (`gateway.routes.workers`) validates the same
models, stores them (`cluster.directory`, `deployments.store`) and documents them in the OpenAPI
schema. The names are the control plane's: `…In` is what it takes in, `WorkerOrders` (with its
`Assignment`s) what it answers.

- `RegisterIn`: a worker's registration (its host, GPUs, models and slots);
- `HeartbeatIn`: a beat (load, fresh `GpuIn` readings, each `ReplicaIn`'s state, engine loads);
- `WorkerOrders`: the answer to both (state, drain, beat interval, the replicas to hold).

This module imports pydantic and `clean_input` only: `gpucloud worker` speaks the API without
loading the control plane's modules (the `cluster` package reads the database, the gateway loads
FastAPI). `WorkerState` lives here for that reason: the answer carries it, and `cluster.health`
(the rule that moves workers between states) re-exports it.
"""

from __future__ import annotations

import enum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from gpucloud.clean_input import CleanInput

# The header a worker presents its session secret in on every heartbeat (cluster.sessions).
SESSION_HEADER = "x-gpucloud-worker-session"

WORKER_ID = r"^[A-Za-z0-9._:\-]{1,128}$"
MAX_GPUS = 64

LabelKey = Annotated[str, StringConstraints(min_length=1, max_length=63, pattern=r"^[A-Za-z0-9._/\-]+$")]
LabelValue = Annotated[str, StringConstraints(max_length=255)]
ModelName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
LoadName = Annotated[str, StringConstraints(max_length=64)]  # an engine's load reading's name
# What a worker may say of a replica it holds (`deployments.states.REPORTABLE`).
ReportedState = Literal["loading", "ready", "standby", "failed", "unloading"]


class WorkerState(enum.StrEnum):
    """Where a worker stands, as the control plane sees it."""

    HEALTHY = "healthy"  # beating; may take work
    UNHEALTHY = "unhealthy"  # silent for a while, or not yet beating steadily again after a gap
    OFFLINE = "offline"  # silent long enough to be considered gone


# --- what the worker sends ---------------------------------------------------------------------


class GpuIn(CleanInput):
    """One GPU reading (`gpucloud.worker.inventory.GpuReading.to_wire`)."""

    index: int = Field(ge=0, le=1023)
    uuid: str = Field(min_length=1, max_length=128)
    name: str = Field(min_length=1, max_length=200)
    memory_total_bytes: int = Field(ge=0)
    memory_used_bytes: int = Field(ge=0)
    utilization: float | None = Field(None, ge=0, le=1)
    temperature_c: float | None = Field(None, ge=-100, le=300)
    power_w: float | None = Field(None, ge=0, le=100_000)


class RegisterIn(CleanInput):
    worker_id: str = Field(pattern=WORKER_ID)
    hostname: str = Field(min_length=1, max_length=255)
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict, max_length=64)
    cpu_count: int = Field(ge=1, le=1_000_000)
    memory_total_bytes: int = Field(ge=0)
    memory_available_bytes: int = Field(ge=0)
    gpus: list[GpuIn] = Field(default_factory=list, max_length=MAX_GPUS)
    models: list[ModelName] = Field(default_factory=list, max_length=1000)
    slots: int = Field(ge=1, le=100_000)

    @field_validator("gpus")
    @classmethod
    def _distinct(cls, gpus: list[GpuIn]) -> list[GpuIn]:
        if len({gpu.index for gpu in gpus}) != len(gpus):
            raise ValueError("GPU indexes must be distinct")
        return gpus


class ReplicaIn(CleanInput):
    """One replica the worker holds, as it reports it (`gpucloud.worker.replicas`)."""

    deployment_id: str = Field(min_length=1, max_length=40)
    index: int = Field(ge=0, le=1000)
    model: str = Field("", max_length=200)
    state: ReportedState
    reason: str | None = Field(None, max_length=2000)
    last_used_at: float | None = Field(None, ge=0)
    running: int = Field(0, ge=0, le=1_000_000)
    load: dict[LoadName, float] = Field(default_factory=dict, max_length=32)


class HeartbeatIn(CleanInput):
    running: int = Field(0, ge=0, le=1_000_000)
    queued: int = Field(0, ge=0, le=1_000_000)
    tokens_per_s: float = Field(0.0, ge=0, le=1e9)
    gpus: list[GpuIn] = Field(default_factory=list, max_length=MAX_GPUS)
    replicas: list[ReplicaIn] = Field(default_factory=list, max_length=1000)
    engines: dict[ModelName, dict[LoadName, float]] = Field(
        default_factory=dict, max_length=1000, description="load readings of the fixed engines, by model"
    )


# --- what the control plane answers ------------------------------------------------------------


class _Answer(BaseModel):
    """An answer body: exactly these fields (the schema says so, and the response tests check
    it). The worker reads answers with `read_orders`, which ignores fields it does not know."""

    model_config = ConfigDict(extra="forbid")


class Assignment(_Answer):
    """A replica a worker is to hold (`assignment_view`)."""

    deployment_id: str
    name: str
    index: int
    engine: str
    source: str | None
    engine_options: dict[str, str]
    gpu_uuids: list[str]
    gpu_memory_gb: float
    on_demand: bool
    idle_unload_seconds: int | None


class WorkerOrders(_Answer):
    """The answer to a worker's registration or heartbeat."""

    worker_id: str
    state: WorkerState
    draining: bool
    heartbeat_interval_s: float
    assignments: list[Assignment]
    session: str | None = Field(
        None,
        description="registration only: the secret each heartbeat sends in x-gpucloud-worker-session",
    )


def read_orders(content: bytes | str) -> WorkerOrders:
    """The control plane's answer, from its JSON. Fields this worker does not know are ignored:
    a newer control plane may add some, and an older worker must still follow its orders.
    Raises pydantic's ValidationError (a ValueError) for an answer that is not one."""
    return WorkerOrders.model_validate_json(content, extra="ignore")
