"""The Batch API end to end with the official SDK, on SQLite (embedded mode) and on PostgreSQL +
Redis + S3 (moto_server) with a separate worker: a 200-line batch mixing chat and embeddings with
some invalid lines; its output and error files answer every line once, by custom_id; the ledger has
one row per successful line, at the batch price. Files live in S3 in cluster mode. Webhooks
announce batches on both: a key's own endpoint, and an organisation's, which hears every key of it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from standardwebhooks.webhooks import Webhook

from tests.batch_support import (
    FAIL_MARKER,
    PRICES_ENV,
    batch_cost,
    db_rows,
    mixed_input,
    read_jsonl,
    start_batch,
    wait_for_batch,
)
from tests.conftest import MODEL, create_key
from tests.integration.accounts_support import auth, create_org
from tests.s3_support import S3Server, moto_server
from tests.support import (
    REDIS_URL,
    SECRETS,
    Server,
    create_pg_database,
    drop_pg_database,
    error_body,
    make_server,
)
from tests.webhook_support import receiver, register, verify

# Deliberately outside the SDK's Literal["24h"]: the server must refuse it with a 400.
NOT_24H: Any = "1h"


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with moto_server(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture(scope="module", params=["sqlite", "cluster"])
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, str | None]]:
    env = {**PRICES_ENV, "GPUCLOUD_BATCHES__EVERY_S": "0.2", "GPUCLOUD_BATCHES__IN_FLIGHT": "16"}
    env.update({"GPUCLOUD_WEBHOOKS__ALLOW_NETWORKS": '["127.0.0.1/32"]', "GPUCLOUD_WEBHOOKS__EVERY_S": "0.2"})
    tmp = tmp_path_factory.mktemp(f"batches-{request.param}")
    if request.param == "sqlite":
        srv = make_server(tmp, env=env)
        srv.start()
        try:
            yield srv, None
        finally:
            srv.stop()
        return
    s3: S3Server = request.getfixturevalue("s3")
    bucket = s3.create_bucket()
    database_url = create_pg_database()
    srv = make_server(tmp, database_url=database_url, redis_url=REDIS_URL, env={**env, **s3.env(bucket)})
    srv.start()
    try:
        srv.add_worker("--model", MODEL, "--slots", "16", "--engine-option", f"fail_marker={FAIL_MARKER}")
        srv.wait_for_model(MODEL)
        yield srv, bucket
    finally:
        srv.stop()
        drop_pg_database(database_url)


def test_sdk_flow_mixed_batch_with_invalid_lines(backend: tuple[Server, str | None], s3: S3Server) -> None:
    server, bucket = backend
    client = openai.OpenAI(base_url=server.v1, api_key=str(create_key(server)["key"]), max_retries=0)
    # In cluster mode the worker's engine also fails a few lines while running them.
    failing = 3 if bucket is not None else 0
    batch_input = mixed_input(200, invalid_every=20, failing=failing)
    created = start_batch(client, batch_input, metadata={"job": "nightly"})
    assert created.status == "validating"
    assert created.metadata == {"job": "nightly"}
    batch = wait_for_batch(client, created.id)
    assert batch.status == "completed", batch
    assert batch.request_counts is not None
    assert (batch.request_counts.total, batch.request_counts.failed) == (200, len(batch_input.invalid))
    assert len(batch_input.invalid) == 10 + failing
    assert batch.request_counts.completed == 200 - len(batch_input.invalid)
    assert batch.completed_at
    assert batch.finalizing_at
    assert batch.in_progress_at
    assert client.batches.list().data[0].id == batch.id

    output = read_jsonl(client, batch.output_file_id)
    errors = read_jsonl(client, batch.error_file_id)
    assert [o["custom_id"] for o in output] == sorted(batch_input.custom_ids - batch_input.invalid)
    assert {e["custom_id"] for e in errors} == batch_input.invalid
    by_id = {line["custom_id"]: line for line in batch_input.lines}
    check_output_lines(output, by_id)
    check_error_lines(errors, by_id)
    check_ledger(server, batch.id, batch.request_counts.completed)
    # The lines keep no copy of the requests and answers the files hold; the counts stand.
    kept = db_rows(server, "SELECT request, body FROM batch_lines WHERE batch_id = ?", batch.id)
    assert len(kept) == 200
    assert all(json.loads(request) == {} and body is None for request, body in kept), kept[:3]
    assert client.batches.retrieve(batch.id).request_counts == batch.request_counts
    if bucket is not None:  # cluster mode: the files live in S3
        stored = set(s3.keys(bucket))
        assert f"gc/files/{created.input_file_id}" in stored
        assert f"gc/files/{batch.output_file_id}" in stored
        assert f"gc/files/{batch.error_file_id}" in stored


def check_output_lines(output: list[dict[str, Any]], by_id: dict[str, dict[str, Any]]) -> None:
    """Every output line is a 200 answer of its request's kind (chat completion, response or
    embeddings)."""
    for line in output:
        assert line["id"].startswith("batch_req_")
        assert line["error"] is None
        assert line["response"]["status_code"] == 200
        body = line["response"]["body"]
        url = by_id[line["custom_id"]]["url"]
        if url == "/v1/embeddings":
            assert body["object"] == "list"
            assert len(body["data"]) == 2
            assert isinstance(body["data"][0]["embedding"][0], float)
        elif url == "/v1/responses":
            response = openai.types.responses.Response.model_validate(body)
            assert response.status in ("completed", "incomplete")
            assert response.output_text
            assert response.usage is not None
            assert response.usage.output_tokens > 0
        else:
            assert body["object"] == "chat.completion"
            assert body["choices"][0]["message"]["content"]


def check_error_lines(errors: list[dict[str, Any]], by_id: dict[str, dict[str, Any]]) -> None:
    """An error line is a 500 when the engine refused the line, else the route's 400/404."""
    for line in errors:
        status = line["response"]["status_code"]
        request = by_id[line["custom_id"]]
        if FAIL_MARKER in json.dumps(request):
            assert status == 500, line  # ran, and the engine refused it
            assert line["response"]["body"]["error"]["type"] == "server_error"
        else:
            assert status == (404 if request["url"] == "/v1/embeddings" else 400), line
        assert line["response"]["body"]["error"]["message"]


