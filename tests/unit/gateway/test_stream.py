"""`gateway.stream.ClientJob` over a real embedded runtime: the in-process queue, the finalizer on
SQLite, and the local worker with the simulated engine. Where a test must choose the events (a
start, a failure mid-stream, no worker at all), it plays the worker itself through the queue's own
protocol, for a model that only it announces."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Message

from gpucloud.db import Job, UsageRecord
from gpucloud.engines.protocol import GenerationRequest
from gpucloud.errors import InvalidRequest, Unavailable
from gpucloud.gateway.formats import ChunkWriter
from gpucloud.gateway.inference import Inference
from gpucloud.gateway.middleware import RequestFacts
from gpucloud.gateway.stream import ClientJob
from gpucloud.keys import Principal
from gpucloud.queue.protocol import (
    Choice,
    DeltaEvent,
    Lease,
    Outcome,
    OutcomeStatus,
    StartedEvent,
    WorkerInfo,
)
from gpucloud.runtime import Runtime
from gpucloud.settings import Settings

SIM = "gpucloud-sim-1"  # served by the runtime's own worker
HAND = "hand-1"  # served by the test, which plays its worker


class Client:
    """An HTTP request as Starlette hands it to a route, with a switch to disconnect it."""

    def __init__(self) -> None:
        self.gone = asyncio.Event()
        self.facts = RequestFacts()
        scope: dict[str, Any] = {
            "type": "http",
            "method": "POST",
            "path": "/v1/chat/completions",
            "headers": [],
        }
        scope["state"] = {"request_id": "req_test", "facts": self.facts}
        self.request = Request(scope, self._receive)

    async def _receive(self) -> Message:
        await self.gone.wait()
        return {"type": "http.disconnect"}


def _body(response: Response) -> AsyncIterator[Any]:
    """The body a streamed answer will send, chunk by chunk."""
    assert isinstance(response, StreamingResponse)
    body = response.body_iterator
    assert isinstance(body, AsyncIterator)  # the route's async generator
    return body


async def _runtime(tmp_path: Path, **queue: float) -> AsyncIterator[Runtime]:
    settings = Settings.model_validate(
        {
            "data_dir": tmp_path,
            # Slow, and every answer runs to max_tokens: long enough to leave in the middle.
            "local_worker": {"models": [SIM], "tokens_per_s": 50.0, "natural_end": False},
            "queue": {"max_wait_s": 30.0, **queue},
        }
    )
    runtime = Runtime.build(settings)
    await runtime.start()
    await runtime.queue.announce(WorkerInfo("test-worker", [HAND], slots=4, at=time.time()), ttl_s=600)
    await runtime.registry.refresh()
    try:
        yield runtime
    finally:
        await runtime.close()


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    async for rt in _runtime(tmp_path):
        yield rt


async def admin_of(runtime: Runtime) -> Principal:
    assert runtime.generated_admin_key is not None
    return await runtime.keys.authenticate(runtime.generated_admin_key)


@pytest.fixture
async def admin(runtime: Runtime) -> Principal:
    return await admin_of(runtime)


def chat(model: str, text: str = "Say something.", max_tokens: int = 8) -> GenerationRequest:
    return GenerationRequest(
        kind="chat", model=model, messages=[{"role": "user", "content": text}], max_tokens=max_tokens
    )


async def open_job(
    runtime: Runtime, principal: Principal, generation: GenerationRequest, *, stream: bool
) -> tuple[ClientJob, Client]:
    client = Client()
    job = await ClientJob.open(Inference(runtime), client.request, principal, generation, None, stream=stream)
    assert client.facts.job_id == job.job_id
    return job, client


async def ended(runtime: Runtime, job_id: str) -> tuple[Job, UsageRecord | None]:
    """The job's row once it ended, and its usage row."""
    for _ in range(1000):
        row = await runtime.jobs.load(job_id)
        if row is not None and row.finished_at is not None:
            async with runtime.db.session() as session:
                usage = await session.scalar(select(UsageRecord).where(UsageRecord.job_id == job_id))
            return row, usage
        await asyncio.sleep(0.02)
    raise AssertionError(f"job {job_id} never ended")


