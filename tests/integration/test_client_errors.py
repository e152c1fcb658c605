"""Findings 3 and 4 of the security review: a client's bad input is the client's 400, never a
replica failure.

An embedded `gpucloud serve` with a deployment whose model has a 64-token context: prompts
beyond it are 400 `context_length_exceeded` for the official SDK, the replica stays in rotation
after more of them than the breaker's threshold, and no reason anywhere quotes a request. A
278 KB prompt of CJK text (past the tokenizer's chunk limit) is a clean answer, for a key with a
token limit (counted by the gateway) and for one without (counted on the worker), in one attempt.
A prompt on which the engine itself fails with an unexpected exception (a poison input) fails its
job once, without its text in the answer, and the replica goes on serving.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.support import SECRETS, Server, make_server

SECRET_PROMPT = "confidential-prompt-of-user-a " * 40
BUG = "ENGINE-BUG-PILL"  # the simulated engine raises a plain RuntimeError on prompts holding it


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = make_server(tmp_path_factory.mktemp("client-errors"))
    server.start()
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    body = {"name": "short-ctx", "engine": "simulated", "gpu_count": 0,
            "engine_options": {"max_model_tokens": "64", "bug_marker": BUG}}  # fmt: skip
    assert httpx.post(f"{server.base_url}/api/deployments", json=body, headers=headers).status_code == 201
    try:
        server.wait_for_model("short-ctx")
        wait_ready(server)
        yield server
    finally:
        server.stop()


def wait_ready(server: Server) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        d: dict[str, Any] = httpx.get(f"{server.base_url}/api/deployments/short-ctx", headers=headers).json()
        if d["state"] == "ready":
            return d
        time.sleep(0.1)
    raise AssertionError("short-ctx never became ready")


def test_prompts_over_the_context_are_400s_that_never_trip_the_breaker(server: Server) -> None:
    client = openai.OpenAI(base_url=server.v1, api_key=server.admin_key, max_retries=0)
    for _ in range(8):  # more than the breaker's threshold (5 in 60 s)
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(
                model="short-ctx", messages=[{"role": "user", "content": SECRET_PROMPT}], max_tokens=4
            )
        assert caught.value.code == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model="short-ctx", prompt=SECRET_PROMPT)
    assert caught.value.code == "context_length_exceeded"
    out = client.chat.completions.create(
        model="short-ctx", messages=[{"role": "user", "content": "hi"}], max_tokens=4
    )
    assert out.choices[0].message.content is not None
    d = wait_ready(server)
    assert all(r["state"] == "ready" for r in d["replica_states"]), d
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    for path in ("/api/deployments", "/api/workers", "/api/cluster"):
        assert "confidential-prompt" not in httpx.get(f"{server.base_url}{path}", headers=headers).text


def cjk_prompt() -> str:
    rng = random.Random(18)
    text = "".join(chr(rng.randint(0x4E00, 0x9FFF)) for _ in range(93_000))
    assert len(text.encode()) > 278_000  # about 220,000 tokens in one run of text without spaces
    return text


def test_a_huge_cjk_prompt_is_a_clean_answer_with_and_without_a_token_limit(server: Server) -> None:
    admin = {"Authorization": f"Bearer {server.admin_key}"}
    body = {"name": "tpm", "tpm_limit": 10_000_000}  # the gateway counts its prompts
    r = httpx.post(f"{server.base_url}/api/keys", json=body, headers=admin)
    assert r.status_code == 201, r.text
    limited = r.json()["key"]
    SECRETS.add(limited)
    prompt = cjk_prompt()
    for key in (limited, server.admin_key):
        client = openai.OpenAI(base_url=server.v1, api_key=key, max_retries=0, timeout=60)
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(
                model="gpucloud-sim-1", messages=[{"role": "user", "content": prompt}], max_tokens=4
            )
        assert caught.value.code == "context_length_exceeded"  # 4096 tokens: counted, then refused
    jobs = httpx.get(f"{server.base_url}/api/jobs", params={"model": "gpucloud-sim-1"}, headers=admin).json()
    failed = [j for j in jobs["data"] if j["status"] == "failed"]
    assert len(failed) == 2, jobs
    assert all(j["attempts"] == 1 for j in failed), failed  # never re-delivered


def test_an_unexpected_engine_error_fails_its_job_once(server: Server) -> None:
    client = openai.OpenAI(base_url=server.v1, api_key=server.admin_key, max_retries=0)
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(
            model="short-ctx",
            messages=[{"role": "user", "content": f"{BUG} confidential-prompt-of-user-a"}],
            max_tokens=4,
            extra_headers={"x-request-id": "poison-pill-1"},
        )
    assert caught.value.status_code == 500
    assert caught.value.code == "engine_error"
    assert "confidential-prompt" not in caught.value.response.text
    admin = {"Authorization": f"Bearer {server.admin_key}"}
    jobs = httpx.get(f"{server.base_url}/api/jobs", params={"model": "short-ctx"}, headers=admin).json()
    (job,) = [j for j in jobs["data"] if j["request_id"] == "poison-pill-1"]
    assert (job["status"], job["attempts"]) == ("failed", 1)  # failed once, never re-delivered
    out = client.chat.completions.create(
        model="short-ctx", messages=[{"role": "user", "content": "hi"}], max_tokens=4
    )
    assert out.choices[0].message.content is not None
    assert "simulated engine bug" in server.logs()  # the details are in the worker's log
