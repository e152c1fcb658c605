"""`EventBatcher`: streamed jobs' deltas on their way to one gateway's channel.

While one publish is in flight, further deltas accumulate and go in the next publish, so a slow
channel (or client) costs fewer, larger writes instead of one round trip per token (docs/architecture.md §4).
The worker keeps one per channel, shared by every job streaming to that gateway, so a batched
engine's step of N tokens for N jobs is one write, not N. Order within a job is kept: one drain
loop per channel publishes events in the order they were added.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from gpucloud.engines.protocol import Delta, TokenLogprob
from gpucloud.queue.protocol import Choice, DeltaEvent, Events, JobEvent, Lease, QueueError, ToolCall


@dataclass(slots=True)
class ChoiceText:
    """One choice's output as the worker gathers it for the outcome: text, whole tool calls
    (pieces joined), and log probabilities."""

    parts: list[str] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    logprobs: list[TokenLogprob] = field(default_factory=list)

    def append(self, delta: Delta) -> None:
        self.parts.append(delta.text)
        for piece in delta.tool_calls:
            while len(self.tool_calls) <= piece.index:
                self.tool_calls.append(ToolCall())
            call = self.tool_calls[piece.index]
            call.id = piece.id or call.id
            call.name = piece.name or call.name
            call.arguments += piece.arguments
        self.logprobs.extend(delta.logprobs)

    def choice(self, index: int, finish_reason: str | None) -> Choice:
        return Choice(index, "".join(self.parts), finish_reason, self.tool_calls, self.logprobs)


class EventBatcher:
    def __init__(self, queue: Events, reply_to: str) -> None:
        self._queue = queue
        self._reply_to = reply_to
        self._pending: list[JobEvent] = []
        self._flushing: asyncio.Task[None] | None = None
        self._failed: dict[str, QueueError] = {}

    def add(self, lease: Lease, index: int, delta: Delta, prompt_tokens: int) -> None:
        event = DeltaEvent(
            lease.job.job_id,
            lease.attempt,
            index,
            delta.text,
            delta.tokens,
            delta.finish_reason,
            prompt_tokens,
            list(delta.tool_calls),
            list(delta.logprobs),
        )
        self._pending.append(event)
        self._start()

    def _start(self) -> asyncio.Task[None] | None:
        """The drain task (started when events wait and none runs): the only writer, so the
        channel sees events in the order they were added."""
        if self._pending and (self._flushing is None or self._flushing.done()):
            self._flushing = asyncio.create_task(self._drain())
        return self._flushing

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await self._queue.publish(self._reply_to, batch)
            except QueueError as exc:
                for event in batch:  # each job whose deltas were lost learns it in its flush
                    self._failed[event.job_id] = exc

    async def flush(self, job_id: str) -> None:
        """Wait until every delta added so far has been published; QueueError if some of this
        job's were lost (its lease then lapses and the job runs again)."""
        while (task := self._start()) is not None and not task.done():
            await asyncio.shield(task)
        failed = self._failed.pop(job_id, None)
        if failed is not None:
            raise failed
