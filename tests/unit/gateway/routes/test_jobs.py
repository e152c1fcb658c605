"""Asynchronous jobs (gateway/routes/jobs.py) on the real app: submit, fetch the result, list,
cancel; admins list every key's jobs."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.unit.gateway.conftest import MODEL, LiveApp


async def finished(live: LiveApp, job_id: str, bearer: dict[str, str]) -> dict[str, Any]:
    for _ in range(200):
        body: dict[str, Any] = (await live.client.get(f"/v1/jobs/{job_id}", headers=bearer)).json()
        if body["status"] in ("completed", "failed", "cancelled"):
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


async def test_a_job_runs_and_its_result_is_fetched(live: LiveApp) -> None:
    key_id, secret = await live.new_key()
    bearer = {"Authorization": f"Bearer {secret}"}
    payload = {"endpoint": "completions", "model": MODEL, "prompt": "Once", "max_tokens": 3}
    submitted = await live.client.post("/v1/jobs", json=payload, headers=bearer)
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["id"]
    done = await finished(live, job_id, bearer)
    assert done["status"] == "completed"
    assert done["result"]["usage"]["completion_tokens"] == 3
    listed = (await live.client.get("/v1/jobs", headers=bearer)).json()["data"]
    assert [j["id"] for j in listed] == [job_id]
    ended = await live.client.delete(f"/v1/jobs/{job_id}", headers=bearer)
    assert (ended.status_code, ended.json()["error"]["code"]) == (409, "job_ended")
    everyone = (await live.client.get("/api/jobs", headers=live.admin)).json()["data"]
    assert job_id in [j["id"] for j in everyone]
    _, stranger = await live.new_key()
    assert (
        await live.client.get(f"/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {stranger}"})
    ).status_code == 404
    assert key_id


async def test_bad_jobs_are_refused_by_name(live: LiveApp) -> None:
    _, secret = await live.new_key()
    bearer = {"Authorization": f"Bearer {secret}"}
    no_endpoint = await live.client.post("/v1/jobs", json={"model": MODEL, "prompt": "x"}, headers=bearer)
    assert (no_endpoint.status_code, no_endpoint.json()["error"]["param"]) == (400, "endpoint")
    streaming = await live.client.post(
        "/v1/jobs",
        json={"endpoint": "completions", "model": MODEL, "prompt": "x", "stream": True},
        headers=bearer,
    )
    assert (streaming.status_code, streaming.json()["error"]["param"]) == (400, "stream")
    invalid = await live.client.post(
        "/v1/jobs", json={"endpoint": "chat.completions", "model": MODEL, "messages": "x"}, headers=bearer
    )
    assert (invalid.status_code, invalid.json()["error"]["param"]) == (400, "messages")
    retry = await live.client.post("/api/jobs/job_missing/retry", headers=live.admin)
    assert retry.status_code == 404
