"""The messages that cross the queue: jobs, leases, outcomes, events, worker announcements.

Each is a `msgspec.Struct`: typed, checked once when decoded (`gpucloud.queue.codec`, the one
codec both backends use: the Redis backend stores them as JSON, the in-process one passes the
objects themselves). Nobody builds or reads them as dicts. The request a job carries is the
engine-neutral `GenerationRequest`, validated once by the gateway (docs/architecture.md §1, §12).

Events are one Struct per kind, tagged by `kind` on the wire (`JobEvent` is their union), so a
reader narrows with `isinstance` and gets typed fields.
"""

from __future__ import annotations

import enum
from typing import Any, ClassVar

import msgspec

from gpucloud.engines.protocol import GenerationRequest, TokenLogprob, ToolCallDelta

__all__ = [
    "PRIORITIES_HIGH_FIRST",
    "Choice",
    "DeltaEvent",
    "ErrorEvent",
    "EventKind",
    "FinalEvent",
    "JobEvent",
    "JobMessage",
    "Lease",
    "Outcome",
    "OutcomeStatus",
    "Priority",
    "StartedEvent",
    "ToolCall",
    "Unrecorded",
    "WorkerInfo",
    "carried",
]


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
    """What a `JobEvent` says to the gateway holding the client (its tag on the wire)."""

    STARTED = "started"  # an attempt began on a worker
    DELTA = "delta"  # output of one choice
    FINAL = "final"  # the accepted result, after the ledger write
    ERROR = "error"  # the job ended without a result


class OutcomeStatus(enum.StrEnum):
    """How an attempt ended, as its worker (or the queue, for DEAD) reports it."""

    STARTED = "started"  # not an end: the attempt began (fences older attempts)
    COMPLETED = "completed"  # every choice finished
    CANCELLED = "cancelled"  # the client went away or asked; tokens generated so far are billed
    FAILED = "failed"  # the engine failed; `error` says why
    EXPIRED = "expired"  # the job waited in the queue past its deadline and never ran
    DEAD = "dead"  # delivered `max_attempts` times without an outcome: dead-lettered
    INTERRUPTED = "interrupted"  # a streamed attempt died after its first token: billed, not retried


class Unrecorded(msgspec.Struct, frozen=True):
    """What the control plane needs to write the row of a job that the gateway queued without one.

    A synchronous request has no row until it starts or ends: its client waits on the gateway, and
    nothing else needs the row before then, so the gateway spends no database write before
    queueing. The finalizer writes the row, with the job's STARTED or with its ending, from the
    job message the outcome carries (`Outcome.job`). Asynchronous and idempotent jobs are recorded
    before they are queued (clients poll them; repeats find them), and carry no `Unrecorded`.
    """

    key_id: str
    endpoint: str  # the request kind: "chat", "completion", "embedding"
    # Admission's ticket, settled when the job ends: admission's own document, opaque to the queue.
    admission: dict[str, Any] | None = None


class JobMessage(msgspec.Struct):
    """A job as the queue carries it.

    Every field is always encoded: the Lua scripts read `job_id`, `model`, `reply_to`, `stream`,
    `attempt_base` and `unrecorded` from the stored JSON (`queue/redis/scripts.py`).
    """

    job_id: str
    model: str
    priority: Priority
    request: GenerationRequest
    reply_to: str
    stream: bool = False
    enqueued_at: float = 0.0
    deadline: float = 0.0  # the job must start by then, else it is EXPIRED
    request_id: str = ""
    # Attempts already spent before this delivery cycle (a replayed dead letter keeps counting up,
    # so the database's attempt fence still rejects results of the old attempts).
    attempt_base: int = 0
    unrecorded: Unrecorded | None = None  # set when no database row exists yet (see Unrecorded)

    def submitted_until(self, now: float) -> float:
        """Until when a second submit of this job (at this attempt base) is a no-op
        (`Jobs.submit`): its deadline, past which it could not start anyway; a minute when it
        has none."""
        return self.deadline if self.deadline > 0 else now + 60.0


class Lease(msgspec.Struct):
    """One delivery of a job to a worker. `token` is the implementation's handle for it."""

    job: JobMessage
    attempt: int  # job.attempt_base + 1 for the first delivery, +1 for each reclaim
    worker_id: str
    token: str


