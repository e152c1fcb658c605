"""`ClientJob`: a client's hold on the job it submitted, from submission to the last byte.

It owns everything between `Inference.submit` and the answer (docs/architecture.md §1, §4):

* the job's `JobWatch`, as an async context manager: leaving it stops the watch and cancels a job
  that has not ended (its client went away, or the gateway gave up on it) through
  `gateway.cancel.cancel_job`, the path the jobs API's `DELETE` takes too;
* the timeouts: a job must start within the queue's `max_wait_s` (plus a grace) and end within
  `request_timeout_s` of its first start, else it is given up (cancelled, reported expired) and the
  client gets a 503;
* STARTED events, which only move those clocks: callers never see them;
* errors: an ERROR event becomes its domain error (`gateway.job_errors`), which keeps its HTTP
  status before the first byte of a stream and becomes an error event after it;
* the non-streamed answer (`result`, which notices a client that disconnects) and the streamed one
  (`sse`: the first event is awaited before the 200 is committed, then batches of events are
  rendered by a `formats.StreamWriter`, one write per batch);
* idempotent repeats: the stored outcome, as JSON or replayed as a whole stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from gpucloud.engines.protocol import GenerationRequest
from gpucloud.errors import GpucloudError, Unavailable
from gpucloud.gateway.cancel import cancel_job, unstarted_ending
from gpucloud.gateway.deps import facts
from gpucloud.gateway.formats import StreamWriter, replay
from gpucloud.gateway.inference import Inference, Submitted
from gpucloud.gateway.job_errors import error_of
from gpucloud.keys import Principal
from gpucloud.queue.protocol import (
    DeltaEvent,
    ErrorEvent,
    FinalEvent,
    JobEvent,
    OutcomeStatus,
    QueueUnavailable,
    StartedEvent,
)
from gpucloud.queue.router import ClientGone, JobWatch

# Extra time the gateway gives a job past its queue deadline before giving up on it itself: the
# worker that leases an expired job reports it, and that report should win the race.
START_GRACE_S = 5.0
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}

# What a client is told of its job: STARTED events only move the clocks (`ClientJob.next`).
Reply = DeltaEvent | FinalEvent | ErrorEvent


class ClientJob:
    """One client's job: wait for it, stream it, or cancel it (see the module docstring)."""

    def __init__(self, inference: Inference, submitted: Submitted, request: Request) -> None:
        self._inference = inference
        self._job = submitted
        self._request = request
        self._watch: JobWatch | None = submitted.watch
        # A repeat has nothing to watch or cancel: the original job is someone else's to end.
        self._ended = submitted.watch is None
        self._started_at: float | None = None

    @classmethod
    async def open(
        cls,
        inference: Inference,
        request: Request,
        principal: Principal,
        generation: GenerationRequest,
        priority: str | None,
        *,
        stream: bool = False,
    ) -> ClientJob:
        """Submit `generation` for this HTTP request and hold the job for its client."""
        submitted = await inference.submit_request(request, principal, generation, priority, stream=stream)
        facts(request).job_id = submitted.job_id
        return cls(inference, submitted, request)

    # what the renderers need to know (`formats.JobMeta`) ---------------------------------------

    @property
    def job_id(self) -> str:
        return self._job.job_id

    @property
    def kind(self) -> str:
        return self._job.kind

    @property
    def model(self) -> str:
        return self._job.model

    @property
    def created(self) -> int:
        return self._job.created

    @property
    def n(self) -> int:
        return self._job.n

    def headers(self) -> dict[str, str]:
        """The rate-limit headers of the answer (none for a repeat)."""
        return self._job.headers()

    # the watch's lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> ClientJob:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop watching (idempotent); a job that has not ended is cancelled: nobody waits for it."""
        if self._watch is not None:
            self._watch.close()
            self._watch = None
        if not self._ended:
            self._ended = True
            await cancel_job(self._inference.queue, self.job_id)

    # waiting -----------------------------------------------------------------------------------

    async def next(self) -> Reply:
        """The job's next event other than STARTED; on no news within the bounds, the job is given
        up (503). `ClientGone` when the client disconnected first."""
        watch = self._watching()
        while True:
            try:
                event = await watch.next(self._timeout())
            except TimeoutError:
                raise await self._give_up() from None
            if not isinstance(event, StartedEvent):
                return event
            self._started()

    def _watching(self) -> JobWatch:
        if self._watch is None:
            raise RuntimeError("the job's watch is closed (or it never had one: a repeat)")
        return self._watch

    def _timeout(self) -> float:
        settings = self._inference.queue_settings
        if self._started_at is None:
            return settings.max_wait_s + START_GRACE_S
        return max(0.0, self._started_at + settings.request_timeout_s - time.time())

    def _started(self) -> None:
        # The first start sets the clock: a retried attempt (its worker was lost) has what is left.
        if self._started_at is None:
            self._started_at = time.time()

    async def _give_up(self) -> Unavailable:
        """Cancel the job and end it as expired (ignored if a worker started it), for the client."""
        self._ended = True
        job = self._job
        ending = unstarted_ending(
            job.job_id,
            job.model,
            OutcomeStatus.EXPIRED,
            "no worker started the job in time",
            "queue_timeout",
            job.message,
        )
        with contextlib.suppress(QueueUnavailable):
            await cancel_job(self._inference.queue, job.job_id, ending)
        return Unavailable(
            "No worker started the request in time; retry later.",
            retry_after_s=self._inference.queue_settings.max_wait_s,
            code="queue_timeout",
        )

    def _end(self, event: FinalEvent | ErrorEvent) -> dict[str, Any]:
        """The FINAL event as a result document (recorded for the request's log line); an ERROR's
        domain error. A streamed job's FINAL has no text (the deltas brought it): usage and endings."""
        self._ended = True
        if isinstance(event, ErrorEvent):
            raise error_of(event)
        final = final_document(event)
        self._note(final)
        return final

    def _note(self, final: dict[str, Any]) -> None:
        seen = facts(self._request)
        seen.prompt_tokens, seen.completion_tokens = (
            final.get("prompt_tokens"),
            final.get("completion_tokens"),
        )

    # the answer --------------------------------------------------------------------------------

    async def result(self) -> dict[str, Any]:
        """The accepted outcome (FINAL's data, or a repeat's stored result); a client that
        disconnects first cancels the job."""
        if self._job.repeat:
            final = await self._inference.stored_outcome(self._job)
            self._note(final)
            return final
        async with self:
            watcher = asyncio.ensure_future(self._tell_when_gone())
            try:
                event = await self.next()
                while isinstance(event, DeltaEvent):  # a non-streamed job sends none; skip any
                    event = await self.next()
                return self._end(event)
            except ClientGone:
                # Nobody is left to read this answer; it only ends the handler (and cancels the job).
                raise Unavailable(
                    "The client closed the connection.", retry_after_s=1, code="client_closed"
                ) from None
            finally:
                watcher.cancel()

    async def _tell_when_gone(self) -> None:
        while True:
            message = await self._request.receive()
            if message["type"] == "http.disconnect":
                if self._watch is not None:
                    self._watch.client_gone()
                return

    async def sse(self, writer: StreamWriter) -> Response:
        """The streamed answer. Its first event is awaited here, so that an error before any
        output keeps its HTTP status; a repeat gets the stored outcome as one whole stream."""
        if self._job.repeat:
            return Response(replay(writer, self.job_id, await self.result()), media_type="text/event-stream")
        try:
            first = await self.next()
            if isinstance(first, ErrorEvent):
                self._end(first)
        except BaseException:
            await self.close()
            raise
        return StreamingResponse(
            self._body(writer, first),
            media_type="text/event-stream",
            headers={**SSE_HEADERS, **self.headers()},
        )

    async def _body(self, writer: StreamWriter, first: Reply) -> AsyncIterator[bytes]:
        """The SSE body; if it is closed before the end (client gone), the job is cancelled."""
        async with self:
            watch = self._watching()
            yield writer.opening()
            batch: list[JobEvent] = [first]
            try:
                while True:
                    batch += watch.drain()
                    out = self._render(writer, batch)
                    if out:
                        yield out
                    if self._ended:
                        return
                    batch = [await self.next()]
            except GpucloudError as exc:  # timed out mid-stream (the job was given up)
                yield writer.error(exc)

    def _render(self, writer: StreamWriter, batch: list[JobEvent]) -> bytes:
        """One write's worth of SSE bytes for a batch of events."""
        out = b""
        for event in batch:
            if isinstance(event, DeltaEvent):
                out += writer.delta(event)
            elif isinstance(event, FinalEvent):
                out += writer.closing(self._end(event))
            elif isinstance(event, ErrorEvent):  # the job ended without a result: an error event
                self._ended = True
                out += writer.error(error_of(event))
            else:
                self._started()
        return out


def final_document(event: FinalEvent) -> dict[str, Any]:
    """A FINAL event as the response bodies read a result (the shape of a stored one)."""
    document: dict[str, Any] = msgspec.to_builtins(event)
    return document
