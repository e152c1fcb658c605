"""Turning one batch line into a job: the same checks as its HTTP endpoint, then
`Inference.submit` at the lowest priority with the idempotency key `batch:{batch_id}:{custom_id}`,
so that a line submitted again after a crash finds its job instead of making a second one."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from gpucloud import errors
from gpucloud.batches.results import error_result
from gpucloud.batches.store import LineResult
from gpucloud.db.models import Batch, BatchLine
from gpucloud.engines.protocol import GenerationRequest
from gpucloud.gateway.embeddings import embedding_request
from gpucloud.gateway.errors import param_of
from gpucloud.gateway.inference import Inference
from gpucloud.gateway.responses_api.convert import build_response_generation
from gpucloud.gateway.responses_api.schemas import ResponsesRequest
from gpucloud.gateway.schemas import ChatCompletionRequest, CompletionRequest, EmbeddingRequest
from gpucloud.keys import Principal
from gpucloud.queue.protocol import Priority
from gpucloud.settings import RequestLimits

BATCH_KEY_PREFIX = "batch:"


class Later(Exception):
    """The line cannot be queued now (queue full, rate limited): try again next round."""


@dataclass(frozen=True, slots=True)
class Queued:
    job_id: str


def batch_idempotency_key(batch_id: str, custom_id: str) -> str:
    return f"{BATCH_KEY_PREFIX}{batch_id}:{custom_id}"


def generation_of(
    inference: Inference, limits: RequestLimits, endpoint: str, body: dict[str, Any]
) -> GenerationRequest:
    """The engine-neutral request of a line's body, checked as its endpoint checks it."""
    try:
        if endpoint == "/v1/embeddings":
            return embedding_request(EmbeddingRequest.model_validate(body), limits)
        if endpoint == "/v1/responses":
            request = ResponsesRequest.model_validate(body)
            return build_response_generation(request, limits, inference.capabilities(request.model))
        schema = ChatCompletionRequest if endpoint == "/v1/chat/completions" else CompletionRequest
        return inference.generation(schema.model_validate(body))
    except ValidationError as exc:
        first = exc.errors()[0]
        param = param_of(tuple(first["loc"]))  # a path in the body, as the HTTP endpoint names it
        detail = f"Invalid value for '{param}': {first['msg']}." if param else f"{first['msg']}."
        raise errors.InvalidRequest(detail, param=param) from None


async def submit_line(
    inference: Inference, limits: RequestLimits, batch: Batch, line: BatchLine, principal: Principal
) -> Queued | LineResult:
    """Queue the line's job (its id), or the line's answer when it is refused for good; `Later`
    when it may succeed on another try."""
    try:
        generation = generation_of(inference, limits, line.url, line.request)
        job = await inference.submit(
            principal,
            generation,
            stream=False,
            priority=Priority.LOW,
            request_id=f"{batch.id}-{line.line}",
            idempotency_key=batch_idempotency_key(batch.id, line.custom_id),
            max_wait_s=max(1.0, batch.expires_at.timestamp() - time.time()),
            asynchronous=True,  # nobody waits on the job's events: its row is read when it ends
        )
    except (errors.RetryableError, errors.RateLimited) as exc:
        raise Later(str(exc)) from None
    except errors.GpucloudError as exc:
        return error_result(exc)
    return Queued(job.job_id)
