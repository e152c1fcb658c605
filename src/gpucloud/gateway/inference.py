"""Submitting jobs: validate → admit → record the job (when needed) → queue it.

Every request goes through the queue (docs/architecture.md §1). `Inference.submit_request` is the
one way an HTTP route submits (priority from the body or header, Idempotency-Key, request id);
`Inference.submit` is what it and the Batch API's feeder share. Waiting for the answer, streaming
it and cancelling on the client's behalf are `gateway.stream.ClientJob`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from starlette.requests import Request

from gpucloud.admission import Ticket, counts_tokens, rate_headers
from gpucloud.db import Job, JobStatus
from gpucloud.engines.capabilities import Capabilities
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
from gpucloud.gateway.job_errors import stored_error
from gpucloud.gateway.schemas import ChatCompletionRequest, CompletionRequest
from gpucloud.jobs import NewJob, new_job_id
from gpucloud.jobs.store import message_of, request_document, stored_request
from gpucloud.keys import Principal
from gpucloud.queue.protocol import JobMessage, Jobs, Priority, QueueFull, QueueUnavailable, Unrecorded
from gpucloud.queue.router import JobWatch
from gpucloud.reconciler import deadline_at
from gpucloud.runtime import Runtime
from gpucloud.settings import QueueSettings

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
    watch: JobWatch | None  # None for a repeat and for a job nobody waits on (asynchronous)
    repeat: bool = False  # an idempotent repeat: the job exists already, there is nothing to watch
    ticket: Ticket | None = None  # what admission reserved (its decision makes the rate-limit headers)
    message: JobMessage | None = None  # what was queued (an expiry of an unrecorded job carries it)

    def headers(self) -> dict[str, str]:
        return rate_headers(self.ticket.decision if self.ticket is not None else None)


class Inference:
    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime
        self._limits = runtime.settings.limits
        self._queue_settings = runtime.settings.queue
        self._tokenizer = Tokenizer()

    @property
    def queue(self) -> Jobs:
        return self._rt.queue

    @property
    def queue_settings(self) -> QueueSettings:
        return self._queue_settings

    # admission ------------------------------------------------------------------------------

    def generation(self, body: ChatCompletionRequest | CompletionRequest) -> GenerationRequest:
        """The engine-neutral request (see `gateway.generation`), for the model's capabilities."""
        return build_generation(body, self._limits, self.capabilities(body.model))

    def capabilities(self, model: str) -> Capabilities:
        """What the engine serving `model` honours (a parameter it lacks is refused, not dropped)."""
        return self._rt.registry.capabilities(model)

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

    async def submit_request(
        self,
        request: Request,
        principal: Principal,
        generation: GenerationRequest,
        requested_priority: str | None,
        *,
        stream: bool = False,
        asynchronous: bool = False,
        max_wait_s: float | None = None,
    ) -> Submitted:
        """Submit for an HTTP request: the priority its header or body asks for (within the key's
        ceiling), its Idempotency-Key and its request id."""
        priority = self.priority(principal, requested_priority, request.headers.get(PRIORITY_HEADER))
        return await self.submit(
            principal,
            generation,
            stream=stream,
            priority=priority,
            request_id=request.state.request_id,
            idempotency_key=idempotency_key(request),
            max_wait_s=max_wait_s,
            asynchronous=asynchronous,
        )

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
        start or ending. An asynchronous job (polled later; nobody watches its events) or an
        idempotent one (found by repeats) is recorded first.
        """
        self._rt.registry.resolve(principal, generation.model)
        if idempotency_key is not None:
            existing = await self._rt.jobs.find_idempotent(principal.key_id, idempotency_key)
            if existing is not None:
                repeat = self._repeat(existing, generation)
                await self._requeue_if_unsure(existing)
                return repeat
        ticket = await self._admit(principal, generation)
        message = self._message(ticket.job_id, generation, priority, stream, request_id, max_wait_s)
        try:
            if asynchronous or idempotency_key is not None:
                return await self._record_and_queue(
                    principal, message, ticket, idempotency_key, watched=not asynchronous
                )
            message.unrecorded = Unrecorded(principal.key_id, generation.kind, ticket.to_dict())
            return await self._queue(message, ticket, generation.n, watched=True)
        except BaseException:
            await self._rt.admission.abandon(ticket)  # it never reached the queue: nothing was used
            raise

    async def _admit(self, principal: Principal, generation: GenerationRequest) -> Ticket:
        # Counting the prompt costs a tokenizer pass: only limits that reserve tokens need it.
        prompt_tokens = self.prompt_tokens(generation) if counts_tokens(principal) else 0
        completions = 0 if generation.kind == "embedding" else generation.n  # embeddings generate none
        return await self._rt.admission.admit(
            principal, generation.model, new_job_id(), prompt_tokens, generation.max_tokens, completions
        )

    def _message(
        self,
        job_id: str,
        generation: GenerationRequest,
        priority: Priority,
        stream: bool,
        request_id: str,
        max_wait_s: float | None,
    ) -> JobMessage:
        now = time.time()
        return JobMessage(
            job_id=job_id,
            model=generation.model,
            priority=priority,
            request=generation,  # validated by the route's model: the worker takes it as is (§12)
            reply_to=self._rt.router.reply_to,
            stream=stream,
            enqueued_at=now,
            deadline=now + (max_wait_s or self._queue_settings.max_wait_s),
            request_id=request_id,
        )

    def prompt_tokens(self, generation: GenerationRequest) -> int:
        """The prompt as admission counts it (cl100k); the engine's own count is what is billed."""
        if generation.kind == "chat":
            return self._tokenizer.count_chat(generation.messages or [])
        if generation.kind == "embedding":
            return sum(self._tokenizer.count(text) for text in generation.input or ())
        return self._tokenizer.count(generation.prompt or "")

    async def _queue(self, message: JobMessage, ticket: Ticket, n: int, *, watched: bool) -> Submitted:
        """Watch the job's events (before it can produce any) when a client waits for them, then
        put it on the queue."""
        watch = self._rt.router.watch(message.job_id) if watched else None
        try:
            await self._enqueue(message)
        except BaseException:
            if watch is not None:
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
        self,
        principal: Principal,
        message: JobMessage,
        ticket: Ticket,
        idempotency_key: str | None,
        *,
        watched: bool,
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
            return await self._queue(message, ticket, message.request.n, watched=watched)
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

    async def _requeue_if_unsure(self, existing: Job) -> None:
        """Queue a repeated job again when it may never have reached the queue: its gateway can
        have died between its row and the queue (a batch line taken over by another feeder, a
        client retrying after a lost answer). Submitting is idempotent per job and attempt, so a
        job that is on the queue stays there once; a job in an older queue epoch is the
        reconciler's, and one that started was queued."""
        if existing.status != JobStatus.QUEUED.value or existing.deadline_at is None:
            return
        if existing.queue_epoch != await self._rt.reconciler.current_epoch():
            return
        deadline = existing.deadline_at.timestamp()
        if deadline > time.time():
            with contextlib.suppress(QueueFull, QueueUnavailable):  # the repeat itself still answers
                await self._rt.queue.submit(message_of(existing, deadline))

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
                    return await self._rt.kept.load(row.result)
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
