"""`Finalizer`: the control plane's consumer of outcomes, which ends each job exactly once.

It reads a batch of outcomes from the queue and applies it as one operation of the group-commit
writer (`db.writer`): every outcome passes the fence (`jobs.fence`), and each accepted ending writes
the job's single usage row in the same transaction. Only after the commit does it settle the
admission reservations, acknowledge the outcomes, and tell the gateway holding each client (a FINAL
or ERROR event) — so a client never gets a result that was not billed, nor one from an attempt
that lost the fence. Any gateway replica runs one; the queue hands each outcome to one of them.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, insert, select

from gpucloud.admission import Admission, Pricing, Ticket
from gpucloud.background import Background
from gpucloud.db import Database, Job, UsageRecord
from gpucloud.db.models import utcnow
from gpucloud.jobs.fence import ENDINGS, Ended, Fence
from gpucloud.jobs.kept import KeptResults
from gpucloud.jobs.seen import Seen
from gpucloud.observability.metrics import Metrics
from gpucloud.queue.protocol import (
    Choice,
    ErrorEvent,
    FinalEvent,
    JobEvent,
    Outcome,
    Outcomes,
    OutcomeStatus,
    QueueError,
)
from gpucloud.settings import ModelPrice

log = logging.getLogger(__name__)
# Times the finalizer applies a batch whose transaction failed before leaving it to redelivery.
_APPLY_TRIES = 3
Told = tuple[str, JobEvent]  # (reply channel, event) for the gateway holding the client


class Finalizer:
    """Reads outcomes from the queue and applies them to the database (see module docstring)."""

    def __init__(
        self,
        db: Database,
        queue: Outcomes,
        consumer: str,
        *,
        batch: int = 256,
        metrics: Metrics | None = None,
        admission: Admission | None = None,
        start_linger_s: float = 0.25,
        kept: KeptResults | None = None,
    ) -> None:
        self._db = db
        self._kept = kept
        self._fence = Fence("sqlite" if db.is_sqlite else "postgresql")
        self._start_linger_s = start_linger_s
        self._starts: dict[str, tuple[Outcome, float]] = {}  # job id → (held STARTED, when read)
        self._insert_usage = insert(UsageRecord)
        self._metrics = metrics
        self._admission = admission
        self._pricing = admission.pricing if admission is not None else Pricing({}, ModelPrice())
        self._queue = queue
        self._consumer = consumer
        self._batch = batch
        self._loop = Background("finalizer", self._run)

    async def start(self) -> None:
        self._loop.start()

    async def close(self) -> None:
        await self._loop.close()

    async def _run(self) -> None:
        held: list[Outcome] = []  # a batch whose transaction failed: applied again first
        tries = 0
        while True:
            try:
                if not held:
                    held = await self._next_batch()
                if held:
                    await self.apply(held)
                held, tries = [], 0
            except QueueError as exc:
                log.warning("finalizer: queue unavailable, retrying: %s", exc)
                held, tries = [], 0  # unacknowledged: the queue delivers them again
                self._starts.clear()
                await asyncio.sleep(0.5)
            except Exception:
                # A database hiccup must not kill the consumer. The batch is applied again at once
                # (the queue would redeliver it only after its redelivery time, and its clients
                # would wait that long); after a few tries it is left to that redelivery. The
                # fence makes re-applying harmless.
                log.exception("finalizer: applying outcomes failed, retrying")
                tries += 1
                if tries >= _APPLY_TRIES:
                    held, tries = [], 0
                await asyncio.sleep(0.5)

    async def _next_batch(self) -> list[Outcome]:
        """The next outcomes to apply. A STARTED outcome waits up to `start_linger_s` for its job's
        ending: a short job then costs one write instead of two (the ending's statement records the
        start too). Held outcomes are unacknowledged, so a crash loses none of them."""
        now = time.monotonic()
        timeout = 1.0
        if self._starts:
            timeout = max(0.0, min(at for _, at in self._starts.values()) + self._start_linger_s - now)
        batch: list[Outcome] = []
        for outcome in await self._queue.read_outcomes(self._consumer, self._batch, timeout):
            if outcome.status is OutcomeStatus.STARTED and self._start_linger_s > 0:
                previous = self._starts.get(outcome.job_id)
                if previous is not None:
                    batch.append(previous[0])  # an older attempt's start: no reason to wait for it
                self._starts[outcome.job_id] = (outcome, time.monotonic())
            else:
                batch.append(outcome)
        # Released starts go first: applied before a stale attempt's ending of the same job, a newer
        # start still fences that ending out (apply keeps this order within a job).
        starts: list[Outcome] = []
        for outcome in batch:
            held = self._starts.pop(outcome.job_id, None)
            if held is not None:
                starts.append(held[0])
        due = time.monotonic() - self._start_linger_s
        for job_id, (outcome, at) in list(self._starts.items()):
            if at <= due:
                starts.append(outcome)
                del self._starts[job_id]
        return starts + batch

    async def apply(self, outcomes: Sequence[Outcome]) -> None:
        """Apply and commit (one group-commit operation), settle, then acknowledge and notify."""
        if self._kept is not None:
            await self._kept.keep(outcomes)  # before the commit: a row never names a missing object
        told, seen = await self._db.writer.write(functools.partial(self._apply, list(outcomes)))
        for observation in seen:
            observation.log()
            if self._metrics is not None:
                observation.record(self._metrics)
        if self._admission is not None:
            for observation in seen:
                if observation.ticket is not None:
                    o = observation.outcome
                    await self._admission.settle(
                        observation.ticket, o.prompt_tokens, o.completion_tokens, observation.cost_micros
                    )
        by_channel: dict[str, list[JobEvent]] = {}
        for reply_to, event in told:
            if reply_to:
                by_channel.setdefault(reply_to, []).append(event)
        await self._queue.ack_outcomes(outcomes, by_channel)  # one step: acknowledged, then told

    def _apply(self, outcomes: list[Outcome], connection: Connection) -> tuple[list[Told], list[Seen]]:
        """The transaction's body (synchronous Core statements). It returns what to do after the
        commit instead of recording it, so a batch that runs again records nothing twice."""
        told: list[Told] = []
        seen: list[Seen] = []
        usage: list[dict[str, Any]] = []
        ending = _endings_by_job(outcomes)
        # In job id order (stable: a job's own outcomes keep theirs), so that finalizers of several
        # gateways lock job rows in one order and cannot deadlock each other.
        effective = [
            o  # a STARTED that the same batch's ending of the same attempt records too is skipped
            for o in sorted(outcomes, key=lambda o: o.job_id)
            if not (o.status is OutcomeStatus.STARTED and ending.get(o.job_id, -1) >= o.attempt)
        ]
        inserted = self._fence.insert_endings(connection, _lone_new_endings(effective))
        for outcome in effective:
            ended = inserted.get(outcome.job_id)
            if ended is not None:
                event: JobEvent | None = self._accept(outcome, ended, seen, usage)
            else:
                event = self._apply_one(connection, outcome, seen, usage)
            if event is not None:
                told.append((outcome.reply_to, event))
        if usage:
            connection.execute(self._insert_usage, usage)  # the batch's ledger rows, one statement
        return told, seen

    def _apply_one(
        self, connection: Connection, outcome: Outcome, seen: list[Seen], usage: list[dict[str, Any]]
    ) -> JobEvent | None:
        if outcome.status is OutcomeStatus.STARTED:
            if self._fence.record_start(connection, outcome) and outcome.attempt > 1:
                seen.append(Seen(outcome, retry=True))
            return None
        job = self._fence.end(connection, outcome)
        if job is None:
            return self._reject(connection, outcome, seen)
        return self._accept(outcome, job, seen, usage)

    def _accept(
        self, outcome: Outcome, job: Ended, seen: list[Seen], usage: list[dict[str, Any]]
    ) -> JobEvent:
        """An accepted ending: its ledger row (written with the batch), what to log, settle, tell."""
        latency_ms = (utcnow() - job.created_at).total_seconds() * 1000.0
        cost = self._pricing.cost_micros(
            outcome.model, outcome.prompt_tokens, outcome.completion_tokens, job.batch
        )
        seen.append(
            Seen(
                outcome,
                created_at=job.created_at.timestamp(),
                latency_ms=latency_ms,
                ticket=Ticket.from_dict(job.admission) if job.admission else None,
                cost_micros=cost,
            )
        )
        usage.append(usage_row(outcome, key_id=job.key_id, latency_ms=latency_ms, cost=cost))
        return _event(outcome, latency_ms)

    def _reject(self, connection: Connection, outcome: Outcome, seen: list[Seen]) -> JobEvent | None:
        """A refused ending. If it is the accepted ending delivered again (its first application
        committed, but the finalizer failed before acknowledging it), tell the client again and
        settle again (both are idempotent): else a failure between the commit and the publish
        would leave the client waiting for its whole request timeout."""
        t = Job.__table__.c
        row = connection.execute(
            select(t.status, t.attempts, t.created_at, t.admission, t.idempotency_key).where(
                t.id == outcome.job_id
            )
        ).first()
        if row is None or row.status != ENDINGS[outcome.status].value or row.attempts != outcome.attempt:
            seen.append(Seen(outcome, rejected=True))
            log.info(
                "finalizer: rejected outcome",
                extra={"job_id": outcome.job_id, "attempt": outcome.attempt, "status": outcome.status.value},
            )
            return None
        ticket = Ticket.from_dict(row.admission) if row.admission else None
        batch = Ended(row.status, row.created_at, row.admission, row.idempotency_key).batch
        cost = self._pricing.cost_micros(
            outcome.model, outcome.prompt_tokens, outcome.completion_tokens, batch
        )
        seen.append(Seen(outcome, repeat=True, ticket=ticket, cost_micros=cost))
        return _event(outcome, (utcnow() - row.created_at).total_seconds() * 1000.0)


def _event(outcome: Outcome, latency_ms: float) -> JobEvent:
    """What the gateway holding the client is told about an accepted ending: the usage and, for a
    job not streamed, its choices. A streamed job's client got the text with the deltas, so its
    FINAL carries each choice's index and finish reason only."""
    if outcome.status is OutcomeStatus.COMPLETED:
        choices = outcome.choices
        if outcome.stream:
            choices = [Choice(c.index, finish_reason=c.finish_reason) for c in choices]
        return FinalEvent(
            outcome.job_id,
            outcome.attempt,
            choices,
            outcome.prompt_tokens,
            outcome.completion_tokens,
            latency_ms,
        )
    return ErrorEvent(
        outcome.job_id,
        outcome.attempt,
        outcome.status,
        outcome.error,
        outcome.error_code,
        outcome.prompt_tokens,
        outcome.completion_tokens,
        latency_ms,
    )