def events(body: bytes) -> list[Any]:
    """The `data:` payloads of an SSE body, JSON decoded (`[DONE]` kept as the string)."""
    out = []
    for frame in body.split(b"\n\n"):
        if frame.startswith(b"data: "):
            data = frame.removeprefix(b"data: ")
            out.append(data.decode() if data == b"[DONE]" else orjson.loads(data))
    return out


async def lease(runtime: Runtime) -> Lease:
    (taken,) = await runtime.queue.lease("test-worker", [HAND], 1, 5.0)
    return taken


async def test_result_is_the_final_outcome_and_it_is_billed(runtime: Runtime, admin: Principal) -> None:
    job, client = await open_job(runtime, admin, chat(SIM), stream=False)
    final = await job.result()
    assert final["completion_tokens"] > 0
    assert final["choices"][0]["text"]
    assert (client.facts.prompt_tokens, client.facts.completion_tokens) == (
        final["prompt_tokens"],
        final["completion_tokens"],
    )
    with pytest.raises(RuntimeError):  # the watch is closed once the answer is in
        await job.next()
    row, usage = await ended(runtime, job.job_id)
    assert row.status == "completed"
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (
        final["prompt_tokens"],
        final["completion_tokens"],
    )


async def test_stream_renders_every_token_and_bills_what_it_sent(runtime: Runtime, admin: Principal) -> None:
    job, client = await open_job(runtime, admin, chat(SIM, max_tokens=6), stream=True)
    response = await job.sse(ChunkWriter(job, include_usage=True))
    assert isinstance(response, StreamingResponse)
    assert response.headers["cache-control"] == "no-cache"
    body = b"".join([chunk async for chunk in _body(response)])
    chunks = events(body)
    assert chunks[-1] == "[DONE]"
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    usage = chunks[-2]["usage"]
    finishes = [c["choices"][0]["finish_reason"] for c in chunks[1:-2] if c["choices"]]
    assert finishes[-1] in ("stop", "length")
    assert finishes.count(None) == len(finishes) - 1
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[1:-2])
    row, billed = await ended(runtime, job.job_id)
    assert row.status == "completed"
    assert row.result is not None
    assert text == row.result["choices"][0]["text"]
    assert billed is not None
    assert billed.completion_tokens == usage["completion_tokens"]
    assert client.facts.completion_tokens == usage["completion_tokens"]


async def test_a_client_that_leaves_mid_stream_cancels_its_job_and_pays_for_what_ran(
    runtime: Runtime, admin: Principal
) -> None:
    job, _ = await open_job(runtime, admin, chat(SIM, max_tokens=500), stream=True)
    response = await job.sse(ChunkWriter(job, include_usage=False))
    body = _body(response)
    assert isinstance(body, AsyncIterator)
    await anext(body)  # the opening
    await anext(body)  # the first token(s)
    await body.aclose()  # type: ignore[attr-defined]  # Starlette closes it when the client goes
    row, usage = await ended(runtime, job.job_id)
    assert row.status == "cancelled"
    assert usage is not None
    assert 0 < usage.completion_tokens < 500


async def test_a_client_that_disconnects_while_waiting_cancels_its_job(
    runtime: Runtime, admin: Principal
) -> None:
    job, client = await open_job(runtime, admin, chat(SIM, max_tokens=500), stream=False)
    waiting = asyncio.ensure_future(job.result())
    row = None
    while row is None or row.started_at is None:  # it runs (a 10 s answer at 50 tokens/s)
        await asyncio.sleep(0.02)
        row = await runtime.jobs.load(job.job_id)
    client.gone.set()
    with pytest.raises(Unavailable) as caught:
        await waiting
    assert caught.value.code == "client_closed"
    row, usage = await ended(runtime, job.job_id)
    assert row.status == "cancelled"
    assert usage is not None
    assert usage.completion_tokens < 500


async def test_an_error_before_the_first_token_keeps_its_status(runtime: Runtime, admin: Principal) -> None:
    too_long = chat(SIM, "word " * 5000)  # past the simulated model's 4096-token context
    job, _ = await open_job(runtime, admin, too_long, stream=True)
    with pytest.raises(InvalidRequest) as caught:
        await job.sse(ChunkWriter(job, include_usage=False))
    assert caught.value.code == "context_length_exceeded"
    with pytest.raises(RuntimeError):
        await job.next()


