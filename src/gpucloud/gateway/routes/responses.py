"""`POST /v1/responses`: the stateless core of OpenAI's Responses API.

The request becomes an engine-neutral chat request (`responses_api.convert`) and goes through
`Inference.submit` like a chat completion (the same queue, ledger, limits, idempotency and
cancellation); its result is rendered as a `response` object or as the typed event stream.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response, StreamingResponse

from gpucloud.gateway.deps import InferenceDep, PrincipalDep, RuntimeDep, facts, get_principal
from gpucloud.gateway.formats import replayed_delta, sse
from gpucloud.gateway.inference import PRIORITY_HEADER, Inference, Submitted, idempotency_key
from gpucloud.gateway.job_errors import error_of
from gpucloud.gateway.responses import json_response
from gpucloud.gateway.responses_api.convert import build_response_generation
from gpucloud.gateway.responses_api.output import ResponseStream, echoed, response_object
from gpucloud.gateway.responses_api.schemas import ResponsesRequest
from gpucloud.gateway.views import ResponseObject, documented
from gpucloud.queue.protocol import ErrorEvent, EventKind, JobEvent

router = APIRouter(prefix="/v1", tags=["openai"], dependencies=[Depends(get_principal)])


@router.post(
    "/responses",
    responses=documented(
        ResponseObject, description="JSON; with `stream: true`, typed `text/event-stream` events"
    ),
)
async def create_response(
    body: ResponsesRequest,
    request: Request,
    principal: PrincipalDep,
    inference: InferenceDep,
    runtime: RuntimeDep,
) -> Response:
    seen = facts(request)
    seen.model, seen.endpoint, seen.stream = body.model, "responses", bool(body.stream)
    capabilities = runtime.registry.capabilities(body.model)
    generation = build_response_generation(body, runtime.settings.limits, capabilities)
    priority = inference.priority(principal, body.priority, request.headers.get(PRIORITY_HEADER))
    job = await inference.submit(
        principal,
        generation,
        stream=bool(body.stream),
        priority=priority,
        request_id=request.state.request_id,
        idempotency_key=idempotency_key(request),
    )
    seen.job_id = job.job_id
    stem, echo = job.job_id.removeprefix("job_"), echoed(body)
    if job.repeat or not body.stream:
        return await _whole(body, request, inference, job, stem, echo)
    first = await _first_event(inference, job)
    writer = ResponseStream(stem, job.created, job.model, echo)
    return StreamingResponse(
        sse(inference, job, first, False, seen, writer=writer),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no", **job.headers()},
    )


async def _whole(
    body: ResponsesRequest,
    request: Request,
    inference: Inference,
    job: Submitted,
    stem: str,
    echo: dict[str, Any],
) -> Response:
    """A non-streamed answer, or an idempotent repeat (of a streamed request: the stream at once)."""
    final = await (inference.stored_outcome(job) if job.repeat else inference.final(job, request))
    seen = facts(request)
    seen.prompt_tokens, seen.completion_tokens = final.get("prompt_tokens"), final.get("completion_tokens")
    if body.stream:
        writer = ResponseStream(stem, job.created, job.model, echo)
        content = writer.opening() + _replayed(writer, job, final) + writer.closing(final)
        return Response(content, media_type="text/event-stream")
    return json_response(response_object(stem, job.created, job.model, echo, final), headers=job.headers())


async def _first_event(inference: Inference, job: Submitted) -> JobEvent:
    """The first event after STARTED; an error before any output keeps its HTTP status."""
    try:
        first = await inference.next_event(job)
        while first.kind is EventKind.STARTED:
            first = await inference.next_event(job)
        if isinstance(first, ErrorEvent):
            raise error_of(first)
    except BaseException:
        job.watch.close()
        await inference.cancel(job)
        raise
    return first


def _replayed(writer: ResponseStream, job: Submitted, final: dict[str, object]) -> bytes:
    choices = final.get("choices")
    choice = dict(choices[0]) if isinstance(choices, list) and choices else {}
    return writer.delta(replayed_delta(job.job_id, {**choice, "index": 0}))
