"""Signed webhooks on a live server: batch and job events reach a receiver (a real HTTP server on
loopback, allowed by `allow_networks`) signed per Standard Webhooks (verified with the
`standardwebhooks` library and by hand), failed deliveries are retried with backoff until they
succeed, the delivery log and manual redelivery work, redirects and creation are SSRF-checked."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from standardwebhooks.webhooks import Webhook

from tests.batch_support import mixed_input, start_batch, wait_for_batch
from tests.conftest import MODEL, create_key
from tests.support import SECRETS, Server, make_server
from tests.webhook_support import Received, Receiver, receiver


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {
        "GPUCLOUD_WEBHOOKS__ALLOW_NETWORKS": '["127.0.0.1/32"]',  # loopback receivers, but only 127.0.0.1
        "GPUCLOUD_WEBHOOKS__BACKOFF_S": "0.3",
        "GPUCLOUD_WEBHOOKS__EVERY_S": "0.2",
        "GPUCLOUD_BATCHES__EVERY_S": "0.2",
    }
    srv = make_server(tmp_path_factory.mktemp("webhooks"), env=env)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def hooks() -> Iterator[Receiver]:
    with receiver() as r:
        yield r


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _register(server: Server, key: str, url: str, events: list[str]) -> dict[str, Any]:
    r = httpx.post(f"{server.base_url}/api/webhooks", headers=_auth(key), json={"url": url, "events": events})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    SECRETS.add(body["secret"])  # the session's log scan checks no server log holds it
    return body


def _verify(secret: str, request: Received) -> dict[str, Any]:
    """Check the signature twice: with the reference library and by the specification's recipe."""
    payload: dict[str, Any] = Webhook(secret).verify(
        request.body, request.headers
    )  # also checks the timestamp
    msg_id, stamp = request.headers["webhook-id"], request.headers["webhook-timestamp"]
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = hmac.new(key, f"{msg_id}.{stamp}.".encode() + request.body, hashlib.sha256).digest()
    assert request.headers["webhook-signature"] == "v1," + base64.b64encode(expected).decode()
    assert abs(int(stamp) - time.time()) < 60
    return payload


def _deliveries(server: Server, key: str, webhook_id: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{server.base_url}/api/webhooks/{webhook_id}/deliveries", headers=_auth(key))
    assert r.status_code == 200, r.text
    data: list[dict[str, Any]] = r.json()["data"]
    return data


def _async_job(server: Server, key: str, **body: Any) -> str:
    request = {
        "endpoint": "chat.completions",
        "model": MODEL,
        "messages": [{"role": "user", "content": "hi"}],
    }
    r = httpx.post(f"{server.v1}/jobs", headers=_auth(key), json={**request, **body})
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def test_batch_completed_event_is_signed_and_logged(server: Server, hooks: Receiver) -> None:
    key = str(create_key(server)["key"])
    hook = _register(server, key, hooks.url("/batches"), ["batch.completed", "batch.cancelled"])
    assert hook["secret"].startswith("whsec_")
    listed = httpx.get(f"{server.base_url}/api/webhooks", headers=_auth(key)).json()["data"]
    assert [(h["id"], h["secret"]) for h in listed] == [(hook["id"], None)]  # the secret is shown once
    client = openai.OpenAI(base_url=server.v1, api_key=key, max_retries=0)
    batch = wait_for_batch(client, start_batch(client, mixed_input(3)).id)
    assert batch.status == "completed"
    [request] = hooks.wait("/batches", 1)
    payload = _verify(hook["secret"], request)
    assert payload["type"] == "batch.completed"
    assert payload["data"]["id"] == batch.id
    assert payload["data"]["output_file_id"] == batch.output_file_id
    assert payload["data"]["request_counts"] == {"total": 3, "completed": 3, "failed": 0}
    time.sleep(0.5)  # the sender records the answer just after sending
    [delivery] = _deliveries(server, key, hook["id"])
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == ("succeeded", 1, 200)
    assert delivery["event_id"] == request.headers["webhook-id"]
    assert delivery["event_type"] == "batch.completed"
    other = str(create_key(server)["key"])
    assert (
        httpx.get(f"{server.base_url}/api/webhooks/{hook['id']}/deliveries", headers=_auth(other)).status_code
        == 404
    )


def test_failing_receiver_gets_the_event_on_the_fourth_try_then_redelivery(
    server: Server, hooks: Receiver
) -> None:
    key = str(create_key(server)["key"])
    hooks.failures["/flaky"] = 3
    hook = _register(server, key, hooks.url("/flaky"), ["job.completed", "job.failed"])
    job_id = _async_job(server, key)
    requests = hooks.wait("/flaky", 4)
    ids = {r.headers["webhook-id"] for r in requests}
    assert len(ids) == 1  # the same message each try: receivers deduplicate by it
    payloads = [_verify(hook["secret"], r) for r in requests]
    assert payloads[-1]["type"] == "job.completed"
    assert payloads[-1]["data"]["id"] == job_id
    time.sleep(0.5)
    [delivery] = _deliveries(server, key, hook["id"])
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == ("succeeded", 4, 200)
    again = httpx.post(
        f"{server.base_url}/api/webhooks/{hook['id']}/deliveries/{delivery['id']}/redeliver",
        headers=_auth(key),
    )
    assert again.status_code == 202, again.text
    fifth = hooks.wait("/flaky", 5)[-1]
    assert fifth.headers["webhook-id"] in ids
    _verify(hook["secret"], fifth)
    time.sleep(0.5)
    assert _deliveries(server, key, hook["id"])[0]["attempts"] == 5


def test_redirects_are_followed_only_to_allowed_targets(server: Server, hooks: Receiver) -> None:
    key = str(create_key(server)["key"])
    with receiver("127.0.0.2") as elsewhere:  # loopback too, but outside the allowed network
        hooks.redirects["/to-private"] = elsewhere.url("/stolen")
        hooks.redirects["/to-metadata"] = "http://169.254.169.254/latest/meta-data/"
        hooks.redirects["/to-ok"] = "/ok"
        private = _register(server, key, hooks.url("/to-private"), ["job.completed"])
        metadata = _register(server, key, hooks.url("/to-metadata"), ["job.completed"])
        _register(server, key, hooks.url("/to-ok"), ["job.completed"])
        _async_job(server, key)
        hooks.wait("/ok", 1)  # an allowed redirect is followed
        hooks.wait("/to-private", 1)
        hooks.wait("/to-metadata", 1)
        time.sleep(0.5)
        assert elsewhere.received == []
        for hook in (private, metadata):
            delivery = _deliveries(server, key, hook["id"])[0]
            assert delivery["status"] == "pending"  # retried later, never delivered there
            assert "non-public" in delivery["last_error"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.2:9/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://[::1]/",
        "ftp://example.com/",
    ],
)
def test_unsafe_urls_are_refused_at_creation(server: Server, url: str) -> None:
    r = httpx.post(
        f"{server.base_url}/api/webhooks",
        headers=_auth(server.admin_key),
        json={"url": url, "events": ["batch.completed"]},
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == "url"


def test_unknown_event_is_refused(server: Server) -> None:
    r = httpx.post(
        f"{server.base_url}/api/webhooks",
        headers=_auth(server.admin_key),
        json={"url": "http://127.0.0.1:9/", "events": ["batch.exploded"]},
    )
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "events"
    assert r.json()["error"]["type"] == "invalid_request_error"