def check_ledger(server: Server, batch_id: str, completed: int) -> None:
    """The ledger: one row per successful line, at the batch price (half the model's price)."""
    usage = db_rows(
        server,
        "SELECT u.prompt_tokens, u.completion_tokens, u.cost_micros, j.priority FROM usage_records u "
        "JOIN jobs j ON j.id = u.job_id WHERE j.idempotency_key LIKE ? AND u.status = 'completed'",
        f"batch:{batch_id}:%",
    )
    assert len(usage) == completed
    for prompt, completion, cost, priority in usage:
        assert priority == "low"
        assert prompt > 0
        assert cost == batch_cost(prompt, completion)


def test_large_embeddings_results_live_in_object_storage(
    backend: tuple[Server, str | None], s3: S3Server
) -> None:
    """Lines whose vectors are too large for a job row (about a mebibyte) are answered in full:
    the results were kept in object storage (S3 in cluster mode) and read back for the output."""
    server, bucket = backend
    client = openai.OpenAI(base_url=server.v1, api_key=str(create_key(server)["key"]), max_retries=0)
    texts = [f"vector {i}" for i in range(800)]  # 800 x 256 floats: past the row's limit
    lines = [
        {
            "custom_id": f"big-{n}",
            "method": "POST",
            "url": "/v1/embeddings",
            "body": {"model": MODEL, "input": texts},
        }
        for n in range(2)
    ]
    uploaded = client.files.create(
        file=("big.jsonl", "\n".join(json.dumps(line) for line in lines).encode()), purpose="batch"
    )
    created = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/embeddings", completion_window="24h"
    )
    batch = wait_for_batch(client, created.id)
    assert batch.status == "completed", batch
    output = read_jsonl(client, batch.output_file_id)
    assert [o["custom_id"] for o in output] == ["big-0", "big-1"]
    for line in output:
        data = line["response"]["body"]["data"]
        assert len(data) == len(texts)
        assert len(data[0]["embedding"]) == 256
    if bucket is not None:
        assert any(k.startswith("gc/results/job_") for k in s3.keys(bucket))
    else:
        assert list((server.data_dir / "objects" / "results").glob("job_*/*"))


