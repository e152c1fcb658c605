"""Batch line answers: a completed job answers with the endpoint's body, a failed one with the
error its HTTP request would have got, an ended batch's cancelled jobs with the batch's error; and
the output and error files hold each line in OpenAI's format, in line order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import update

from gpucloud import errors
from gpucloud.batches.results import collect, error_result, file_lines, job_result, request_line_id
from gpucloud.batches.store import BatchStore, LineResult, NewBatch
from gpucloud.db import Database, Job, JobStatus
from gpucloud.files import BatchRequestLine
from gpucloud.jobs import JobStore, KeptResults, NewJob, new_job_id
from gpucloud.keys import KeyService, NewKey
from gpucloud.storage import LocalStore

RESULT = {
    "choices": [{"index": 0, "text": "hi there", "finish_reason": "stop"}],
    "prompt_tokens": 3,
    "completion_tokens": 2,
}


async def _job(db: Database, key_id: str, status: JobStatus, **values: Any) -> Job:
    job_id = new_job_id()
    await JobStore(db).create(NewJob(job_id, key_id, "m", "chat", "low", False, {"n": 1}, "r"))
    async with db.transaction() as connection:
        await connection.execute(update(Job).where(Job.id == job_id).values(status=status.value, **values))
    job = await JobStore(db).load(job_id)
    assert job is not None
    return job


async def _key(db: Database) -> str:
    return (await KeyService(db).create(NewKey(name="k")))[0].id


def test_a_refused_line_answers_as_its_http_request_would() -> None:
    answer = error_result(errors.InvalidRequest("bad model", param="model", code="model_not_found"))
    assert answer.status_code == 400
    assert answer.body == {
        "error": {
            "message": "bad model",
            "type": "invalid_request_error",
            "param": "model",
            "code": "model_not_found",
        }
    }
    assert error_result(errors.QuotaExceeded("spent")).status_code == 429
    assert request_line_id("batch_1", 1) != request_line_id("batch_1", 2)
    assert request_line_id("batch_1", 1) == request_line_id("batch_1", 1)


async def test_a_completed_job_answers_with_its_chat_completion(db: Database) -> None:
    job = await _job(db, await _key(db), JobStatus.COMPLETED, result=RESULT)
    answer = job_result(job, "/v1/chat/completions", {})
    assert answer.status_code == 200
    assert answer.body is not None
    assert answer.body["object"] == "chat.completion"
    assert answer.body["choices"][0]["message"]["content"] == "hi there"
    assert answer.body["usage"] == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}


async def test_a_responses_line_answers_with_a_response_object(db: Database) -> None:
    job = await _job(db, await _key(db), JobStatus.COMPLETED, result=RESULT)
    request = {"model": job.model, "input": "hello", "instructions": "be brief", "max_output_tokens": 9}
    answer = job_result(job, "/v1/responses", request)
    assert answer.status_code == 200
    assert answer.body is not None
    assert answer.body["object"] == "response"
    assert answer.body["id"] == "resp_" + job.id.removeprefix("job_")
    assert answer.body["status"] == "completed"
    assert answer.body["instructions"] == "be brief"
    assert answer.body["max_output_tokens"] == 9
    [message] = answer.body["output"]
    assert message["content"][0]["text"] == "hi there"
    assert answer.body["usage"]["input_tokens"] == 3
    assert answer.body["usage"]["output_tokens"] == 2


async def test_a_job_without_its_result_or_failed_answers_with_an_error(db: Database) -> None:
    key = await _key(db)
    expired = job_result(await _job(db, key, JobStatus.COMPLETED), "/v1/chat/completions", {})
    assert expired.status_code == 404
    assert expired.body is not None
    assert expired.body["error"]["code"] == "result_expired"
    failed = job_result(
        await _job(db, key, JobStatus.FAILED, error="engine broke", error_code="engine_error"),
        "/v1/chat/completions",
        {},
    )
    assert failed.status_code is not None
    assert failed.status_code >= 500
    assert failed.body is not None
    assert "engine broke" in failed.body["error"]["message"]


async def test_collect_answers_ended_jobs_only_and_an_ended_batch_answers_its_cancelled_ones(
    db: Database, tmp_path: Path
) -> None:
    key = await _key(db)
    store = BatchStore(db)
    batch = await store.create(NewBatch(key, "/v1/chat/completions", "file-in", "24h", 3600, None))
    await store.start(
        batch, [BatchRequestLine(f"c{n}", "/v1/chat/completions", {"model": "m"}) for n in range(3)]
    )
    done = await _job(db, key, JobStatus.COMPLETED, result=RESULT)
    cancelled = await _job(db, key, JobStatus.CANCELLED)
    running = await _job(db, key, JobStatus.RUNNING)
    await store.record(batch.id, [(1, done.id), (2, cancelled.id), (3, running.id)], [])
    answers = dict(await collect(db, KeptResults(LocalStore(tmp_path)), batch.id, None))
    assert set(answers) == {1, 2}
    assert answers[1].status_code == 200
    expired = {"code": "batch_expired", "message": "The batch expired."}
    answers = dict(await collect(db, KeptResults(LocalStore(tmp_path)), batch.id, expired))
    assert answers[2] == LineResult(None, error=expired)
    assert answers[1].status_code == 200  # a completed job keeps its answer


async def test_the_files_split_successes_from_the_rest_in_line_order(db: Database) -> None:
    key = await _key(db)
    store = BatchStore(db)
    batch = await store.create(NewBatch(key, "/v1/chat/completions", "file-in", "24h", 3600, None))
    await store.start(
        batch, [BatchRequestLine(f"c{n}", "/v1/chat/completions", {"model": "m"}) for n in range(4)]
    )
    await store.record(
        batch.id,
        [],
        [
            (3, LineResult(200, body={"id": "b"})),
            (1, LineResult(200, body={"id": "a"})),
            (2, LineResult(400, body={"error": {"code": "x"}})),
        ],
    )
    await store.end_pending(batch.id, {"code": "batch_expired", "message": "m"})

    async def lines(succeeded: bool) -> list[dict[str, Any]]:
        data = b"".join([chunk async for chunk in file_lines(db, batch.id, succeeded=succeeded)])
        return [orjson.loads(line) for line in data.splitlines()]

    output = await lines(True)
    assert [(e["custom_id"], e["response"]["body"]["id"], e["error"]) for e in output] == [
        ("c0", "a", None),
        ("c2", "b", None),
    ]
    assert output[0]["id"] == request_line_id(batch.id, 1)
    assert output[0]["response"]["request_id"] == f"{batch.id}-1"
    failures = await lines(False)
    assert [(e["custom_id"], e["response"] and e["response"]["status_code"]) for e in failures] == [
        ("c1", 400),
        ("c3", None),
    ]
    assert failures[1]["error"] == {"code": "batch_expired", "message": "m"}
