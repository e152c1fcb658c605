"""`Attempts`: one leased attempt of a job run on an engine, and the `Outcome` that reports it.

The agent (`worker/agent.py`) leases, renews and cancels; this module runs what it leased: it
reports the start (`begin`, which also answers whether the job was cancelled while it waited),
generates every choice (streaming deltas through the channel's `EventBatcher` when the job is
streamed) or embeds, and turns how it went into an `Outcome` with typed choices. The request is
the typed `GenerationRequest` the job carries, validated by the gateway: it is not checked again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gpucloud.engines.protocol import Engine, EngineError, GenerationRequest
from gpucloud.queue.protocol import Choice, Jobs, Lease, Outcome, OutcomeStatus
from gpucloud.worker.embedding import embed_choices
from gpucloud.worker.events import ChoiceText, EventBatcher

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Run:
    """One attempt in progress on this worker."""

    lease: Lease
    task: asyncio.Task[None] | None = None
    cancelled: bool = False  # the client or an operator cancelled the job
    lost: bool = False  # the lease was reclaimed: someone else runs it now
    texts: dict[int, ChoiceText] = field(default_factory=dict)
    finish: dict[int, str | None] = field(default_factory=dict)
    tokens: int = 0
    first_token_at: float | None = None
    reported_prompt_tokens: int | None = None  # the prompt as the engine's server counted it
    engine_error: str | None = None  # the engine failed this attempt (counted by the breaker)


class Attempts:
    """Runs leased attempts on engines for the worker `worker_id` (see module docstring)."""

    def __init__(self, queue: Jobs, worker_id: str, batcher: Callable[[str], EventBatcher]) -> None:
        self._queue = queue
        self._worker_id = worker_id
        self._batcher = batcher  # the EventBatcher of a gateway channel
        self.tokens_total = 0  # tokens generated since start, for the heartbeat's tokens/s

    async def run(self, run: Run, engine: Engine) -> Outcome | None:
        """Run `run` on `engine`; None when the attempt is handed back instead of reported."""
        request = run.lease.job.request
        if not await self._queue.begin(run.lease):  # cancelled while it waited: nothing to run
            return self.outcome(run, OutcomeStatus.CANCELLED, 0)
        started = time.time()
        try:
            if request.kind == "embedding":
                choices, embedded = await embed_choices(engine, request)
                return self.outcome(run, OutcomeStatus.COMPLETED, embedded, started, choices=choices)
            prompt_tokens = engine.count_prompt_tokens(request)
            await self._generate(run, engine, request, prompt_tokens)
        except asyncio.CancelledError:
            if run.lost or not run.cancelled:
                raise
            return self._cancelled(run, engine, request, started)
        except EngineError as exc:
            return self._engine_failed(run, exc, started)
        except Exception:  # a poison input fails its job once; it never crashes the task on every attempt
            log.exception("job %s: the engine raised an unexpected error", run.lease.job.job_id)
            error = "The engine failed on this request (the worker's log has the details)."
            return self.outcome(run, OutcomeStatus.FAILED, 0, started, error=error, code="engine_error")
        if run.reported_prompt_tokens is not None:
            prompt_tokens = run.reported_prompt_tokens  # the model server's own count wins
        return self.outcome(run, OutcomeStatus.COMPLETED, prompt_tokens, started)

    def _cancelled(self, run: Run, engine: Engine, request: GenerationRequest, started: float) -> Outcome:
        """The client cancelled mid-generation: the tokens generated so far are billed."""
        current = asyncio.current_task()
        if current is not None:
            current.uncancel()
        if run.reported_prompt_tokens is None:
            run.reported_prompt_tokens = engine.count_prompt_tokens(request)
        return self.outcome(run, OutcomeStatus.CANCELLED, run.reported_prompt_tokens, started)

    def _engine_failed(self, run: Run, exc: EngineError, started: float) -> Outcome | None:
        if exc.code is None:  # the engine's fault, not the request's: the breaker counts it
            run.engine_error = str(exc)
        if exc.retryable and run.first_token_at is None and run.tokens == 0:
            # Nothing reached the client (an engine server died, a model was unloaded): let the
            # lease lapse so the job runs again as a new attempt, here or elsewhere; the
            # attempt count bounds how often (then it is dead-lettered).
            log.warning("job %s: %s; handing it back for another attempt", run.lease.job.job_id, exc)
            run.lost = True
            return None
        code = exc.code or "engine_error"
        return self.outcome(run, OutcomeStatus.FAILED, 0, started, error=str(exc), code=code)

    async def _generate(
        self, run: Run, engine: Engine, request: GenerationRequest, prompt_tokens: int
    ) -> None:
        job = run.lease.job
        batcher = self._batcher(job.reply_to) if job.stream else None
        try:
            await asyncio.gather(
                *(self._choice(run, engine, request, i, prompt_tokens, batcher) for i in range(request.n))
            )
        finally:
            if batcher is not None:
                await batcher.flush(job.job_id)

    async def _choice(
        self,
        run: Run,
        engine: Engine,
        request: GenerationRequest,
        index: int,
        prompt_tokens: int,
        batcher: EventBatcher | None,
    ) -> None:
        texts = run.texts.setdefault(index, ChoiceText())
        stream = engine.generate(request, index)
        try:
            async for delta in stream:
                if run.first_token_at is None and delta.tokens:
                    run.first_token_at = time.time()
                run.tokens += delta.tokens
                self.tokens_total += delta.tokens
                texts.append(delta)
                if delta.finish_reason is not None:
                    run.finish[index] = delta.finish_reason
                if delta.prompt_tokens is not None:
                    run.reported_prompt_tokens = delta.prompt_tokens
                if batcher is not None:
                    batcher.add(run.lease, index, delta, prompt_tokens)
        finally:
            await stream.aclose()  # type: ignore[attr-defined]

    def outcome(
        self,
        run: Run,
        status: OutcomeStatus,
        prompt_tokens: int,
        started: float | None = None,
        *,
        error: str | None = None,
        code: str | None = None,
        choices: list[Choice] | None = None,
    ) -> Outcome:
        job = run.lease.job
        now = time.time()
        first = run.first_token_at
        if choices is None:
            choices = [run.texts[i].choice(i, run.finish.get(i)) for i in sorted(run.texts)]
        return Outcome(
            job_id=job.job_id,
            attempt=run.lease.attempt,
            status=status,
            reply_to=job.reply_to,
            model=job.model,
            worker_id=self._worker_id,
            choices=choices,
            prompt_tokens=prompt_tokens,
            completion_tokens=run.tokens,
            ttft_ms=(first - job.enqueued_at) * 1000.0 if first and job.enqueued_at else None,
            duration_ms=(now - started) * 1000.0 if started else None,
            error=error,
            error_code=code,
            at=now,
            stream=job.stream,
        )