class ToolCall(msgspec.Struct):
    """One whole tool call of a choice (its streamed pieces joined)."""

    id: str | None = None
    name: str | None = None
    arguments: str = ""


class Choice(msgspec.Struct):
    """One choice of a result. A streamed job's FINAL event carries its choices without text, tool
    calls or log probabilities: the client got those with the deltas. Every field is encoded: the
    response bodies read a stored choice's `text` as it is."""

    index: int
    text: str = ""
    finish_reason: str | None = None
    tool_calls: list[ToolCall] = msgspec.field(default_factory=list)
    logprobs: list[TokenLogprob] = msgspec.field(default_factory=list)
    embedding_base64: str | None = None  # an embedding job's vector (see `worker.embedding`)


class Outcome(msgspec.Struct, omit_defaults=True):
    """An attempt's report to the control plane. `outcome_id` is set by `read_outcomes`.

    Defaults may be absent on the wire: the lease script writes DEAD and INTERRUPTED outcomes
    itself (without `choices`, whose empty list cjson would write as an object).
    """

    job_id: str
    attempt: int
    status: OutcomeStatus
    reply_to: str = ""
    model: str = ""
    worker_id: str = ""
    choices: list[Choice] = msgspec.field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    ttft_ms: float | None = None
    duration_ms: float | None = None  # time on the worker, start of attempt to end
    error: str | None = None
    error_code: str | None = None
    at: float = 0.0
    stream: bool = False  # the job was streamed: its FINAL event then carries no text
    outcome_id: str = ""  # the queue's handle, never encoded (the stream entry id in Redis)
    # Set by the finalizer, never by the worker: where a result too large for the job's row was
    # written in object storage (`jobs.kept`), for the fence to record instead of the vectors.
    kept_at: str = ""
    # The job itself, only when it has no database row yet (`JobMessage.unrecorded`): the finalizer
    # writes the row from it. Set by the queue from the lease, never by the worker.
    job: JobMessage | None = None


def carried(job: JobMessage) -> JobMessage | None:
    """What an outcome of `job` carries back: the job when it has no row yet (`Outcome.job`)."""
    return job if job.unrecorded is not None else None


class StartedEvent(msgspec.Struct, tag_field="kind", tag="started"):
    """An attempt began on a worker."""

    kind: ClassVar[EventKind] = EventKind.STARTED
    job_id: str
    attempt: int
    worker_id: str = ""


class DeltaEvent(msgspec.Struct, tag_field="kind", tag="delta", omit_defaults=True):
    """Output of one choice of a streamed job."""

    kind: ClassVar[EventKind] = EventKind.DELTA
    job_id: str
    attempt: int
    index: int = 0
    text: str = ""
    tokens: int = 0  # completion tokens this piece carries (the queue counts them as progress)
    finish_reason: str | None = None
    prompt_tokens: int = 0  # the prompt as counted when the job started
    tool_calls: list[ToolCallDelta] = msgspec.field(default_factory=list)
    logprobs: list[TokenLogprob] = msgspec.field(default_factory=list)


class FinalEvent(msgspec.Struct, tag_field="kind", tag="final"):
    """The accepted result, published after the ledger write: what was billed is what is told."""

    kind: ClassVar[EventKind] = EventKind.FINAL
    job_id: str
    attempt: int
    choices: list[Choice] = msgspec.field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0


class ErrorEvent(msgspec.Struct, tag_field="kind", tag="error"):
    """The job ended without a result (`status` says how; `error_code` for the client's error)."""

    kind: ClassVar[EventKind] = EventKind.ERROR
    job_id: str
    attempt: int
    status: OutcomeStatus = OutcomeStatus.FAILED
    error: str | None = None
    error_code: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0


JobEvent = StartedEvent | DeltaEvent | FinalEvent | ErrorEvent


class WorkerInfo(msgspec.Struct):
    """A worker's announcement: which models it serves and how busy it is."""

    worker_id: str
    models: list[str]
    slots: int
    running: int = 0
    at: float = 0.0  # when it was announced
    running_by_model: dict[str, int] = msgspec.field(default_factory=dict)  # the per-replica load
    capabilities: dict[str, dict[str, bool]] = msgspec.field(default_factory=dict)  # model → its engine's