def _lone_new_endings(outcomes: list[Outcome]) -> list[Outcome]:
    """Endings of unrecorded jobs that are their job's only outcome in the batch: the common case
    of a short synchronous job, whose row can be inserted ended with the others in one statement
    (with any other outcome of the same job in the batch, the order between them matters)."""
    count = Counter(o.job_id for o in outcomes)
    return [
        o
        for o in outcomes
        if o.job is not None and o.status is not OutcomeStatus.STARTED and count[o.job_id] == 1
    ]


def _endings_by_job(outcomes: Sequence[Outcome]) -> dict[str, int]:
    """job id → the latest attempt that a terminal outcome in this batch reports."""
    endings: dict[str, int] = {}
    for outcome in outcomes:
        if outcome.status is not OutcomeStatus.STARTED:
            endings[outcome.job_id] = max(endings.get(outcome.job_id, -1), outcome.attempt)
    return endings


def usage_row(outcome: Outcome, *, key_id: str, latency_ms: float, cost: int) -> dict[str, Any]:
    """The job's ledger row: one per job (the job id is unique in the ledger)."""
    now = utcnow()
    return {
        "job_id": outcome.job_id,
        "key_id": key_id,
        "model": outcome.model,
        "status": ENDINGS[outcome.status].value,
        "prompt_tokens": outcome.prompt_tokens,
        "completion_tokens": outcome.completion_tokens,
        "total_tokens": outcome.prompt_tokens + outcome.completion_tokens,
        "cost_micros": cost,
        "latency_ms": latency_ms,
        "ttft_ms": outcome.ttft_ms,
        "created_at": now,
        "day": now.strftime("%Y-%m-%d"),
        "hour": now.strftime("%Y-%m-%dT%H"),
    }
