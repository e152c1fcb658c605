"""Jobs API and idempotency on every backend: asynchronous submission and results, cancellation,
ownership (another key's job is a 404), admin listing, and Idempotency-Key semantics."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.conftest import MODEL, create_key
from tests.support import Server, make_server


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _wait_status(
    server: Server, key: str, job_id: str, statuses: set[str], timeout_s: float = 15
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        view: dict[str, Any] = httpx.get(f"{server.v1}/jobs/{job_id}", headers=_auth(key), timeout=10).json()
        if view["status"] in statuses or time.monotonic() > deadline:
            return view
        time.sleep(0.05)


def test_async_job_returns_202_then_the_same_body_as_the_sync_endpoint(server: Server, user_key: str) -> None:
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "async please"}]
    request = {"model": MODEL, "messages": messages, "max_tokens": 12, "seed": 42}
    r = httpx.post(
        f"{server.v1}/jobs", headers=_auth(user_key), json={"endpoint": "chat.completions", **request}
    )
    assert r.status_code == 202, r.text
    accepted = r.json()
    assert accepted["object"] == "job"
    assert accepted["id"].startswith("job_")
    assert accepted["status"] in ("queued", "running", "completed")
    if accepted["status"] == "queued":
        assert isinstance(accepted["queue_position"], int)
        assert accepted["estimated_wait_s"] >= 0
    done = _wait_status(server, user_key, accepted["id"], {"completed"})
    assert done["status"] == "completed"
    assert done["attempts"] == 1
    body = done["result"]
    sync = openai.OpenAI(base_url=server.v1, api_key=user_key, max_retries=0).chat.completions.create(
        model=MODEL, messages=messages, max_tokens=12, seed=42
    )
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"] == sync.choices[0].message.content
    assert sync.usage is not None
    assert body["usage"]["completion_tokens"] == sync.usage.completion_tokens


def test_async_completion_job_and_validation(server: Server, user_key: str) -> None:
    ok = httpx.post(
        f"{server.v1}/jobs",
        headers=_auth(user_key),
        json={"endpoint": "completions", "model": MODEL, "prompt": "abc", "max_tokens": 3},
    )
    assert ok.status_code == 202
    done = _wait_status(server, user_key, ok.json()["id"], {"completed"})
    assert done["result"]["object"] == "text_completion"
    assert done["result"]["usage"]["completion_tokens"] <= 3
    cases = [
        ({"model": MODEL, "prompt": "x"}, "endpoint"),
        ({"endpoint": "embeddings", "model": MODEL, "prompt": "x"}, "endpoint"),
        ({"endpoint": "completions", "model": MODEL, "prompt": "x", "temperature": 7}, "temperature"),
        ({"endpoint": "completions", "model": MODEL, "prompt": "x", "stream": True}, "stream"),
        ({"endpoint": "chat.completions", "model": MODEL}, "messages"),
    ]
    for body, param in cases:
        r = httpx.post(f"{server.v1}/jobs", headers=_auth(user_key), json=body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error"]["param"] == param
    unknown = httpx.post(
        f"{server.v1}/jobs",
        headers=_auth(user_key),
        json={"endpoint": "completions", "model": "no-such-model", "prompt": "x"},
    )
    assert unknown.status_code == 404


def test_jobs_are_private_to_their_key(server: Server, user_key: str) -> None:
    r = httpx.post(
        f"{server.v1}/jobs",
        headers=_auth(user_key),
        json={"endpoint": "completions", "model": MODEL, "prompt": "mine", "max_tokens": 2},
    )
    job_id = r.json()["id"]
    other = str(create_key(server, name="other")["key"])
    for method in ("GET", "DELETE"):
        resp = httpx.request(method, f"{server.v1}/jobs/{job_id}", headers=_auth(other))
        assert resp.status_code == 404
        assert resp.json()["error"]["code"] == "not_found"
    assert httpx.get(f"{server.v1}/jobs/job_doesnotexist", headers=_auth(user_key)).status_code == 404
    own = httpx.get(f"{server.v1}/jobs", headers=_auth(user_key)).json()["data"]
    assert [j["id"] for j in own] == [job_id]
    assert httpx.get(f"{server.v1}/jobs", headers=_auth(other)).json()["data"] == []
    # the operator sees everyone's jobs; a user key may not use the admin listing
    admin_view = httpx.get(
        f"{server.base_url}/api/jobs", headers=_auth(server.admin_key), params={"limit": 500}
    ).json()["data"]
    assert job_id in [j["id"] for j in admin_view]
    assert httpx.get(f"{server.base_url}/api/jobs", headers=_auth(user_key)).status_code == 403
    assert (
        httpx.post(f"{server.base_url}/api/jobs/{job_id}/retry", headers=_auth(user_key)).status_code == 403
    )


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Embedded mode with a slow engine (20 tokens/s), so a job is still running when cancelled."""
    srv = make_server(
        tmp_path_factory.mktemp("slow"),
        env={"GPUCLOUD_LOCAL_WORKER__TOKENS_PER_S": "20", "GPUCLOUD_LOCAL_WORKER__NATURAL_END": "false"},
    )
    srv.start()
    yield srv
    srv.stop()


