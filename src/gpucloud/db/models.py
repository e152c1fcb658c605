"""The tables. Times are timezone-aware UTC on every database (SQLite stores them naive, `UTCDateTime`
restores the zone); ids are prefixed random strings so they say what they name in logs.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """A DateTime that is always aware UTC in Python, whatever the database keeps."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


DEFAULT_ORG_ID = "org_default"  # created by migration 0010; owns the keys made without an org


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    def column_values(self) -> dict[str, Any]:
        """The row's column values, for a Core INSERT (writes skip the ORM unit of work)."""
        return {
            c.key: getattr(self, c.key) for c in self.__table__.columns if getattr(self, c.key) is not None
        }

    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON,
        list[str]: JSON,
    }


class JobStatus(enum.StrEnum):
    """A job's life in the database; the finalizer moves it, fenced by attempt."""

    QUEUED = "queued"  # accepted and on the queue, not yet started
    RUNNING = "running"  # an attempt started on a worker (`attempts` is its number)
    COMPLETED = "completed"  # a result was accepted and billed
    FAILED = "failed"  # ended without a result (engine error, expired in the queue, worker lost)
    CANCELLED = "cancelled"  # the client went away or asked; what was generated is billed
    DEAD = "dead"  # delivered max_attempts times without an outcome; replayable by an admin

    @property
    def terminal(self) -> bool:
        return self not in (JobStatus.QUEUED, JobStatus.RUNNING)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16))  # shown to people: "gc_AbCd1234"
    digest: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 hex of the whole key
    role: Mapped[str] = mapped_column(String(16))
    allowed_models: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    default_priority: Mapped[str] = mapped_column(String(8), default="normal")
    max_priority: Mapped[str] = mapped_column(String(8), default="normal")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # Limits (None: unlimited). Budgets are per `budget_period` ("daily", "monthly", or None for
    # the key's lifetime); money is kept in micro-dollars so that no float ever sums a bill.
    rpm_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tpm_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_concurrency: Mapped[int | None] = mapped_column(Integer, nullable=True)
    token_quota: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    budget_micros: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    budget_period: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # The organisation that owns the key (gpucloud.accounts.orgs); keys made before organisations
    # existed were moved into the default one by migration 0010.
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True, default=DEFAULT_ORG_ID)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("key_id", "idempotency_key", name="uq_jobs_key_idempotency"),
        Index("ix_jobs_status_created", "status", "created_at"),
        Index("ix_jobs_key_created", "key_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"))
    model: Mapped[str] = mapped_column(String(200))
    endpoint: Mapped[str] = mapped_column(String(16))  # "chat" | "completion"
    priority: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED.value)
    stream: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    request_id: Mapped[str] = mapped_column(String(100), default="")
    idempotency_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    # What admission reserved for the job (tokens, cost, budget periods), settled when it ends.
    admission: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Where and until when it was queued, so the reconciler can enqueue it again after the
    # queue lost its state (see JobQueue.epoch).
    queue_epoch: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reply_to: Mapped[str | None] = mapped_column(String(200), nullable=True)
    deadline_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)


