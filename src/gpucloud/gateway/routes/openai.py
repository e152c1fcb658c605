"""`/v1`: the OpenAI-compatible endpoints (models, chat completions, completions, embeddings)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from gpucloud.gateway.deps import InferenceDep, PrincipalDep, RuntimeDep, facts, get_principal
from gpucloud.gateway.embeddings import embedding_body, embedding_request
from gpucloud.gateway.formats import ChunkWriter, completion_body
from gpucloud.gateway.inference import Inference
from gpucloud.gateway.responses import json_response
from gpucloud.gateway.routing import FastRoute
from gpucloud.gateway.schemas import ChatCompletionRequest, CompletionRequest, EmbeddingRequest
from gpucloud.gateway.stream import ClientJob
from gpucloud.gateway.views import (
    ChatCompletion,
    EmbeddingList,
    ModelCard,
    ModelList,
    TextCompletion,
    documented,
)
from gpucloud.keys import Principal

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
    job = await ClientJob.open(inference, request, principal, generation, body.priority)
    final = await job.result()
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
    job = await ClientJob.open(
        inference, request, principal, generation, body.priority, stream=bool(body.stream)
    )
    if not body.stream:
        return json_response(completion_body(job, await job.result()), headers=job.headers())
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    return await job.sse(ChunkWriter(job, include_usage))


def endpoint_name(body: ChatCompletionRequest | CompletionRequest) -> str:
    return "chat.completions" if isinstance(body, ChatCompletionRequest) else "completions"
