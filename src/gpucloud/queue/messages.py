"""The messages that cross the queue: jobs, leases, outcomes, events, worker announcements.

Each is a dataclass with `to_dict`/`from_dict`, the one codec both queue backends use (the Redis
backend stores the dicts as JSON; the in-process one passes the objects themselves).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Priority(enum.StrEnum):
    """Queue classes; a higher class is served first (see `lease` for the fairness rule)."""

    HIGH = "high"  # interactive traffic that pays for it
    NORMAL = "normal"  # the default class of a key
    LOW = "low"  # batch work: served when higher classes are empty, and 1 lease in `fair_every`

    @property
    def rank(self) -> int:
        return _RANKS[self]


_RANKS = {Priority.HIGH: 0, Priority.NORMAL: 1, Priority.LOW: 2}
PRIORITIES_HIGH_FIRST = (Priority.HIGH, Priority.NORMAL, Priority.LOW)


class EventKind(enum.StrEnum):
    """What a `JobEvent` says to the gateway holding the client."""

    STARTED = "started"  # an attempt began on a worker: data {"worker_id"}
    DELTA = "delta"  # output of one choice: data {"index", "text", "tokens", "finish_reason"}
    FINAL = "final"  # the accepted outcome, after the ledger write: data = Outcome.to_dict()
    ERROR = "error"  # the job ended without a result: data {"code", "message", "retryable", ...}


class OutcomeStatus(enum.StrEnum):
    """How an attempt ended, as its worker (or the queue, for DEAD) reports it."""

    STARTED = "started"  # not an end: the attempt began (fences older attempts)
    COMPLETED = "completed"  # every choice finished
    CANCELLED = "cancelled"  # the client went away or asked; tokens generated so far are billed
    FAILED = "failed"  # the engine failed; `error` says why
    EXPIRED = "expired"  # the job waited in the queue past its deadline and never ran
    DEAD = "dead"  # delivered `max_attempts` times without an outcome: dead-lettered
    INTERRUPTED = "interrupted"  # a streamed attempt died after its first token: billed, not retried


@dataclass(frozen=True, slots=True)
class Unrecorded:
    """What the control plane needs to write the row of a job that the gateway queued without one.

    A synchronous request has no row until it starts or ends: its client waits on the gateway, and
    nothing else needs the row before then, so the gateway spends no database write before
    queueing. The finalizer writes the row, with the job's STARTED or with its ending, from the
    job message the outcome carries (`Outcome.job`). Asynchronous and idempotent jobs are recorded
    before they are queued (clients poll them; repeats find them), and carry no `Unrecorded`.
    """

    key_id: str
    endpoint: str  # the request kind: "chat", "completion", "embedding"
    admission: dict[str, Any] | None  # admission's ticket, settled when the job ends

    def to_dict(self) -> dict[str, Any]:
        return {"key_id": self.key_id, "endpoint": self.endpoint, "admission": self.admission}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Unrecorded | None:
        if not data:
            return None
        return cls(str(data["key_id"]), str(data["endpoint"]), data.get("admission"))


@dataclass(slots=True)
class JobMessage:
    """A job as the queue carries it. `request` is `GenerationRequest.to_dict()`."""

    job_id: str
    model: str
    priority: Priority
    request: dict[str, Any]
    reply_to: str
    stream: bool = False
    enqueued_at: float = 0.0
    deadline: float = 0.0  # the job must start by then, else it is EXPIRED
    request_id: str = ""
    # Attempts already spent before this delivery cycle (a replayed dead letter keeps counting up,
    # so the database's attempt fence still rejects results of the old attempts).
    attempt_base: int = 0
    unrecorded: Unrecorded | None = None  # set when no database row exists yet (see Unrecorded)

    def to_dict(self) -> dict[str, Any]:
        return {
            "unrecorded": self.unrecorded.to_dict() if self.unrecorded is not None else None,
            "job_id": self.job_id,
            "model": self.model,
            "priority": self.priority.value,
            "request": self.request,
            "reply_to": self.reply_to,
            "stream": self.stream,
            "enqueued_at": self.enqueued_at,
            "deadline": self.deadline,
            "request_id": self.request_id,
            "attempt_base": self.attempt_base,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobMessage:
        return cls(
            job_id=data["job_id"],
            model=data["model"],
            priority=Priority(data["priority"]),
            request=data["request"],
            reply_to=data["reply_to"],
            stream=bool(data.get("stream", False)),
            enqueued_at=float(data.get("enqueued_at", 0.0)),
            deadline=float(data.get("deadline", 0.0)),
            request_id=str(data.get("request_id", "")),
            attempt_base=int(data.get("attempt_base", 0)),
            unrecorded=Unrecorded.from_dict(data.get("unrecorded")),
        )


@dataclass(slots=True)
class Lease:
    """One delivery of a job to a worker. `token` is the implementation's handle for it."""

    job: JobMessage
    attempt: int  # job.attempt_base + 1 for the first delivery, +1 for each reclaim
    worker_id: str
    token: str


