"""Finding 5 of the security review: one input policy at the edge, on PostgreSQL.

PostgreSQL refuses NUL in text columns and columns have lengths: each input that used to reach
the database that way is now a 400 naming the parameter (or, for `x-request-id`, replaced by a
generated id), and no request ends in a 500 or leaves its content in the log.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from gpucloud.keys import generate_secret
from tests.support import SECRETS, Server, create_pg_database, drop_pg_database, make_server

PROMPT_MARK = "prompt-content-a91c"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    url = create_pg_database()
    server = make_server(tmp_path_factory.mktemp("inputs"), database_url=url)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        drop_pg_database(url)


def call(server: Server, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {server.admin_key}", **kwargs.pop("headers", {})}
    return httpx.request(method, f"{server.base_url}{path}", headers=headers, timeout=10, **kwargs)


def refused(r: httpx.Response, param: str) -> None:
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == param, error
    assert error["type"] == "invalid_request_error"


def test_a_long_request_id_is_replaced_and_the_request_served(server: Server) -> None:
    client = openai.OpenAI(base_url=server.v1, api_key=server.admin_key, max_retries=0)
    for length in (100, 101, 128):
        caller_id = "r" * length
        raw = client.chat.completions.with_raw_response.create(
            model="gpucloud-sim-1",
            messages=[{"role": "user", "content": PROMPT_MARK}],
            max_tokens=4,
            extra_headers={"x-request-id": caller_id},
        )
        assert raw.http_response.status_code == 200
        kept = raw.headers["x-request-id"]
        assert (kept == caller_id) == (length <= 100), kept


@pytest.mark.parametrize("bad", ["a\x00b", "a\x01b", "a\x7fb"])
def test_control_characters_in_bodies_are_400s_naming_the_field(server: Server, bad: str) -> None:
    refused(call(server, "POST", "/api/keys", json={"name": bad}), "name")
    refused(call(server, "POST", "/api/keys", json={"name": "k", "allowed_models": [bad]}), "allowed_models")
    refused(call(server, "POST", "/api/workers/tokens", json={"name": bad}), "name")
    deployment: dict[str, object] = {"name": "d1", "engine": "simulated", "gpu_type": bad}
    refused(call(server, "POST", "/api/deployments", json=deployment), "gpu_type")
    deployment = {"name": "d1", "engine": "simulated", "labels": {"zone": bad}}
    refused(call(server, "POST", "/api/deployments", json=deployment), "labels")
    chat = {"model": "gpucloud-sim-1", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    refused(call(server, "POST", "/v1/chat/completions", json={**chat, "user": bad}), "user")
    refused(call(server, "POST", "/v1/chat/completions", json={**chat, "model": bad}), "model")


def test_a_worker_hostname_with_nul_is_refused(server: Server) -> None:
    r = call(server, "POST", "/api/workers/tokens", json={"name": "inputs"})
    token = r.json()["token"]
    body = {"worker_id": "w-nul", "hostname": "h\x00x", "cpu_count": 1, "memory_total_bytes": 0,
            "memory_available_bytes": 0, "slots": 1}  # fmt: skip
    headers = {"Authorization": f"Bearer {token}"}
    refused(httpx.post(f"{server.base_url}/api/workers/register", json=body, headers=headers), "hostname")


def test_control_characters_in_paths_and_queries_are_400s(server: Server) -> None:
    for path in ("/api/keys/key%00x", "/v1/jobs/job%00x", "/api/deployments/d%00", "/api/workers/w%01"):
        refused(call(server, "GET", path), "path")
    refused(call(server, "GET", "/api/usage", params={"model": "a\x00b"}), "model")
    refused(call(server, "GET", "/api/jobs", params={"key_id": "k\x00"}), "key_id")
    refused(call(server, "GET", "/v1/jobs", params={"status": "x" * 5000}), "status")
    refused(call(server, "GET", "/api/usage?model=%ff%00"), "query")
    # Tabs and newlines are as refused as NUL in a path or a query (they never belong there).
    refused(call(server, "GET", "/api/usage", params={"model": "a\nb"}), "model")


def test_plain_text_and_prompts_with_control_characters_still_work(server: Server) -> None:
    client = openai.OpenAI(base_url=server.v1, api_key=server.admin_key, max_retries=0)
    out = client.chat.completions.create(
        model="gpucloud-sim-1",
        messages=[{"role": "user", "content": f"line one\nline\ttwo\x00 {PROMPT_MARK}"}],
        max_tokens=4,
    )
    assert out.choices[0].message.content is not None
    assert call(server, "POST", "/api/keys", json={"name": "plain name"}).status_code == 201


def test_nothing_above_failed_with_a_500_or_logged_request_content(server: Server) -> None:
    logs = server.logs()
    assert "unhandled error" not in logs
    assert " 500 " not in logs
    assert PROMPT_MARK not in logs
    assert "[parameters:" not in logs


@pytest.fixture(scope="module")
def json_logging(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = make_server(tmp_path_factory.mktemp("json-logs"), env={"GPUCLOUD_LOG_FORMAT": "json"})
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_key_shaped_request_ids_and_model_names_never_reach_the_log(json_logging: Server) -> None:
    """Finding 8: a client's request id that looks like a key is replaced; a model name that does
    is masked in the access log's structured fields."""
    server = json_logging

    fake = generate_secret("gc_")
    SECRETS.add(fake)  # the session's final scan of every log checks it too
    client = openai.OpenAI(base_url=server.v1, api_key=server.admin_key, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="gpucloud-sim-1",
        messages=[{"role": "user", "content": "hi"}],
        max_tokens=2,
        extra_headers={"x-request-id": fake},
    )
    assert raw.headers["x-request-id"] != fake
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model=fake, messages=[{"role": "user", "content": "x"}])
    time.sleep(0.3)  # the access line is written when the response ends
    logs = server.logs()
    assert fake not in logs
    assert '"model":"gc_[redacted]"' in logs


def test_numbers_beyond_what_the_columns_hold_are_400s(server: Server) -> None:
    """Found by the fuzzer: a budget of 1e308 USD overflowed its micro-dollar column (500)."""
    for field, value in (("budget_usd", 1.5e308), ("max_concurrency", 2**40), ("rpm_limit", 2**31),
                         ("tpm_limit", 2**33), ("token_quota", 2**62)):  # fmt: skip
        refused(call(server, "POST", "/api/keys", json={"name": "big", field: value}), field)
    r = call(server, "POST", "/api/keys", json={"name": "big", "budget_usd": 1e9, "rpm_limit": 2**31 - 1})
    assert r.status_code == 201, r.text