def test_create_refuses_bad_input(backend: tuple[Server, str | None]) -> None:
    server, _ = backend
    owner = openai.OpenAI(base_url=server.v1, api_key=str(create_key(server)["key"]), max_retries=0)
    stranger = openai.OpenAI(base_url=server.v1, api_key=str(create_key(server)["key"]), max_retries=0)
    batch = start_batch(owner, mixed_input(2))
    uploaded = owner.files.create(file=("notes.txt", b"hello"), purpose="user_data")
    with pytest.raises(openai.BadRequestError) as window:
        owner.batches.create(
            input_file_id=batch.input_file_id, endpoint="/v1/chat/completions", completion_window=NOT_24H
        )
    assert error_body(window.value)["param"] == "completion_window"
    with pytest.raises(openai.BadRequestError) as purpose:
        owner.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
    assert error_body(purpose.value)["param"] == "input_file_id"
    with pytest.raises(openai.NotFoundError):
        stranger.batches.create(
            input_file_id=batch.input_file_id, endpoint="/v1/chat/completions", completion_window="24h"
        )
    with pytest.raises(openai.NotFoundError):
        stranger.batches.retrieve(batch.id)
    with pytest.raises(openai.NotFoundError):
        stranger.batches.cancel(batch.id)
    assert wait_for_batch(owner, batch.id).status == "completed"
    with pytest.raises(openai.ConflictError):
        owner.batches.cancel(batch.id)
    # The batch price rides on the "batch:" idempotency keys: a client may not use one.
    spoofed = httpx.post(
        f"{server.v1}/chat/completions",
        headers={"Authorization": f"Bearer {owner.api_key}", "Idempotency-Key": f"batch:{batch.id}:x"},
        json={"model": MODEL, "messages": [{"role": "user", "content": "cheap?"}]},
    )
    assert spoofed.status_code == 400
    assert spoofed.json()["error"]["param"] == "Idempotency-Key"


def test_webhooks_announce_the_batch_and_a_failed_job(backend: tuple[Server, str | None]) -> None:
    """On both backends a batch's end reaches a receiver; in cluster mode (where the worker's
    engine fails marked prompts) an asynchronous job that fails is announced as job.failed."""
    server, bucket = backend
    key = str(create_key(server)["key"])
    client = openai.OpenAI(base_url=server.v1, api_key=key, max_retries=0)
    with receiver() as hooks:
        events = ["batch.completed", "job.failed", "job.completed"]
        r = httpx.post(
            f"{server.base_url}/api/webhooks",
            headers={"Authorization": f"Bearer {key}"},
            json={"url": hooks.url("/in"), "events": events},
        )
        assert r.status_code == 201, r.text
        secret = r.json()["secret"]
        SECRETS.add(secret)
        batch = wait_for_batch(client, start_batch(client, mixed_input(4)).id)
        expected = {("batch.completed", batch.id)}
        if bucket is not None:
            content = f"please {FAIL_MARKER}"
            job = httpx.post(
                f"{server.v1}/jobs",
                headers={"Authorization": f"Bearer {key}"},
                json={
                    "endpoint": "chat.completions",
                    "model": MODEL,
                    "messages": [{"role": "user", "content": content}],
                },
            )
            assert job.status_code == 202, job.text
            expected.add(("job.failed", job.json()["id"]))
        received = hooks.wait("/in", len(expected))
        time.sleep(1.0)  # nothing else arrives: batch lines are announced by their batch only
        seen = {
            (p["type"], p["data"]["id"])
            for p in (Webhook(secret).verify(x.body, x.headers) for x in hooks.at("/in"))
        }
        assert seen == expected
        assert len(hooks.at("/in")) == len(received)


def test_an_organisations_webhook_hears_the_batches_of_its_keys_only(
    backend: tuple[Server, str | None],
) -> None:
    server, _ = backend
    org, rivals = create_org(server, "batches"), create_org(server, "rivals")
    maker, colleague, outsider = (
        str(create_key(server, org_id=org_id)["key"]) for org_id in (org, org, rivals)
    )
    with receiver() as hooks:
        ours = register(server, maker, hooks.url("/org"), ["batch.completed"])
        theirs = register(server, outsider, hooks.url("/rivals"), ["batch.completed"])
        other = openai.OpenAI(base_url=server.v1, api_key=outsider, max_retries=0)
        their_batch = wait_for_batch(other, start_batch(other, mixed_input(2)).id)
        [heard] = hooks.wait("/rivals", 1, timeout_s=60)
        assert verify(theirs["secret"], heard)["data"]["id"] == their_batch.id
        # Fanned out to every endpoint it belongs to in one transaction: none of it is ours.
        log = f"{server.base_url}/api/webhooks/{ours['id']}/deliveries"
        assert httpx.get(log, headers=auth(colleague), timeout=10).json()["data"] == []
        client = openai.OpenAI(base_url=server.v1, api_key=colleague, max_retries=0)
        batch = wait_for_batch(client, start_batch(client, mixed_input(2)).id)
        [request] = hooks.wait("/org", 1, timeout_s=60)
        payload = verify(ours["secret"], request)
        assert (payload["type"], payload["data"]["id"]) == ("batch.completed", batch.id)
        assert len(hooks.at("/rivals")) == 1
