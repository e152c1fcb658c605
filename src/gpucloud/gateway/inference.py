"""The inference path of the gateway: validate → record the job → queue it → answer.

Every request goes through the queue (docs/architecture.md §1). A non-streamed request waits for the FINAL
event (sent by the finalizer after the ledger write); a streamed one waits for the first event
before it commits to a 200, so that errors before the first token keep their HTTP status, then
relays deltas as SSE. A client that goes away cancels its job.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy.exc import IntegrityError
from starlette.requests import Request

from gpucloud.admission import Ticket, counts_tokens, rate_headers
from gpucloud.db import Job, JobStatus
from gpucloud.engines.protocol import GenerationRequest, RequestKind
from gpucloud.engines.tokenizer import Tokenizer
from gpucloud.errors import (
    Conflict,
    InvalidRequest,
    NotFound,
    Overloaded,
    PermissionDenied,
    Unavailable,
)
from gpucloud.gateway.generation import build_generation
from gpucloud.gateway.job_errors import error_of, stored_error
from gpucloud.gateway.schemas import ChatCompletionRequest, CompletionRequest
from gpucloud.jobs import NewJob, new_job_id
from gpucloud.jobs.store import request_document, stored_request
from gpucloud.keys import Principal
from gpucloud.queue.protocol import (
    ErrorEvent,
    EventKind,
    FinalEvent,
    JobEvent,
    JobMessage,
    Outcome,
    OutcomeStatus,
    Priority,
    QueueFull,
    QueueUnavailable,
    Unrecorded,
    carried,
)
from gpucloud.queue.router import ClientGone, JobWatch
from gpucloud.reconciler import deadline_at
from gpucloud.runtime import Runtime

# Extra time the gateway gives a job past its queue deadline before giving up on it itself: the
# worker that leases an expired job reports it, and that report should win the race.
_START_GRACE_S = 5.0
PRIORITY_HEADER = "x-gpucloud-priority"
IDEMPOTENCY_HEADER = "idempotency-key"


def idempotency_key(request: Request) -> str | None:
    value = request.headers.get(IDEMPOTENCY_HEADER)
    if value is None:
        return None
    value = value.strip()
    if not value or len(value) > 255:
        raise InvalidRequest("Idempotency-Key must be 1 to 255 characters.", param="Idempotency-Key")
    if value.startswith("batch:"):  # reserved for Batch API requests, which are billed at their own price
        raise InvalidRequest("Idempotency-Key may not start with 'batch:'.", param="Idempotency-Key")
    return value


@dataclass(slots=True)
class Submitted:
    """A job on the queue and the watch over its events."""

    job_id: str
    kind: RequestKind
    model: str
    created: int
    n: int
    watch_: JobWatch | None
    started_at: float | None = None
    repeat: bool = False  # an idempotent repeat: the job exists already, there is nothing to watch
    ticket: Ticket | None = None  # what admission reserved (its decision makes the rate-limit headers)
    message: JobMessage | None = None  # what was queued (an expiry of an unrecorded job carries it)

    def headers(self) -> dict[str, str]:
        return rate_headers(self.ticket.decision if self.ticket is not None else None)

    @property
    def watch(self) -> JobWatch:
        if self.watch_ is None:
            raise RuntimeError("a repeated request has no event watch")
        return self.watch_


class Inference:
    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime
        self._limits = runtime.settings.limits
        self._queue_settings = runtime.settings.queue
        self._tokenizer = Tokenizer()

    # admission ------------------------------------------------------------------------------

    def generation(self, body: ChatCompletionRequest | CompletionRequest) -> GenerationRequest:
        """The engine-neutral request (see `gateway.generation`), for the model's capabilities."""
        return build_generation(body, self._limits, self._rt.registry.capabilities(body.model))

    @staticmethod
    def priority(principal: Principal, requested: str | None, header: str | None) -> Priority:
        """The key's default class, or a requested one no higher than the key's ceiling (else 403)."""
        value = header or requested
        if value is None:
            return principal.default_priority
        try:
            priority = Priority(value.strip().lower())
        except ValueError:
            raise InvalidRequest("priority must be one of high, normal, low.", param="priority") from None
        if priority.rank < principal.max_priority.rank:
            raise PermissionDenied(
                f"This API key may not use priority '{priority.value}' (its ceiling is "
                f"'{principal.max_priority.value}').",
                param="priority",
                code="priority_not_allowed",
            )
        return priority

    async def submit(
        self,
        principal: Principal,
        generation: GenerationRequest,
        *,
        stream: bool,
        priority: Priority,
        request_id: str,
        idempotency_key: str | None = None,
        max_wait_s: float | None = None,
        asynchronous: bool = False,
    ) -> Submitted:
        """Queue a job; with an idempotency key already used, return that job instead.

        A synchronous job is queued without a database row (`queue.protocol.Unrecorded`): its
        client waits here, so nothing needs the row before the finalizer writes it with the job's
        start or ending. An asynchronous job (polled later) or an idempotent one (found by repeats)
        is recorded first.
        """
        self._rt.registry.resolve(principal, generation.model)
        if idempotency_key is not None:
            existing = await self._rt.jobs.find_idempotent(principal.key_id, idempotency_key)
            if existing is not None:
                return self._repeat(existing, generation)
        job_id = new_job_id()
        ticket = await self._admit(principal, generation, job_id)
        now = time.time()
        message = JobMessage(
            job_id,
            generation.model,
            priority,
            generation,  # validated by the route's model: the worker takes it as is (§12)
            self._rt.router.reply_to,
            stream=stream,
            enqueued_at=now,
            deadline=now + (max_wait_s or self._queue_settings.max_wait_s),
            request_id=request_id,
        )
        try:
            if asynchronous or idempotency_key is not None:
                return await self._record_and_queue(principal, message, ticket, idempotency_key)
            message.unrecorded = Unrecorded(principal.key_id, generation.kind, ticket.to_dict())
            return await self._queue(message, ticket, generation.n)
        except BaseException:
            await self._rt.admission.abandon(ticket)  # it never reached the queue: nothing was used
            raise

    async def _admit(self, principal: Principal, generation: GenerationRequest, job_id: str) -> Ticket:
        # Counting the prompt costs a tokenizer pass: only limits that reserve tokens need it.
        prompt_tokens = self.prompt_tokens(generation) if counts_tokens(principal) else 0
        completions = 0 if generation.kind == "embedding" else generation.n  # embeddings generate none
        return await self._rt.admission.admit(
            principal, generation.model, job_id, prompt_tokens, generation.max_tokens, completions
        )

    def prompt_tokens(self, generation: GenerationRequest) -> int:
        """The prompt as admission counts it (cl100k); the engine's own count is what is billed."""
        if generation.kind == "chat":
            return self._tokenizer.count_chat(generation.messages or [])
        if generation.kind == "embedding":
            return sum(self._tokenizer.count(text) for text in generation.input or ())
        return self._tokenizer.count(generation.prompt or "")

    async def _queue(self, message: JobMessage, ticket: Ticket, n: int) -> Submitted:
        """Watch the job's events (before it can produce any), then put it on the queue."""
        watch = self._rt.router.watch(message.job_id)
        try:
            await self._enqueue(message)
        except BaseException:
            watch.close()
            raise
        kind: RequestKind = message.request.kind
        return Submitted(
            message.job_id,
            kind,
            message.model,
            int(message.enqueued_at),
            n,
            watch,
            ticket=ticket,
            message=message,
        )

    async def _record_and_queue(
        self, principal: Principal, message: JobMessage, ticket: Ticket, idempotency_key: str | None
    ) -> Submitted:
        epoch = await self._rt.reconciler.current_epoch()
        try:
            await self._rt.jobs.create(
                NewJob(
                    admission=ticket.to_dict(),
                    queue_epoch=epoch,
                    reply_to=message.reply_to,
                    deadline_at=deadline_at(message.deadline),
                    id=message.job_id,
                    key_id=principal.key_id,
                    model=message.model,
                    endpoint=message.request.kind,
                    priority=message.priority.value,
                    stream=message.stream,
                    request=request_document(message.request),
                    request_id=message.request_id,
                    idempotency_key=idempotency_key,
                )
            )
        except IntegrityError:  # the same idempotency key, concurrently: follow the winner
            existing = await self._rt.jobs.find_idempotent(principal.key_id, idempotency_key or "")
            if existing is None:
                raise
            await self._rt.admission.abandon(ticket)
            return self._repeat(existing, message.request)
        try:
            return await self._queue(message, ticket, message.request.n)
        except BaseException:
            await self._rt.jobs.discard(message.job_id)
            raise

    def _repeat(self, existing: Job, generation: GenerationRequest) -> Submitted:
        if stored_request(existing.request) != generation:
            raise Conflict(
                "This Idempotency-Key was already used with a different request.",
                code="idempotency_key_reused",
            )
        kind: RequestKind = "chat" if existing.endpoint == "chat" else "completion"
        return Submitted(
            existing.id,
            kind,
            existing.model,
            int(existing.created_at.timestamp()),
            int(existing.request.get("n") or 1),
            None,
            repeat=True,
        )

    async def stored_outcome(self, job: Submitted) -> dict[str, Any]:
        """For a repeated idempotent request: wait until the original job ended, return its result."""
        deadline = time.monotonic() + self._queue_settings.request_timeout_s
        while True:
            row = await self._rt.jobs.load(job.job_id)
            if row is not None and JobStatus(row.status).terminal:
                if row.status == JobStatus.COMPLETED.value:
                    if row.result is None:
                        raise NotFound(
                            "The result of the original request has expired.", code="result_expired"
                        )
                    return row.result
                raise stored_error(row)
            if time.monotonic() > deadline:
                raise Unavailable("The original request is still running; retry later.", retry_after_s=5)
            await asyncio.sleep(0.1)

    async def _enqueue(self, message: JobMessage) -> None:
        try:
            await self._rt.queue.submit(message)
        except QueueFull as exc:
            raise Overloaded(
                f"The queue for model '{message.model}' is full; retry later.",
                retry_after_s=self._retry_after(message.model, exc.depth),
            ) from None
        except QueueUnavailable:
            raise Unavailable("The job queue is unavailable; retry later.", retry_after_s=5) from None

    def _retry_after(self, model: str, depth: int) -> float:
        # Jobs ahead of a retry divided by how many run at once, at about one second each: rough,
        # but it grows with the backlog and stays within the 1..120 s that clients honour.
        return max(1.0, min(120.0, depth / max(1, self._rt.registry.slots(model))))

    # waiting --------------------------------------------------------------------------------

    async def next_event(self, job: Submitted) -> JobEvent:
        """The job's next event; on no news within the bounds, the job is given up (503)."""
        if job.started_at is None:
            timeout = self._queue_settings.max_wait_s + _START_GRACE_S
        else:
            timeout = max(0.0, job.started_at + self._queue_settings.request_timeout_s - time.time())
        try:
            event = await job.watch.next(timeout)
        except TimeoutError:
            await self._give_up(job)
            raise Unavailable(
                "No worker started the request in time; retry later.",
                retry_after_s=self._queue_settings.max_wait_s,
                code="queue_timeout",
            ) from None
        if event.kind is EventKind.STARTED:
            job.started_at = time.time()
        return event

    async def _give_up(self, job: Submitted) -> None:
        with contextlib.suppress(QueueUnavailable):
            await self._rt.queue.cancel(job.job_id)
            await self._rt.queue.report(
                Outcome(
                    job_id=job.job_id,
                    attempt=0,
                    status=OutcomeStatus.EXPIRED,
                    reply_to="",
                    model=job.model,
                    error="no worker started the job in time",
                    error_code="queue_timeout",
                    at=time.time(),
                    job=carried(job.message) if job.message is not None else None,
                )
            )

    async def cancel(self, job: Submitted) -> None:
        with contextlib.suppress(QueueUnavailable):
            await self._rt.queue.cancel(job.job_id)

    async def final(self, job: Submitted, request: Request) -> dict[str, Any]:
        """Wait for the accepted outcome, cancelling the job if the client disconnects first."""
        watcher = asyncio.ensure_future(_tell_when_gone(request, job.watch))
        try:
            while True:
                try:
                    event = await self.next_event(job)
                except ClientGone:
                    await self.cancel(job)
                    # Nobody is left to read this answer; it only ends the handler.
                    raise Unavailable(
                        "The client closed the connection.", retry_after_s=1, code="client_closed"
                    ) from None
                if isinstance(event, FinalEvent):
                    return final_document(event)
                if isinstance(event, ErrorEvent):
                    raise error_of(event)
        finally:
            watcher.cancel()
            job.watch.close()


def final_document(event: FinalEvent) -> dict[str, Any]:
    """A FINAL event as the response bodies read a result (the shape of a stored one)."""
    document: dict[str, Any] = msgspec.to_builtins(event)
    return document


async def _tell_when_gone(request: Request, watch: JobWatch) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            watch.client_gone()
            return


async def events_until_end(
    inference: Inference, job: Submitted, first: JobEvent
) -> AsyncIterator[list[JobEvent]]:
    """Batches of events from `first` to the FINAL or ERROR event (timeouts raise)."""
    batch = [first]
    while True:
        batch.extend(job.watch.drain())
        yield batch
        if any(e.kind in (EventKind.FINAL, EventKind.ERROR) for e in batch):
            return
        batch = [await inference.next_event(job)]
