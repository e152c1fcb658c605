"""`POST /v1/responses`: the stateless core of OpenAI's Responses API.

The request becomes an engine-neutral chat request (`responses_api.convert`) and goes through
`ClientJob` like a chat completion (the same queue, ledger, limits, idempotency and
cancellation); its result is rendered as a `response` object or as the typed event stream.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from gpucloud.gateway.deps import InferenceDep, PrincipalDep, RuntimeDep, facts, get_principal
from gpucloud.gateway.responses import json_response
from gpucloud.gateway.responses_api.convert import build_response_generation
from gpucloud.gateway.responses_api.output import ResponseStream, echoed, response_object
from gpucloud.gateway.responses_api.schemas import ResponsesRequest
from gpucloud.gateway.stream import ClientJob
from gpucloud.gateway.views import ResponseObject, documented

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
    job = await ClientJob.open(
        inference, request, principal, generation, body.priority, stream=bool(body.stream)
    )
    stem, echo = job.job_id.removeprefix("job_"), echoed(body)
    if not body.stream:
        final = await job.result()
        return json_response(
            response_object(stem, job.created, job.model, echo, final), headers=job.headers()
        )
    return await job.sse(ResponseStream(stem, job.created, job.model, echo))