async def _played(
    runtime: Runtime, principal: Principal, play: Callable[[Lease], Awaitable[None]]
) -> tuple[ClientJob, list[Any]]:
    """A stream of HAND whose worker is `play`; the body's SSE payloads."""
    job, _ = await open_job(runtime, principal, chat(HAND), stream=True)
    worker = asyncio.ensure_future(play(await lease(runtime)))
    response = await job.sse(ChunkWriter(job, include_usage=False))
    body = b"".join([chunk async for chunk in _body(response)])
    await worker
    return job, events(body)


def delta(lease: Lease, text: str, finish: str | None = None) -> DeltaEvent:
    return DeltaEvent(lease.job.job_id, lease.attempt, text=text, tokens=1, finish_reason=finish)


async def test_started_events_are_not_output_and_a_stale_attempt_is_not_relayed(
    runtime: Runtime, admin: Principal
) -> None:
    async def play(taken: Lease) -> None:
        assert await runtime.queue.begin(taken)  # publishes STARTED
        stale = StartedEvent(taken.job.job_id, taken.attempt)
        reply = taken.job.reply_to
        await runtime.queue.publish(reply, [stale, delta(taken, "Hel"), stale, delta(taken, "lo")])
        other = DeltaEvent(taken.job.job_id, taken.attempt + 1, text="X")
        await runtime.queue.publish(reply, [other, delta(taken, "", "stop")])
        choice = Choice(0, "Hello", "stop")
        outcome = Outcome(taken.job.job_id, taken.attempt, OutcomeStatus.COMPLETED, reply, HAND)
        outcome.choices, outcome.prompt_tokens, outcome.completion_tokens = [choice], 3, 2
        await runtime.queue.complete(taken, outcome)

    job, chunks = await _played(runtime, admin, play)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[1:-1])
    assert text == "Hello"
    assert chunks[-1] == "[DONE]"
    row, usage = await ended(runtime, job.job_id)
    assert row.status == "completed"
    assert usage is not None
    assert usage.completion_tokens == 2


async def test_a_failure_after_the_first_token_is_an_error_event(runtime: Runtime, admin: Principal) -> None:
    async def play(taken: Lease) -> None:
        assert await runtime.queue.begin(taken)
        await runtime.queue.publish(taken.job.reply_to, [delta(taken, "Hi")])
        outcome = Outcome(
            taken.job.job_id, taken.attempt, OutcomeStatus.FAILED, taken.job.reply_to, HAND, error="boom"
        )
        await runtime.queue.complete(taken, outcome)

    job, chunks = await _played(runtime, admin, play)
    assert chunks[1]["choices"][0]["delta"]["content"] == "Hi"
    error = chunks[-1]["error"]
    assert error["type"] == "server_error"
    assert error["status"] == 500
    assert error["message"] == "boom"
    assert "[DONE]" not in chunks
    row, _ = await ended(runtime, job.job_id)
    assert row.status == "failed"


async def test_a_job_no_worker_starts_is_given_up_and_ended_as_expired(tmp_path: Path) -> None:
    async for runtime in _runtime(tmp_path, max_wait_s=0.2):
        principal = await admin_of(runtime)
        job, _ = await open_job(runtime, principal, chat(HAND), stream=True)  # nobody leases it
        with pytest.raises(Unavailable) as caught:
            await job.sse(ChunkWriter(job, include_usage=False))
        assert caught.value.code == "queue_timeout"
        row, usage = await ended(runtime, job.job_id)
        assert row.status == "failed"
        assert row.error_code == "queue_timeout"
        assert usage is None or usage.completion_tokens == 0
        assert await runtime.queue.is_cancelled(job.job_id)


async def test_a_stream_past_the_request_timeout_ends_with_an_error_event(tmp_path: Path) -> None:
    async for runtime in _runtime(tmp_path, request_timeout_s=0.5):
        principal = await admin_of(runtime)
        job, _ = await open_job(runtime, principal, chat(SIM, max_tokens=500), stream=True)
        response = await job.sse(ChunkWriter(job, include_usage=False))
        body = b"".join([chunk async for chunk in _body(response)])
        assert events(body)[-1]["error"]["code"] == "queue_timeout"
        row, usage = await ended(runtime, job.job_id)
        assert row.status == "cancelled"  # the worker saw the cancel; what it generated is billed
        assert usage is not None
        assert 0 < usage.completion_tokens < 500