def test_delete_cancels_a_running_job_and_bills_what_was_generated(slow_server: Server) -> None:
    server = slow_server
    key = str(create_key(server, name="canceller")["key"])
    r = httpx.post(
        f"{server.v1}/jobs",
        headers=_auth(key),
        json={"endpoint": "completions", "model": MODEL, "prompt": "long", "max_tokens": 400},
    )
    job_id = r.json()["id"]
    assert _wait_status(server, key, job_id, {"running"})["status"] == "running"
    time.sleep(0.5)  # about 10 tokens
    cancel = httpx.delete(f"{server.v1}/jobs/{job_id}", headers=_auth(key))
    assert cancel.status_code == 200
    started = time.monotonic()
    view = _wait_status(server, key, job_id, {"cancelled"}, timeout_s=5)
    assert view["status"] == "cancelled"
    assert time.monotonic() - started < 2.0  # the engine stops within about a second
    assert view["error"]["code"] == "cancelled"
    totals = httpx.get(f"{server.base_url}/api/usage", headers=_auth(key)).json()["totals"]
    assert totals["requests"] == 1
    assert 1 <= totals["completion_tokens"] < 100  # what was generated, not the 400 asked for
    again = httpx.delete(f"{server.v1}/jobs/{job_id}", headers=_auth(key))
    assert again.status_code == 409


def test_delete_ends_a_queued_job_at_once(slow_server: Server) -> None:
    server = slow_server
    key = str(create_key(server, name="queued-canceller")["key"])
    # Fill the local worker's slots, so the next job waits in the queue.
    slots = 64
    busy = [
        httpx.post(
            f"{server.v1}/jobs",
            headers=_auth(key),
            json={
                "endpoint": "completions",
                "model": MODEL,
                "prompt": "x",
                "max_tokens": 400,
                "priority": "normal",
            },
        ).json()["id"]
        for _ in range(slots)
    ]
    queued = httpx.post(
        f"{server.v1}/jobs",
        headers=_auth(key),
        json={"endpoint": "completions", "model": MODEL, "prompt": "y", "max_tokens": 5},
    ).json()
    assert queued["status"] == "queued"
    assert queued["queue_position"] == 0
    assert httpx.delete(f"{server.v1}/jobs/{queued['id']}", headers=_auth(key)).status_code == 200
    view = _wait_status(server, key, queued["id"], {"cancelled"}, timeout_s=3)
    assert view["status"] == "cancelled"
    assert view["attempts"] == 0  # it never ran
    for job_id in busy:
        httpx.delete(f"{server.v1}/jobs/{job_id}", headers=_auth(key))


async def test_idempotency_key_one_job_one_bill_same_result(server: Server) -> None:
    key = str(create_key(server, name="idempotent")["key"])
    client = openai.AsyncOpenAI(base_url=server.v1, api_key=key, max_retries=0)
    idem = {"Idempotency-Key": f"order-{uuid.uuid4()}"}
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "charge me once"}]

    async def call() -> openai.types.chat.ChatCompletion:
        return await client.chat.completions.create(
            model=MODEL, messages=messages, max_tokens=15, extra_headers=idem
        )

    results = await asyncio.gather(*(call() for _ in range(8)))  # concurrent repeats
    later = await call()  # a repeat after the first one finished (a client retrying after a timeout)
    ids = {r.id for r in [*results, later]}
    texts = {r.choices[0].message.content for r in [*results, later]}
    assert len(ids) == 1
    assert len(texts) == 1
    streamed = await client.chat.completions.create(
        model=MODEL,
        messages=messages,
        max_tokens=15,
        extra_headers=idem,
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage = "", None
    async for chunk in streamed:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        usage = chunk.usage or usage
    assert text in texts
    assert usage is not None
    assert later.usage is not None
    assert usage.completion_tokens == later.usage.completion_tokens
    async with httpx.AsyncClient() as http:
        totals = (await http.get(f"{server.base_url}/api/usage", headers=_auth(key))).json()["totals"]
    assert totals["requests"] == 1
    with pytest.raises(openai.ConflictError):
        await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "other"}], max_tokens=15, extra_headers=idem
        )
    await client.close()


def test_a_result_too_large_for_its_row_is_kept_in_object_storage(server: Server) -> None:
    """Past about a mebibyte of vectors an embeddings result does not fit its job's row: the
    finalizer writes it to object storage, and an idempotent repeat still answers all of it."""
    key = str(create_key(server, name="large result")["key"])
    client = openai.OpenAI(base_url=server.v1, api_key=key, max_retries=0)
    texts = [f"text number {i}" for i in range(800)]  # 800 x 256 floats: 1.09 M base64 characters
    idem = {"Idempotency-Key": f"large-{uuid.uuid4()}"}
    first = client.embeddings.create(model=MODEL, input=texts, extra_headers=idem)
    assert len(first.data) == len(texts)
    again = client.embeddings.create(model=MODEL, input=texts, extra_headers=idem)  # the stored result
    assert [d.embedding for d in again.data] == [d.embedding for d in first.data]
    assert again.usage.prompt_tokens == first.usage.prompt_tokens
    kept = list((server.data_dir / "objects" / "results").glob("job_*/*"))
    assert kept, "the result was not written to object storage"
