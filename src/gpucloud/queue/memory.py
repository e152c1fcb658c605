"""`MemoryJobQueue`: the in-process JobQueue that embedded mode runs.

It keeps the whole protocol — bounded per-model queues with priority classes and the fairness
rule, leases that expire and are reclaimed with `attempt + 1`, dead-lettering after
`max_attempts`, outcomes that stay pending until acknowledged, per-channel event delivery and
cancellation — in memory of one process. It is not durable: a process restart forgets queued jobs,
which the control plane's reconciler re-enqueues from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field

import msgspec

from gpucloud.background import Background
from gpucloud.queue.memory_presence import MemoryPresence
from gpucloud.queue.protocol import (
    PRIORITIES_HIGH_FIRST,
    DeltaEvent,
    JobEvent,
    JobMessage,
    Lease,
    Outcome,
    OutcomeStatus,
    Priority,
    QueueFull,
    StartedEvent,
    carried,
)

# Outcomes read but not acknowledged this long are handed out again (a finalizer that failed).
_OUTCOME_REDELIVERY_S = 30.0


@dataclass(slots=True)
class _Entry:
    job: JobMessage
    deliveries: int = 0  # how many times this entry was leased in the current cycle


@dataclass(slots=True)
class _Held:
    entry: _Entry
    lease: Lease
    expires_at: float


@dataclass(slots=True)
class _ModelQueue:
    classes: dict[Priority, deque[_Entry]] = field(
        default_factory=lambda: {p: deque() for p in PRIORITIES_HIGH_FIRST}
    )
    reclaimed: deque[_Entry] = field(default_factory=deque)

    def waiting(self) -> int:
        return sum(len(q) for q in self.classes.values()) + len(self.reclaimed)


class MemoryJobQueue(MemoryPresence):
    """The JobQueue protocol in one process (see module docstring). It passes the messages of
    `queue.messages` as objects: the same types the Redis backend encodes with `queue.codec`."""

    def __init__(
        self,
        *,
        max_depth: int = 1000,
        lease_timeout_s: float = 15.0,
        max_attempts: int = 3,
        fair_every: int = 8,
    ) -> None:
        super().__init__()
        self._max_depth = max_depth
        self._lease_timeout_s = lease_timeout_s
        self._max_attempts = max_attempts
        self._fair_every = fair_every
        self._models: dict[str, _ModelQueue] = {}
        self._held: dict[str, _Held] = {}
        self._leased_count: dict[str, int] = {}
        self._work = asyncio.Condition()
        self._outcomes: deque[Outcome] = deque()
        self._pending_outcomes: dict[str, tuple[Outcome, float]] = {}
        self._outcome_ready = asyncio.Event()
        self._channels: dict[str, asyncio.Queue[list[JobEvent]]] = {}
        self._cancelled: dict[str, float] = {}
        self._cancel_watchers: set[asyncio.Queue[str]] = set()
        self._progress: dict[str, tuple[int, int]] = {}  # job_id → (completion, prompt) tokens sent
        self._dead: dict[str, JobMessage] = {}
        self._submitted: dict[tuple[str, int], float] = {}  # (job, attempt base) → marker's end
        self._reaper = Background("memory-queue-reaper", self._reap_forever)

    # lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        self._reaper.start()

    async def close(self) -> None:
        await self._reaper.close()

    async def ping(self) -> None:
        return None

    # jobs ----------------------------------------------------------------------------------

    async def submit(self, job: JobMessage) -> bool:
        if (marker := (job.job_id, job.attempt_base)) in self._submitted:
            return False  # on the queue already (the protocol's idempotent submit)
        queue = self._models.setdefault(job.model, _ModelQueue())
        if queue.waiting() >= self._max_depth:
            raise QueueFull(job.model, queue.waiting())
        queue.classes[job.priority].append(_Entry(job))
        self._submitted[marker] = job.submitted_until(time.time())
        async with self._work:
            self._work.notify_all()
        return True

    async def lease(self, worker_id: str, models: Sequence[str], count: int, timeout_s: float) -> list[Lease]:
        deadline = time.monotonic() + timeout_s
        async with self._work:
            while True:
                self._reclaim_expired()
                leases = self._take(worker_id, models, count)
                remaining = deadline - time.monotonic()
                if leases or remaining <= 0 or count <= 0:
                    return leases
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._work.wait(), remaining)

    def _take(self, worker_id: str, models: Sequence[str], count: int) -> list[Lease]:
        leases: list[Lease] = []
        while len(leases) < count:
            entry = self._next_entry(worker_id, models)
            if entry is None:
                break
            entry.deliveries += 1
            if entry.deliveries > self._max_attempts:
                self._dead_letter(entry)
                continue
            leases.append(self._hold(entry, worker_id))
        return leases

    def _next_entry(self, worker_id: str, models: Sequence[str]) -> _Entry | None:
        for model in models:
            queue = self._models.get(model)
            if queue is not None and queue.reclaimed:
                return queue.reclaimed.popleft()
        served = self._leased_count.get(worker_id, 0) + 1
        order: tuple[Priority, ...] = PRIORITIES_HIGH_FIRST
        if served % self._fair_every == 0:
            order = tuple(reversed(PRIORITIES_HIGH_FIRST))
        for priority in order:
            oldest = self._oldest(models, priority)
            if oldest is not None:
                self._leased_count[worker_id] = served
                return oldest.classes[priority].popleft()
        return None

    def _oldest(self, models: Sequence[str], priority: Priority) -> _ModelQueue | None:
        best: _ModelQueue | None = None
        for model in models:
            queue = self._models.get(model)
            if queue is None or not queue.classes[priority]:
                continue
            head = queue.classes[priority][0].job.enqueued_at
            if best is None or head < best.classes[priority][0].job.enqueued_at:
                best = queue
        return best

    def _hold(self, entry: _Entry, worker_id: str) -> Lease:
        lease = Lease(
            job=entry.job,
            attempt=entry.job.attempt_base + entry.deliveries,
            worker_id=worker_id,
            token=uuid.uuid4().hex,
        )
        self._held[lease.token] = _Held(entry, lease, time.monotonic() + self._lease_timeout_s)
        return lease

    async def renew(self, leases: Sequence[Lease]) -> list[Lease]:
        lost: list[Lease] = []
        expires = time.monotonic() + self._lease_timeout_s
        for lease in leases:
            held = self._held.get(lease.token)
            if held is None:
                lost.append(lease)
            else:
                held.expires_at = expires
        return lost

    async def release(self, lease: Lease) -> None:
        held = self._held.pop(lease.token, None)
        if held is None:
            return
        held.entry.deliveries -= 1  # a release is not an attempt
        self._models.setdefault(lease.job.model, _ModelQueue()).reclaimed.appendleft(held.entry)
        async with self._work:
            self._work.notify_all()

    def _reclaim_expired(self) -> None:
        now = time.monotonic()
        for token, held in list(self._held.items()):
            if held.expires_at > now:
                continue
            del self._held[token]
            job = held.entry.job
            sent = self._progress.get(job.job_id)
            if job.stream and sent and sent[0] > 0:
                self._interrupt(held.lease, sent)
            else:
                self._models.setdefault(job.model, _ModelQueue()).reclaimed.append(held.entry)

    def _interrupt(self, lease: Lease, sent: tuple[int, int]) -> None:
        self._add_outcome(
            Outcome(
                job_id=lease.job.job_id,
                attempt=lease.attempt,
                status=OutcomeStatus.INTERRUPTED,
                reply_to=lease.job.reply_to,
                model=lease.job.model,
                worker_id=lease.worker_id,
                completion_tokens=sent[0],
                prompt_tokens=sent[1],
                error="the worker was lost after the stream had started",
                error_code="worker_lost",
                at=time.time(),
                job=carried(lease.job),
            )
        )

    def _dead_letter(self, entry: _Entry) -> None:
        job = entry.job
        attempts = job.attempt_base + entry.deliveries - 1
        self._dead[job.job_id] = job
        self._add_outcome(
            Outcome(
                job_id=job.job_id,
                attempt=attempts,
                status=OutcomeStatus.DEAD,
                reply_to=job.reply_to,
                model=job.model,
                error=f"delivered {entry.deliveries - 1} times without finishing",
                error_code="dead_lettered",
                at=time.time(),
                job=carried(job),
            )
        )

    async def _reap_forever(self) -> None:
        interval = max(0.05, min(1.0, self._lease_timeout_s / 4))
        while True:
            await asyncio.sleep(interval)
            async with self._work:
                before = len(self._held)
                self._reclaim_expired()
                if len(self._held) != before:
                    self._work.notify_all()
            self._prune_cancelled()
            self._prune_submitted()

    # outcomes ------------------------------------------------------------------------------

    async def begin(self, lease: Lease) -> bool:
        self._add_outcome(
            Outcome(
                job_id=lease.job.job_id,
                attempt=lease.attempt,
                status=OutcomeStatus.STARTED,
                reply_to=lease.job.reply_to,
                model=lease.job.model,
                worker_id=lease.worker_id,
                at=time.time(),
                job=carried(lease.job),
            )
        )
        event = StartedEvent(lease.job.job_id, lease.attempt, lease.worker_id)
        await self.publish(lease.job.reply_to, [event])
        return not await self.is_cancelled(lease.job.job_id)

    async def complete(self, lease: Lease, outcome: Outcome) -> None:
        held = self._held.get(lease.token)
        if held is not None and held.lease.worker_id == lease.worker_id:
            del self._held[lease.token]
        self._progress.pop(lease.job.job_id, None)
        outcome.job = carried(lease.job)
        self._add_outcome(outcome)

    async def report(self, outcome: Outcome) -> None:
        self._add_outcome(outcome)

    def _add_outcome(self, outcome: Outcome) -> None:
        outcome.outcome_id = uuid.uuid4().hex
        self._outcomes.append(outcome)
        self._outcome_ready.set()

    async def read_outcomes(self, consumer: str, count: int, timeout_s: float) -> list[Outcome]:
        if not self._outcomes and not self._stale_outcomes():
            self._outcome_ready.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._outcome_ready.wait(), timeout_s)
        batch = self._stale_outcomes()[:count]
        now = time.monotonic()
        while self._outcomes and len(batch) < count:
            batch.append(self._outcomes.popleft())
        for outcome in batch:
            self._pending_outcomes[outcome.outcome_id] = (outcome, now)
        return batch

    def _stale_outcomes(self) -> list[Outcome]:
        cutoff = time.monotonic() - _OUTCOME_REDELIVERY_S
        return [o for o, at in self._pending_outcomes.values() if at < cutoff]

    async def ack_outcomes(
        self, outcomes: Sequence[Outcome], replies: Mapping[str, Sequence[JobEvent]] | None = None
    ) -> None:
        for outcome in outcomes:
            self._pending_outcomes.pop(outcome.outcome_id, None)
        for reply_to, events in (replies or {}).items():
            await self.publish(reply_to, events)

    # events --------------------------------------------------------------------------------

    async def publish(self, reply_to: str, events: Sequence[JobEvent]) -> None:
        for event in events:
            if isinstance(event, DeltaEvent):
                done, prompt = self._progress.get(event.job_id, (0, 0))
                self._progress[event.job_id] = (done + event.tokens, max(prompt, event.prompt_tokens))
        channel = self._channels.get(reply_to)
        if channel is not None and events:
            channel.put_nowait(list(events))

    async def read_events(self, reply_to: str) -> AsyncIterator[list[JobEvent]]:
        channel = self._channels.setdefault(reply_to, asyncio.Queue())
        try:
            while True:
                batch = await channel.get()
                while not channel.empty():  # hand over everything that is there in one batch
                    batch.extend(channel.get_nowait())
                yield batch
        finally:
            self._channels.pop(reply_to, None)

    # cancellation --------------------------------------------------------------------------

    async def cancel(self, job_id: str) -> None:
        self._cancelled[job_id] = time.monotonic()
        for watcher in self._cancel_watchers:
            watcher.put_nowait(job_id)

    async def is_cancelled(self, job_id: str) -> bool:
        return job_id in self._cancelled

    async def watch_cancellations(self) -> AsyncIterator[str]:
        watcher: asyncio.Queue[str] = asyncio.Queue()
        self._cancel_watchers.add(watcher)
        try:
            while True:
                yield await watcher.get()
        finally:
            self._cancel_watchers.discard(watcher)

    def _prune_submitted(self) -> None:
        now = time.time()
        self._submitted = {marker: until for marker, until in self._submitted.items() if until >= now}

    def _prune_cancelled(self) -> None:
        # A cancel mark matters only while the job may still be delivered; an hour is far past that.
        cutoff = time.monotonic() - 3600.0
        for job_id, at in list(self._cancelled.items()):
            if at < cutoff:
                del self._cancelled[job_id]

    # inspection ----------------------------------------------------------------------------

    async def depth(self, model: str) -> dict[Priority, int]:
        queue = self._models.get(model)
        if queue is None:
            return {p: 0 for p in PRIORITIES_HIGH_FIRST}
        counts = {p: len(queue.classes[p]) for p in PRIORITIES_HIGH_FIRST}
        for entry in queue.reclaimed:
            counts[entry.job.priority] += 1
        return counts

    async def dead_letters(self, limit: int = 100) -> list[JobMessage]:
        return list(self._dead.values())[:limit]

    async def replay(self, job_id: str) -> bool:
        job = self._dead.pop(job_id, None)
        if job is None:
            return False
        attempts = job.attempt_base + self._max_attempts
        replayed = msgspec.structs.replace(job, attempt_base=attempts)
        self._models.setdefault(job.model, _ModelQueue()).classes[job.priority].append(_Entry(replayed))
        async with self._work:
            self._work.notify_all()
        return True
