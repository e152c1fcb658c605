"""Jobs: asynchronous submission (`POST /v1/jobs`), status and results (`GET /v1/jobs/{id}`),
cancellation (`DELETE /v1/jobs/{id}`), and the operator's view (`GET /api/jobs`, dead-letter
`POST /api/jobs/{id}/retry`). A key sees only its own jobs; another key's job is a 404.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import msgspec
from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.responses import Response

from gpucloud.db import Job, JobStatus
from gpucloud.errors import Conflict, InvalidRequest, NotFound
from gpucloud.gateway import cancel
from gpucloud.gateway.deps import AdminDep, InferenceDep, PrincipalDep, RuntimeDep, get_principal
from gpucloud.gateway.embeddings import embedding_body
from gpucloud.gateway.formats import StoredJob, completion_body
from gpucloud.gateway.job_errors import stored_error
from gpucloud.gateway.responses import json_response
from gpucloud.gateway.schemas import ChatCompletionRequest, CompletionRequest
from gpucloud.gateway.views import (
    ChatCompletion,
    EmbeddingList,
    JobError,
    JobList,
    JobView,
    TextCompletion,
    documented,
)
from gpucloud.jobs import JobFilter
from gpucloud.jobs.store import message_of
from gpucloud.queue.protocol import OutcomeStatus, Priority
from gpucloud.runtime import Runtime

router = APIRouter(tags=["jobs"], dependencies=[Depends(get_principal)])

_ENDPOINTS: dict[str, type[ChatCompletionRequest] | type[CompletionRequest]] = {
    "chat.completions": ChatCompletionRequest,
    "completions": CompletionRequest,
}
# The jobs table's `endpoint` (the request kind) → the API's name for it.
_ENDPOINT_NAMES: dict[str, Literal["chat.completions", "completions", "embeddings"]] = {
    "chat": "chat.completions",
    "completion": "completions",
    "embedding": "embeddings",
}


def _stored(job: Job) -> StoredJob:
    return StoredJob(
        job.id, job.endpoint, job.model, int(job.created_at.timestamp()), int(job.request.get("n") or 1)
    )


def _result(job: Job, result: dict[str, Any]) -> ChatCompletion | TextCompletion | EmbeddingList | None:
    """The stored answer as the OpenAI body it was (checked against its view, field by field)."""
    if job.endpoint == "embedding":
        try:
            body = embedding_body(job.model, result, "base64")  # compact; the SDK decodes base64
        except NotFound:
            return None  # too large to have been kept (see jobs.py)
        return EmbeddingList.model_validate(body)
    body = completion_body(_stored(job), result)
    return (
        ChatCompletion.model_validate(body) if job.endpoint == "chat" else TextCompletion.model_validate(body)
    )


async def job_view(runtime: Runtime, job: Job, *, detail: bool = True) -> JobView:
    view = JobView(
        id=job.id,
        object="job",
        endpoint=_ENDPOINT_NAMES.get(job.endpoint, "completions"),
        model=job.model,
        status=JobStatus(job.status),
        priority=Priority(job.priority),
        stream=job.stream,
        attempts=job.attempts,
        key_id=job.key_id,
        worker_id=job.worker_id,
        request_id=job.request_id,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        queue_position=None,
        estimated_wait_s=None,
        error=None,
        result=None,
    )
    if job.status == JobStatus.QUEUED.value and detail:
        view.queue_position, view.estimated_wait_s = await _place(runtime, job)
    if job.status == JobStatus.COMPLETED.value and job.result is not None and detail:
        view.result = _result(job, await runtime.kept.load(job.result))
    elif JobStatus(job.status).terminal and job.status != JobStatus.COMPLETED.value:
        err = stored_error(job)
        view.error = JobError(message=str(err), code=getattr(err, "code", None))
    return view


async def _place(runtime: Runtime, job: Job) -> tuple[int, float]:
    """A queued job's position and its estimated wait."""
    # The database may still call a job queued that a worker just took (its start is recorded
    # with a short delay); the queue's own count of waiting jobs bounds what is ahead.
    waiting = await runtime.queue.depth(job.model)
    mine = Priority(job.priority).rank
    ahead = sum(n for p, n in waiting.items() if p.rank <= mine) - 1
    position = max(0, min(await runtime.jobs.position(job), ahead))
    service_s = await runtime.jobs.mean_service_s(job.model) or 1.0
    slots = max(1, runtime.registry.slots(job.model))
    return position, round((position + 1) * service_s / slots, 3)


