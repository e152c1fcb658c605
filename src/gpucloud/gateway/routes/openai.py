"""`/v1`: the OpenAI-compatible endpoints (models, chat completions, completions, embeddings)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response, StreamingResponse

from gpucloud.gateway.deps import InferenceDep, PrincipalDep, RuntimeDep, facts, get_principal
from gpucloud.gateway.embeddings import embedding_body, embedding_request
from gpucloud.gateway.formats import completion_body, replay_sse, sse
from gpucloud.gateway.inference import PRIORITY_HEADER, Inference, idempotency_key
from gpucloud.gateway.job_errors import error_of
from gpucloud.gateway.responses import json_response
from gpucloud.gateway.routing import FastRoute
from gpucloud.gateway.schemas import ChatCompletionRequest, CompletionRequest, EmbeddingRequest
from gpucloud.gateway.views import (
    ChatCompletion,
    EmbeddingList,
    ModelCard,
    ModelList,
    TextCompletion,
    documented,
)
from gpucloud.keys import Principal
from gpucloud.queue.protocol import ErrorEvent, EventKind

router = APIRouter(
    prefix="/v1", tags=["openai"], dependencies=[Depends(get_principal)], route_class=FastRoute
)
_STREAMED = "JSON; with `stream: true`, `text/event-stream` chunks ending with `data: [DONE]`"


@router.get("/models", responses=documented(ModelList))
async def list_models(principal: PrincipalDep, runtime: RuntimeDep) -> Response:
    cards = runtime.registry.visible_to(principal)
    return json_response({"object": "list", "data": [c.to_openai() for c in cards]})


@router.get("/models/{model:path}", responses=documented(ModelCard))
async def get_model(model: str, principal: PrincipalDep, runtime: RuntimeDep) -> Response:
    return json_response(runtime.registry.resolve(principal, model).to_openai())


@router.post("/chat/completions", responses=documented(ChatCompletion, description=_STREAMED))
async def chat_completions(
    body: ChatCompletionRequest, request: Request, principal: PrincipalDep, inference: InferenceDep
) -> Response:
    return await _complete(body, request, principal, inference)


@router.post("/completions", responses=documented(TextCompletion, description=_STREAMED))
async def completions(
    body: CompletionRequest, request: Request, principal: PrincipalDep, inference: InferenceDep
) -> Response:
    return await _complete(body, request, principal, inference)


@router.post("/embeddings", responses=documented(EmbeddingList))
async def embeddings(
    body: EmbeddingRequest,
    request: Request,
    principal: PrincipalDep,
    inference: InferenceDep,
    runtime: RuntimeDep,
) -> Response:
    """Through the queue like any job (see `gateway.embeddings`); never streamed."""
    seen = facts(request)
    seen.model, seen.endpoint, seen.stream = body.model, "embeddings", False
    generation = embedding_request(body, runtime.settings.limits)
    priority = inference.priority(principal, body.priority, request.headers.get(PRIORITY_HEADER))
    job = await inference.submit(
        principal,
        generation,
        stream=False,
        priority=priority,
        request_id=request.state.request_id,
        idempotency_key=idempotency_key(request),
    )
    seen.job_id = job.job_id
    final = await (inference.stored_outcome(job) if job.repeat else inference.final(job, request))
    seen.prompt_tokens, seen.completion_tokens = final.get("prompt_tokens"), 0
    return json_response(embedding_body(job.model, final, body.encoding_format), headers=job.headers())


async def _complete(
    body: ChatCompletionRequest | CompletionRequest,
    request: Request,
    principal: Principal,
    inference: Inference,
) -> Response:
    seen = facts(request)
    seen.model, seen.endpoint, seen.stream = body.model, endpoint_name(body), bool(body.stream)
    generation = inference.generation(body)
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
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    if job.repeat:
        final = await inference.stored_outcome(job)
        if body.stream:
            return Response(replay_sse(job, final, include_usage), media_type="text/event-stream")
        return json_response(completion_body(job, final))
    if not body.stream:
        final = await inference.final(job, request)
        seen.prompt_tokens, seen.completion_tokens = (
            final.get("prompt_tokens"),
            final.get("completion_tokens"),
        )
        return json_response(completion_body(job, final), headers=job.headers())
    try:
        first = await inference.next_event(job)
        while first.kind is EventKind.STARTED:
            first = await inference.next_event(job)
        if isinstance(first, ErrorEvent):
            raise error_of(first)  # nothing was sent yet: the error keeps its HTTP status
    except BaseException:
        job.watch.close()
        await inference.cancel(job)
        raise
    return StreamingResponse(
        sse(inference, job, first, include_usage, seen),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no", **job.headers()},
    )


def endpoint_name(body: ChatCompletionRequest | CompletionRequest) -> str:
    return "chat.completions" if isinstance(body, ChatCompletionRequest) else "completions"
