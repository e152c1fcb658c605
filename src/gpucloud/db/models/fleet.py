"""The fleet's tables: worker tokens, workers, deployments and their replicas."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from gpucloud.db.models.base import Base, utcnow


class WorkerToken(Base):
    """A credential for worker agents (`gcw_…`); like an API key, only its digest is stored."""

    __tablename__ = "worker_tokens"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16))  # shown to people: "gcw_AbCd123"
    digest: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 hex of the whole token
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)


class WorkerNode(Base):
    """A worker machine as the control plane knows it: registration, inventory, health, drain.

    `state` is written by the heartbeat handler (recovery) and the worker monitor (silence); see
    `gpucloud.cluster.health` for the rules.
    """

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)  # the worker's own --worker-id
    hostname: Mapped[str] = mapped_column(String(255))
    labels: Mapped[dict[str, Any]] = mapped_column(JSON)
    inventory: Mapped[dict[str, Any]] = mapped_column(JSON)  # host facts and GPU readings
    models: Mapped[list[str]] = mapped_column(JSON)
    slots: Mapped[int] = mapped_column(Integer)
    load: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # the latest heartbeat
    state: Mapped[str] = mapped_column(String(16))
    draining: Mapped[bool] = mapped_column(Boolean, default=False)
    registered_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)
    consecutive_beats: Mapped[int] = mapped_column(Integer, default=0)
    token_id: Mapped[str | None] = mapped_column(ForeignKey("worker_tokens.id"), nullable=True)
    # SHA-256 of the session secret its registration returned; every heartbeat must present it.
    session_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Deployment(Base):
    """A model deployment an operator asked for: what to run (`engine`, `source`, options), how many
    replicas, how much GPU memory each needs and where it may go. `name` is the model id clients use.

    `state`/`reason` are derived by the deployment controller from its replicas (see
    `gpucloud.deployments.status`); the spec columns are written only through the API.
    """

    __tablename__ = "deployments"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # "dep_…"
    name: Mapped[str] = mapped_column(String(200), unique=True)
    engine: Mapped[str] = mapped_column(String(40))
    source: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    engine_options: Mapped[dict[str, Any]] = mapped_column(JSON)
    replicas: Mapped[int] = mapped_column(Integer)
    gpu_memory_gb: Mapped[float] = mapped_column(Float)
    gpu_memory_estimated: Mapped[bool] = mapped_column(Boolean, default=False)
    gpu_count: Mapped[int] = mapped_column(Integer, default=1)
    labels: Mapped[dict[str, Any]] = mapped_column(JSON)
    gpu_type: Mapped[str | None] = mapped_column(String(200), nullable=True)
    policy: Mapped[str] = mapped_column(String(16))
    on_demand: Mapped[bool] = mapped_column(Boolean, default=False)
    idle_unload_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Rolling updates (`gpucloud.deployments.rollout`): the version of what runs now, what each
    # version still referenced runs ({"<version>": {engine, source, engine_options, gpu_memory_gb}}),
    # the surge/unavailability bounds, and the roll's {state, reason, updated_replicas, ...}.
    spec_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    spec_history: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    max_surge: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    max_unavailable: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    rollout: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # Autoscaling bounds and targets (`gpucloud.deployments.autoscale`), and its last decision.
    autoscale: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    autoscale_status: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class DeploymentReplica(Base):
    """One replica's place (written by the controller) and its state (reported by its worker).

    A row exists while the scheduler places the replica; the worker named loads it and reports
    `state` in its heartbeats. Rows of a deleted deployment go with it (ON DELETE CASCADE).
    """

    __tablename__ = "deployment_replicas"

    deployment_id: Mapped[str] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True
    )
    index: Mapped[int] = mapped_column(Integer, primary_key=True)
    worker_id: Mapped[str] = mapped_column(String(128), index=True)
    gpu_uuids: Mapped[list[str]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(nullable=True)
    spec_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