@dataclass(slots=True)
class JobEvent:
    job_id: str
    kind: EventKind
    attempt: int
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "kind": self.kind.value, "attempt": self.attempt, "data": self.data}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobEvent:
        return cls(
            job_id=data["job_id"],
            kind=EventKind(data["kind"]),
            attempt=int(data["attempt"]),
            data=data.get("data") or {},
        )


@dataclass(slots=True)
class Outcome:
    """An attempt's report to the control plane. `outcome_id` is set by `read_outcomes`."""

    job_id: str
    attempt: int
    status: OutcomeStatus
    reply_to: str
    model: str
    worker_id: str = ""
    choices: list[dict[str, Any]] = field(default_factory=list)  # {"index","text","finish_reason"}
    prompt_tokens: int = 0
    completion_tokens: int = 0
    ttft_ms: float | None = None
    duration_ms: float | None = None  # time on the worker, start of attempt to end
    error: str | None = None
    error_code: str | None = None
    at: float = 0.0
    outcome_id: str = ""
    # The job itself, only when it has no database row yet (`JobMessage.unrecorded`): the finalizer
    # writes the row from it. Set by the queue from the lease, never by the worker.
    job: JobMessage | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "job": self.job.to_dict() if self.job is not None else None,
            "job_id": self.job_id,
            "attempt": self.attempt,
            "status": self.status.value,
            "reply_to": self.reply_to,
            "model": self.model,
            "worker_id": self.worker_id,
            "choices": self.choices,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "ttft_ms": self.ttft_ms,
            "duration_ms": self.duration_ms,
            "error": self.error,
            "error_code": self.error_code,
            "at": self.at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], outcome_id: str = "") -> Outcome:
        return cls(
            job_id=data["job_id"],
            attempt=int(data["attempt"]),
            status=OutcomeStatus(data["status"]),
            reply_to=data.get("reply_to", ""),
            model=data.get("model", ""),
            worker_id=data.get("worker_id", ""),
            choices=list(data.get("choices") or []),
            prompt_tokens=int(data.get("prompt_tokens") or 0),
            completion_tokens=int(data.get("completion_tokens") or 0),
            ttft_ms=data.get("ttft_ms"),
            duration_ms=data.get("duration_ms"),
            error=data.get("error"),
            error_code=data.get("error_code"),
            at=float(data.get("at") or 0.0),
            outcome_id=outcome_id,
            job=JobMessage.from_dict(data["job"]) if data.get("job") else None,
        )


def carried(job: JobMessage) -> JobMessage | None:
    """What an outcome of `job` carries back: the job when it has no row yet (`Outcome.job`)."""
    return job if job.unrecorded is not None else None


@dataclass(slots=True)
class WorkerInfo:
    """A worker's announcement: which models it serves and how busy it is."""

    worker_id: str
    models: list[str]
    slots: int
    running: int = 0
    at: float = 0.0  # when it was announced
    running_by_model: dict[str, int] = field(default_factory=dict)  # the per-replica load
    capabilities: dict[str, dict[str, bool]] = field(default_factory=dict)  # model → its engine's

    def to_dict(self) -> dict[str, Any]:
        return {
            "capabilities": self.capabilities,
            "worker_id": self.worker_id,
            "models": self.models,
            "slots": self.slots,
            "running": self.running,
            "at": self.at,
            "running_by_model": self.running_by_model,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WorkerInfo:
        return cls(
            worker_id=data["worker_id"],
            models=list(data.get("models") or []),
            slots=int(data.get("slots") or 0),
            running=int(data.get("running") or 0),
            at=float(data.get("at") or 0.0),
            running_by_model={str(k): int(v) for k, v in (data.get("running_by_model") or {}).items()},
            capabilities=dict(data.get("capabilities") or {}),
        )
