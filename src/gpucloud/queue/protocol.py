"""The queue's protocols, one per role, and the messages that cross them (from `messages`).

Three flows cross a queue (docs/architecture.md §1, §4):

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
and `begin`'s answer (jobs about to start). All times are Unix seconds (floats).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Protocol, runtime_checkable

from gpucloud.queue.messages import (
    PRIORITIES_HIGH_FIRST,
    Choice,
    DeltaEvent,
    ErrorEvent,
    EventKind,
    FinalEvent,
    JobEvent,
    JobMessage,
    Lease,
    Outcome,
    OutcomeStatus,
    Priority,
    StartedEvent,
    ToolCall,
    Unrecorded,
    WorkerInfo,
    carried,
)

__all__ = [
    "PRIORITIES_HIGH_FIRST",
    "Choice",
    "DeltaEvent",
    "ErrorEvent",
    "EventKind",
    "Events",
    "FinalEvent",
    "JobEvent",
    "JobMessage",
    "JobQueue",
    "Jobs",
    "Leadership",
    "Lease",
    "Outcome",
    "OutcomeStatus",
    "Outcomes",
    "Presence",
    "Priority",
    "QueueError",
    "QueueFull",
    "QueueUnavailable",
    "StartedEvent",
    "ToolCall",
    "Unrecorded",
    "WorkerInfo",
    "carried",
]


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
class Jobs(Protocol):
    """Delivery of jobs to workers: submit, lease, renew, release, begin, complete, cancel."""

    async def start(self) -> None:
        """Connect and start background work (reclaim); idempotent."""
        ...

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise `QueueUnavailable` when the queue cannot be used (readiness probe)."""
        ...

    async def submit(self, job: JobMessage) -> bool:
        """Enqueue `job`; raise `QueueFull` when the model's depth is at the bound. True when it
        was added, False when it was there already.

        Idempotent per (`job_id`, `attempt_base`) until the job's deadline: a second submit of the
        same job is a no-op. So a job whose recording outlived the process that was queueing it
        (a gateway killed between the job's row and the queue) can be submitted again by whoever
        finds it unsure, without ever being on the queue twice."""
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

    async def begin(self, lease: Lease) -> bool:
        """Report that `lease`'s attempt started (outcome STARTED, event STARTED), and in the same
        step ask whether the job was cancelled meanwhile: False means do not run it (report it
        CANCELLED). One round trip where it was two."""
        ...

    async def complete(self, lease: Lease, outcome: Outcome) -> None:
        """Report how `lease`'s attempt ended and acknowledge the delivery, in one step."""
        ...

    async def report(self, outcome: Outcome) -> None:
        """Report an outcome no lease holds (the gateway expiring a job no worker took)."""
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

    async def replay(self, job_id: str) -> bool:
        """Move a dead-lettered job back onto its queue with a fresh attempt count."""
        ...

    async def epoch(self) -> str:
        """An id of the queue's stored state; it changes when that state was lost (a Redis that
        restarted without persistence, a new in-process queue). Jobs recorded under another
        epoch are re-enqueued by the control plane's reconciler."""
        ...


@runtime_checkable
class Outcomes(Protocol):
    """How attempts ended, for the control plane's finalizer (at least once, until acknowledged)."""

    async def read_outcomes(self, consumer: str, count: int, timeout_s: float) -> list[Outcome]:
        """Outcomes not yet acknowledged, for the control plane's finalizer."""
        ...

    async def ack_outcomes(
        self, outcomes: Sequence[Outcome], replies: Mapping[str, Sequence[JobEvent]] | None = None
    ) -> None:
        """Acknowledge applied outcomes and, in the same step, publish `replies` (channel → events:
        what the finalizer tells the gateways holding the clients)."""
        ...


@runtime_checkable
class Events(Protocol):
    """Events to the gateway process that holds a job's client: one channel per process."""

    async def publish(self, reply_to: str, events: Sequence[JobEvent]) -> None:
        """Send events to the gateway process reading channel `reply_to`."""
        ...

    def read_events(self, reply_to: str) -> AsyncIterator[list[JobEvent]]:
        """Batches of events for channel `reply_to`, as they arrive; one reader per channel."""
        ...


@runtime_checkable
class Presence(Protocol):
    """Which workers are alive and which models they serve."""

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


@runtime_checkable
class Leadership(Protocol):
    """One holder at a time of a role among all processes on this queue."""

    async def lead(self, role: str, holder: str, ttl_s: float) -> bool:
        """Take or keep the lease on `role` for `holder`; True while `holder` holds it. One holder at
        a time among all processes on this queue (e.g. who exports cluster-wide metrics)."""
        ...


@runtime_checkable
class JobQueue(Jobs, Outcomes, Events, Presence, Leadership, Protocol):
    """Every role at once: what a backend implements (`memory` for embedded mode, `redis` for
    cluster mode). A part that needs one role takes that role's protocol."""
