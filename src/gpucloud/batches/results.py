"""What each line answers: from the job that ran it (read from the job row, which keeps the result
of an asynchronous job), or from the error that kept it from being queued; and the output and error
files' lines in OpenAI's format: `{"id", "custom_id", "response": {"status_code", "request_id",
"body"}, "error"}`."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
from sqlalchemy import select

from gpucloud import errors
from gpucloud.batches.states import LineState
from gpucloud.batches.store import LineResult
from gpucloud.db import Database, Job, JobStatus
from gpucloud.db.models import BatchLine
from gpucloud.gateway.embeddings import embedding_body
from gpucloud.gateway.errors import envelope, status_of
from gpucloud.gateway.formats import StoredJob, completion_body
from gpucloud.gateway.job_errors import stored_error
from gpucloud.gateway.responses_api.output import echoed, response_object
from gpucloud.gateway.responses_api.schemas import ResponsesRequest
from gpucloud.jobs.kept import KEPT_AT, KeptResults

_PAGE = 1000


def error_result(exc: errors.GpucloudError) -> LineResult:
    """The answer of a line refused before it was queued, as its HTTP request would have been."""
    body = envelope(exc.message, exc.error_type, param=exc.param, code=exc.code)
    return LineResult(status_code_of(exc), body=body)


def status_code_of(exc: errors.GpucloudError) -> int:
    return status_of(exc)


def job_result(job: Job, url: str, request: dict[str, Any]) -> LineResult:
    """The answer of a line (to endpoint `url`) whose job ended."""
    if job.status == JobStatus.COMPLETED.value and job.result is not None:
        try:
            return LineResult(200, body=_body(job, job.result, url, request))
        except errors.NotFound as exc:  # an embedding too large to have been kept
            return error_result(exc)
    if job.status == JobStatus.COMPLETED.value:
        return error_result(errors.NotFound("The result was not kept.", code="result_expired"))
    failure = stored_error(job)
    if isinstance(failure, errors.GpucloudError):
        return error_result(failure)
    return error_result(errors.EngineFailed(str(failure)))


def _body(job: Job, result: dict[str, Any], url: str, request: dict[str, Any]) -> dict[str, Any]:
    if job.endpoint == "embedding":
        base64 = request.get("encoding_format") == "base64"
        return embedding_body(job.model, result, "base64" if base64 else "float")
    created = int(job.created_at.timestamp())
    if url == "/v1/responses":  # ran as a chat job; answered as the Responses API answers it
        echo = echoed(ResponsesRequest.model_validate(request))
        return response_object(job.id.removeprefix("job_"), created, job.model, echo, result)
    return completion_body(
        StoredJob(job.id, job.endpoint, job.model, created, int(job.request.get("n") or 1)), result
    )


async def collect(
    db: Database, kept: KeptResults, batch_id: str, ended: dict[str, Any] | None
) -> list[tuple[int, LineResult]]:
    """Answers for the batch's submitted lines whose jobs have ended (a result too large for its
    row is read back from object storage). With `ended` (the batch expired or was cancelled) a
    job cancelled for that reason answers with that error instead."""
    query = (
        select(BatchLine.line, BatchLine.url, BatchLine.request, Job)
        .join(Job, Job.id == BatchLine.job_id)
        .where(
            BatchLine.batch_id == batch_id,
            BatchLine.state == LineState.SUBMITTED.value,
            Job.status.not_in([JobStatus.QUEUED.value, JobStatus.RUNNING.value]),
        )
    )
    async with db.session() as session:
        rows = (await session.execute(query)).all()
    answers = []
    for line, url, request, job in rows:
        if ended is not None and job.status in (JobStatus.CANCELLED.value, JobStatus.FAILED.value):
            answers.append((line, LineResult(None, error=ended)))
        else:
            if job.result is not None and KEPT_AT in job.result:
                job.result = await kept.load(job.result)  # a detached row: nothing is written back
            answers.append((line, job_result(job, url, request)))
    return answers


def request_line_id(batch_id: str, line: int) -> str:
    return "batch_req_" + hashlib.sha256(f"{batch_id}:{line}".encode()).hexdigest()[:24]


def output_line(batch_id: str, row: BatchLine) -> bytes:
    response = None
    if row.status_code is not None:
        response = {"status_code": row.status_code, "request_id": f"{batch_id}-{row.line}", "body": row.body}
    entry = {
        "id": request_line_id(batch_id, row.line),
        "custom_id": row.custom_id,
        "response": response,
        "error": row.error,
    }
    return orjson.dumps(entry) + b"\n"


async def file_lines(db: Database, batch_id: str, *, succeeded: bool) -> AsyncIterator[bytes]:
    """The output file (`succeeded`: the 200 answers) or the error file (every other), in line
    order, read a page at a time so that a large batch never sits in memory whole."""
    after = 0
    while True:
        ok = BatchLine.status_code == 200
        query = (
            select(BatchLine)
            .where(
                BatchLine.batch_id == batch_id,
                BatchLine.line > after,
                ok if succeeded else ~ok | BatchLine.status_code.is_(None),
            )
            .order_by(BatchLine.line)
            .limit(_PAGE)
        )
        async with db.session() as session:
            rows = list((await session.execute(query)).scalars())
        if not rows:
            return
        yield b"".join(output_line(batch_id, r) for r in rows)
        after = rows[-1].line
