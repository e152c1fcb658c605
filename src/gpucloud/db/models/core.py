"""The request path's tables: API keys, jobs and the usage ledger."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from gpucloud.db.models.base import DEFAULT_ORG_ID, Base, utcnow


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
    # The member who made the key for themselves in their organisation (None: made by an admin).
    # It sees and revokes the key and its usage; its deletion revokes the key.
    owner_user_id: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)


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