async def _job_list(runtime: Runtime, rows: list[Job]) -> JobList:
    return JobList(object="list", data=[await job_view(runtime, r, detail=False) for r in rows])


@router.post("/v1/jobs", status_code=202, responses=documented(JobView, 202))
async def submit_job(
    request: Request,
    principal: PrincipalDep,
    inference: InferenceDep,
    runtime: RuntimeDep,
    payload: dict[str, Any] = Body(...),  # noqa: B008 - FastAPI's way to take a raw JSON object
) -> Response:
    endpoint = payload.pop("endpoint", None)
    schema = _ENDPOINTS.get(str(endpoint))
    if schema is None:
        raise InvalidRequest("endpoint must be 'chat.completions' or 'completions'.", param="endpoint")
    try:
        body = schema.model_validate(payload)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None
    if body.stream:
        raise InvalidRequest(
            "An asynchronous job cannot stream; fetch its result with GET /v1/jobs/{id}.", param="stream"
        )
    job = await inference.submit_request(
        request,
        principal,
        inference.generation(body),
        body.priority,
        asynchronous=True,  # recorded first, and nobody on this connection watches its events
        max_wait_s=runtime.settings.queue.async_max_wait_s,
    )
    row = await runtime.jobs.get(job.job_id, principal)
    return json_response(await job_view(runtime, row), status_code=202, headers=job.headers())


@router.get("/v1/jobs", responses=documented(JobList))
async def list_own_jobs(
    principal: PrincipalDep,
    runtime: RuntimeDep,
    status: JobStatus | None = None,
    limit: int = Query(50, ge=1, le=500),
) -> Response:
    rows = await runtime.jobs.list(JobFilter(key_id=principal.key_id, status=status, limit=limit))
    return json_response(await _job_list(runtime, rows))


@router.get("/v1/jobs/{job_id}", responses=documented(JobView))
async def get_job(job_id: str, principal: PrincipalDep, runtime: RuntimeDep) -> Response:
    return json_response(await job_view(runtime, await runtime.jobs.get(job_id, principal)))


@router.delete("/v1/jobs/{job_id}", responses=documented(JobView))
async def cancel_job(job_id: str, principal: PrincipalDep, runtime: RuntimeDep) -> Response:
    job = await runtime.jobs.get(job_id, principal)
    if JobStatus(job.status).terminal:
        raise Conflict(f"The job has already ended ({job.status}).", code="job_ended")
    # Not started: end it now too (the fence ignores this if a worker starts it meanwhile; that
    # worker sees the cancel mark and stops).
    ending = (
        cancel.unstarted_ending(
            job_id, job.model, OutcomeStatus.CANCELLED, "cancelled by the client", "cancelled"
        )
        if job.status == JobStatus.QUEUED.value
        else None
    )
    await cancel.cancel_job(runtime.queue, job_id, ending)
    return json_response(await job_view(runtime, job, detail=False))


@router.get("/api/jobs", responses=documented(JobList))
async def list_jobs(
    _: AdminDep,
    runtime: RuntimeDep,
    status: JobStatus | None = None,
    model: str | None = None,
    key_id: str | None = None,
    limit: int = Query(50, ge=1, le=500),
) -> Response:
    rows = await runtime.jobs.list(JobFilter(key_id=key_id, status=status, model=model, limit=limit))
    return json_response(await _job_list(runtime, rows))


@router.post("/api/jobs/{job_id}/retry", status_code=202, responses=documented(JobView, 202))
async def retry_job(job_id: str, admin: AdminDep, runtime: RuntimeDep) -> Response:
    job = await runtime.jobs.get(job_id, admin)
    if job.status != JobStatus.DEAD.value:
        raise Conflict(f"Only dead-lettered jobs can be retried; this one is {job.status}.", code="not_dead")
    requeued = await runtime.jobs.requeue_dead(job_id)
    if requeued is None:
        raise NotFound(f"No job with id {job_id!r}.")
    if not await runtime.queue.replay(job_id):
        # The queue no longer holds the message (e.g. restarted): rebuild it from the database.
        now = time.time()
        message = message_of(job, now + runtime.settings.queue.async_max_wait_s)
        await runtime.queue.submit(msgspec.structs.replace(message, reply_to="", enqueued_at=now))
    return json_response(await job_view(runtime, requeued), status_code=202)