class UsageRecord(Base):
    """One row per finished job, written once: `job_id` is unique (docs/architecture.md §4)."""

    __tablename__ = "usage_records"
    __table_args__ = (
        Index("ix_usage_key_day", "key_id", "day"),
        Index("ix_usage_model_day", "model", "day"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(40), unique=True)
    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"))
    model: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    prompt_tokens: Mapped[int] = mapped_column(Integer)
    completion_tokens: Mapped[int] = mapped_column(Integer)
    total_tokens: Mapped[int] = mapped_column(Integer)
    cost_micros: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")  # micro-dollars
    latency_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    ttft_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    day: Mapped[str] = mapped_column(String(10))  # UTC "YYYY-MM-DD": groups the same on every database
    hour: Mapped[str | None] = mapped_column(String(13), nullable=True)  # UTC "YYYY-MM-DDTHH", likewise


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


class StoredFile(Base):
    """A file of the Files API: its metadata here, its bytes in object storage under `storage_key`."""

    __tablename__ = "files"
    __table_args__ = (Index("ix_files_key_created", "key_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # "file-…"
    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"))
    purpose: Mapped[str] = mapped_column(String(32))
    filename: Mapped[str] = mapped_column(String(255))
    bytes: Mapped[int] = mapped_column(BigInteger)
    lines: Mapped[int | None] = mapped_column(Integer, nullable=True)  # requests, for purpose=batch
    storage_key: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Batch(Base):
    """A batch of the Batch API. Its progress lives in `batch_lines` (one row per request), so a
    restart loses nothing; `status` moves forward only (see `gpucloud.batches.states`)."""

    __tablename__ = "batches"
    __table_args__ = (
        Index("ix_batches_status", "status"),
        Index("ix_batches_key_created", "key_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # "batch_…"
    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"))
    endpoint: Mapped[str] = mapped_column(String(64))
    input_file_id: Mapped[str] = mapped_column(String(40))
    completion_window: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON, nullable=True)
    errors: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    output_file_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    error_file_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    in_progress_at: Mapped[datetime | None] = mapped_column(nullable=True)
    finalizing_at: Mapped[datetime | None] = mapped_column(nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    failed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    expired_at: Mapped[datetime | None] = mapped_column(nullable=True)
    cancelling_at: Mapped[datetime | None] = mapped_column(nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(nullable=True)


class BatchLine(Base):
    """One request of a batch: `pending` (not yet queued), `submitted` (a job runs it: `job_id`),
    `done` (`status_code` and `body` or `error` are its line in the output or error file)."""

    __tablename__ = "batch_lines"
    __table_args__ = (
        UniqueConstraint("batch_id", "custom_id", name="uq_batch_lines_custom_id"),
        Index("ix_batch_lines_state", "batch_id", "state", "line"),
    )

    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"), primary_key=True)
    line: Mapped[int] = mapped_column(Integer, primary_key=True)
    custom_id: Mapped[str] = mapped_column(String(255))
    url: Mapped[str] = mapped_column(String(64))  # the line's endpoint, e.g. "/v1/embeddings"
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16))
    job_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    body: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class OutboxEvent(Base):
    """An event to announce after its transaction commits (transactional outbox): written in the
    same transaction as the change it announces, turned into webhook deliveries by one sender."""

    __tablename__ = "outbox_events"
    __table_args__ = (Index("ix_outbox_pending", "dispatched_at", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # "evt_…", the webhook-id
    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"))
    type: Mapped[str] = mapped_column(String(40))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    dispatched_at: Mapped[datetime | None] = mapped_column(nullable=True)


class WebhookEndpoint(Base):
    """A URL that receives a key's events; the signing secret is kept (HMAC needs it) and shown once."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # "wh_…"
    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[str]] = mapped_column(JSON)
    secret: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(nullable=True)


class WebhookDelivery(Base):
    """One event to one endpoint, tried until it succeeds or `max_attempts` runs out."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id", name="uq_webhook_delivery"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # "whd_…"
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(ForeignKey("outbox_events.id"))
    status: Mapped[str] = mapped_column(String(16))  # pending | succeeded | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(nullable=True)


class User(Base):
    """A person who signs in to the management API (`gpucloud.accounts`). `password_hash` is an
    argon2id hash, never the password; `token_version` is part of every access token the user is
    issued, so bumping it (sign-out, password reset, disable) revokes all of them at once."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # "usr_…"
    email: Mapped[str] = mapped_column(String(320), unique=True)  # kept lower-case
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    token_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(nullable=True)
    password_changed_at: Mapped[datetime | None] = mapped_column(nullable=True)


class SigningKey(Base):
    """A secret the control plane generated for itself on first start (the access tokens' HS256
    key when none is configured); shared by every gateway through the database."""

    __tablename__ = "signing_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # what the key is for: "jwt"
    secret: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Organization(Base):
    """A team that owns API keys and has members (`OrgMember`). Its limits apply across all its
    keys, on top of each key's own; None means unlimited, money in micro-dollars like keys'."""

    __tablename__ = "organizations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # "org_…"
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    allowed_models: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    rpm_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tpm_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    token_quota: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    budget_micros: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    budget_period: Mapped[str | None] = mapped_column(String(16), nullable=True)


class OrgMember(Base):
    """A user's role in an organisation: owner, admin, member or viewer."""

    __tablename__ = "org_members"

    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEntry(Base):
    """One state-changing management call (gpucloud.accounts.audit): who, what, on what, how it
    ended, from where. Appended only: no route updates or deletes a row. Never a secret."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_org_id", "org_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64), index=True)  # a key or user id, or "anonymous"
    action: Mapped[str] = mapped_column(String(120), index=True)  # "POST /api/keys/{key_id}"
    target: Mapped[str | None] = mapped_column(String(320), nullable=True)
    org_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    result: Mapped[str] = mapped_column(String(16))  # "success" or "failure"
    status: Mapped[int] = mapped_column(Integer)
    client_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    request_id: Mapped[str] = mapped_column(String(128))
