"""The `JobQueue` protocol and the messages that cross it.

Three flows cross a queue (DESIGN.md §1, §4):

* **jobs**, gateway → worker: `submit` puts a `JobMessage` on the model's queue in its priority
  class; a worker `lease`s jobs for the models it hosts and holds each `Lease` by `renew`ing it. A
  lease not renewed within the lease timeout is reclaimed and delivered again with `attempt + 1`;
  after `max_attempts` deliveries the job is dead-lettered (a `DEAD` outcome is reported for it).
* **outcomes**, worker → control plane: `begin` reports that an attempt started, `complete`
  reports how it ended and acknowledges the delivery in one step. The control plane's finalizer
  (any gateway replica) reads them with `read_outcomes`, fences them by attempt in the database,
  and `ack_outcomes` once written. At-least-once: an outcome is re-read until acknowledged.
* **events**, worker/finalizer → the gateway that holds the client: `publish` to the job's
  `reply_to` channel; each gateway process reads its own channel with `read_events` (one reader
  per process, see `router.ReplyRouter`).

`cancel` marks a job cancelled; workers learn of it through `watch_cancellations` (running jobs)
and `is_cancelled` (jobs about to start). All times are Unix seconds (floats).
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


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

    def to_dict(self) -> dict[str, Any]:
        return {
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

    def to_dict(self) -> dict[str, Any]:
        return {
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
        )


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


class QueueError(Exception):
    """The queue cannot be reached or refused an operation for a reason outside the caller's control."""


class QueueUnavailable(QueueError):
    """The queue's backing service is down; the caller should answer 503 with Retry-After."""


class QueueFull(QueueError):
    """The model's queue holds `max_depth` jobs already."""

    def __init__(self, model: str, depth: int) -> None:
        super().__init__(f"the queue for model {model!r} is full ({depth} jobs waiting)")
        self.model = model
        self.depth = depth


@runtime_checkable
class JobQueue(Protocol):
    """Delivery of jobs, outcomes and events. Implementations: `memory` (embedded), `redis` (cluster)."""

    async def start(self) -> None:
        """Connect and start background work (reclaim); idempotent."""
        ...

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise `QueueUnavailable` when the queue cannot be used (readiness probe)."""
        ...

    async def submit(self, job: JobMessage) -> None:
        """Enqueue `job`; raise `QueueFull` when the model's depth is at the bound."""
        ...

    async def lease(self, worker_id: str, models: Sequence[str], count: int, timeout_s: float) -> list[Lease]:
        """Up to `count` jobs for `models`, waiting up to `timeout_s` for the first.

        Order: reclaimed deliveries first, then by priority class (high, normal, low), oldest first;
        every `fair_every`-th job a worker leases is taken from the lowest non-empty class, so low
        never starves. Jobs past `max_attempts` are dead-lettered here instead of delivered.
        """
        ...

    async def renew(self, leases: Sequence[Lease]) -> list[Lease]:
        """Extend `leases`; return the ones this worker no longer holds (reclaimed meanwhile)."""
        ...

    async def release(self, lease: Lease) -> None:
        """Give a job back undone (worker draining); it is delivered again without delay."""
        ...

    async def begin(self, lease: Lease) -> None:
        """Report that `lease`'s attempt started (outcome STARTED, event STARTED)."""
        ...

    async def complete(self, lease: Lease, outcome: Outcome) -> None:
        """Report how `lease`'s attempt ended and acknowledge the delivery, in one step."""
        ...

    async def report(self, outcome: Outcome) -> None:
        """Report an outcome no lease holds (the gateway expiring a job no worker took)."""
        ...

    async def read_outcomes(self, consumer: str, count: int, timeout_s: float) -> list[Outcome]:
        """Outcomes not yet acknowledged, for the control plane's finalizer."""
        ...

    async def ack_outcomes(self, outcomes: Sequence[Outcome]) -> None: ...

    async def publish(self, reply_to: str, events: Sequence[JobEvent]) -> None:
        """Send events to the gateway process reading channel `reply_to`."""
        ...

    def read_events(self, reply_to: str) -> AsyncIterator[list[JobEvent]]:
        """Batches of events for channel `reply_to`, as they arrive; one reader per channel."""
        ...

    async def cancel(self, job_id: str) -> None:
        """Mark `job_id` cancelled; a worker running it stops, one about to start skips it."""
        ...

    async def is_cancelled(self, job_id: str) -> bool: ...

    def watch_cancellations(self) -> AsyncIterator[str]:
        """Job ids as they are cancelled (for workers)."""
        ...

    async def depth(self, model: str) -> dict[Priority, int]:
        """Jobs waiting (not leased) for `model`, per priority class."""
        ...

    async def dead_letters(self, limit: int = 100) -> list[JobMessage]: ...

    async def epoch(self) -> str:
        """An id of the queue's stored state; it changes when that state was lost (a Redis that
        restarted without persistence, a new in-process queue). Jobs recorded under another
        epoch are re-enqueued by the control plane's reconciler."""
        ...

    async def lead(self, role: str, holder: str, ttl_s: float) -> bool:
        """Take or keep the lease on `role` for `holder`; True while `holder` holds it. One holder at
        a time among all processes on this queue (e.g. who exports cluster-wide metrics)."""
        ...

    async def announce(self, worker: WorkerInfo, ttl_s: float) -> None:
        """Say that `worker` is alive and serves its models, for `ttl_s` seconds."""
        ...

    async def withdraw(self, worker_id: str) -> None:
        """Say that a worker stopped (a clean shutdown; a crash just lets its announcement expire)."""
        ...

    async def workers(self) -> list[WorkerInfo]:
        """Workers whose announcement has not expired."""
        ...

    async def known_models(self) -> dict[str, float]:
        """Every model a worker ever announced, with when it was last announced."""
        ...

    async def forget_model(self, model: str) -> None:
        """Drop a model from `known_models` (a deleted deployment: unknown, not "not served now")."""
        ...

    async def replay(self, job_id: str) -> bool:
        """Move a dead-lettered job back onto its queue with a fresh attempt count."""
        ...
