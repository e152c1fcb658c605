"""Signed webhooks on a live server: batch and job events reach a receiver (a real HTTP server on
loopback, allowed by `allow_networks`) signed per Standard Webhooks (verified with the
`standardwebhooks` library and by hand), failed deliveries are retried with backoff until they
succeed, the delivery log and manual redelivery work, redirects and creation are SSRF-checked, a
batch that fails is announced as `batch.failed`. An organisation's endpoint hears every key of it
and no other; its keys all read it, only its owners', admins' and unowned keys change it."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.batch_support import db_rows, mixed_input, start_batch, wait_for_batch
from tests.conftest import MODEL, create_key
from tests.integration.accounts_support import create_org, new_member
from tests.support import SECRETS, Server, make_server
from tests.webhook_support import Receiver, receiver, register, verify


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


def _deliveries(server: Server, key: str, webhook_id: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{server.base_url}/api/webhooks/{webhook_id}/deliveries", headers=_auth(key))
    assert r.status_code == 200, r.text
    data: list[dict[str, Any]] = r.json()["data"]
    return data


def _until(what: str, probe: Callable[[], Any], timeout_s: float = 60) -> Any:
    """The first truthy answer of `probe`, asked until a deadline (generous: the suite runs loaded)."""
    deadline = time.monotonic() + timeout_s
    while not (found := probe()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not so after {timeout_s} s")
        time.sleep(0.1)
    return found


def _org_key(server: Server, org_id: str) -> tuple[str, str]:
    """A key a platform admin made for the organisation (no member owns it): its id and secret."""
    made = create_key(server, org_id=org_id)
    return str(made["id"]), str(made["key"])


def _member_key(server: Server, org_id: str, role: str) -> str:
    """A key that a new member with `role` in the organisation made for themselves."""
    _, token = new_member(server, org_id, role)
    r = httpx.post(
        f"{server.base_url}/api/keys",
        json={"name": f"{role}'s", "org_id": org_id},
        headers=_auth(token),
        timeout=10,
    )
    assert r.status_code == 201, r.text
    SECRETS.add(r.json()["key"])
    return str(r.json()["key"])


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
    hook = register(server, key, hooks.url("/batches"), ["batch.completed", "batch.cancelled"])
    assert hook["secret"].startswith("whsec_")
    listed = httpx.get(f"{server.base_url}/api/webhooks", headers=_auth(key)).json()["data"]
    assert [(h["id"], h["secret"]) for h in listed] == [(hook["id"], None)]  # the secret is shown once
    client = openai.OpenAI(base_url=server.v1, api_key=key, max_retries=0)
    batch = wait_for_batch(client, start_batch(client, mixed_input(3)).id)
    assert batch.status == "completed"
    [request] = hooks.wait("/batches", 1)
    payload = verify(hook["secret"], request)
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
    hook = register(server, key, hooks.url("/flaky"), ["job.completed", "job.failed"])
    job_id = _async_job(server, key)
    requests = hooks.wait("/flaky", 4)
    ids = {r.headers["webhook-id"] for r in requests}
    assert len(ids) == 1  # the same message each try: receivers deduplicate by it
    payloads = [verify(hook["secret"], r) for r in requests]
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
    verify(hook["secret"], fifth)
    time.sleep(0.5)
    assert _deliveries(server, key, hook["id"])[0]["attempts"] == 5


def test_redirects_are_followed_only_to_allowed_targets(server: Server, hooks: Receiver) -> None:
    key = str(create_key(server)["key"])
    with receiver("127.0.0.2") as elsewhere:  # loopback too, but outside the allowed network
        hooks.redirects["/to-private"] = elsewhere.url("/stolen")
        hooks.redirects["/to-metadata"] = "http://169.254.169.254/latest/meta-data/"
        hooks.redirects["/to-ok"] = "/ok"
        private = register(server, key, hooks.url("/to-private"), ["job.completed"])
        metadata = register(server, key, hooks.url("/to-metadata"), ["job.completed"])
        register(server, key, hooks.url("/to-ok"), ["job.completed"])
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


def test_a_batch_whose_input_is_lost_fails_and_batch_failed_is_delivered(
    server: Server, hooks: Receiver
) -> None:
    key = str(create_key(server)["key"])
    hook = register(server, key, hooks.url("/failed"), ["batch.failed"])
    client = openai.OpenAI(base_url=server.v1, api_key=key, max_retries=0)
    source = mixed_input(2).data()
    uploaded = client.files.create(file=("input.jsonl", io.BytesIO(source)), purpose="batch")
    # The stored bytes go missing (object storage lost them) before the batch reads them back:
    # the batch fails when it validates its input, a real failure path, with nothing faked.
    [(storage_key,)] = db_rows(server, "SELECT storage_key FROM files WHERE id = ?", uploaded.id)
    (server.data_dir / "objects" / storage_key).unlink()
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    ended = wait_for_batch(client, batch.id)
    assert ended.status == "failed"
    [request] = hooks.wait("/failed", 1, timeout_s=60)
    payload = verify(hook["secret"], request)
    assert payload["type"] == "batch.failed"
    assert (payload["data"]["id"], payload["data"]["status"]) == (batch.id, "failed")
    assert [e["code"] for e in payload["data"]["errors"]["data"]] == ["file_missing"]


def test_an_organisations_endpoint_hears_all_its_keys_and_only_them(server: Server, hooks: Receiver) -> None:
    org, rivals = create_org(server, "hooks"), create_org(server, "rivals")
    maker_id, maker = _org_key(server, org)
    _, colleague = _org_key(server, org)
    _, outsider = _org_key(server, rivals)
    unorganised = str(create_key(server)["key"])  # the default organisation: endpoints of its own
    events = ["batch.completed", "job.completed"]
    hook = register(server, maker, hooks.url("/org"), events)
    assert (hook["org_id"], hook["created_by"]) == (org, maker_id)
    theirs = register(server, outsider, hooks.url("/rivals"), events)

    for key in (maker, colleague):  # every key of the organisation sees it, never its secret
        listed = httpx.get(f"{server.base_url}/api/webhooks", headers=_auth(key)).json()["data"]
        assert [(h["id"], h["secret"]) for h in listed] == [(hook["id"], None)]
    for stranger in (outsider, unorganised):
        listed = httpx.get(f"{server.base_url}/api/webhooks", headers=_auth(stranger)).json()["data"]
        assert hook["id"] not in {h["id"] for h in listed}
        base = f"{server.base_url}/api/webhooks/{hook['id']}"
        assert httpx.get(f"{base}/deliveries", headers=_auth(stranger)).status_code == 404
        assert httpx.delete(base, headers=_auth(stranger)).status_code == 404

    # The other organisation's job ends first; once its own endpoint has heard of it, it was
    # fanned out (to every endpoint it belongs to, in one transaction): ours must have no delivery.
    outsider_job = _async_job(server, outsider)
    [heard] = hooks.wait("/rivals", 1, timeout_s=60)
    assert verify(theirs["secret"], heard)["data"]["id"] == outsider_job
    assert _deliveries(server, colleague, hook["id"]) == []

    # A job and a batch of the colleague, not of the key that registered the endpoint.
    job_id = _async_job(server, colleague)
    client = openai.OpenAI(base_url=server.v1, api_key=colleague, max_retries=0)
    batch = wait_for_batch(client, start_batch(client, mixed_input(2)).id)
    assert batch.status == "completed"
    requests = hooks.wait("/org", 2, timeout_s=60)
    seen = {(p["type"], p["data"]["id"]) for p in (verify(hook["secret"], r) for r in requests)}
    assert seen == {("job.completed", job_id), ("batch.completed", batch.id)}
    assert len(hooks.at("/rivals")) == 1  # and nothing of ours reached the other organisation

    def succeeded() -> set[str]:
        return {
            d["event_id"] for d in _deliveries(server, colleague, hook["id"]) if d["status"] == "succeeded"
        }

    assert _until("both deliveries are logged as succeeded", lambda: len(succeeded()) == 2)
    assert succeeded() == {r.headers["webhook-id"] for r in requests}


def test_changing_an_organisations_endpoints_takes_an_owner_or_admin(server: Server, hooks: Receiver) -> None:
    org = create_org(server, "roles")
    _, unowned = _org_key(server, org)  # a platform admin made it for the organisation
    member, admin = _member_key(server, org, "member"), _member_key(server, org, "admin")
    hook = register(server, unowned, hooks.url("/roles"), ["job.completed"])
    listed = httpx.get(f"{server.base_url}/api/webhooks", headers=_auth(member)).json()
    assert [h["id"] for h in listed["data"]] == [hook["id"]]  # a member's key reads them
    assert listed["can_manage"] is False  # and is told it may not change them (the page hides how)
    for key in (unowned, admin):
        assert httpx.get(f"{server.base_url}/api/webhooks", headers=_auth(key)).json()["can_manage"] is True

    refused = httpx.post(
        f"{server.base_url}/api/webhooks",
        headers=_auth(member),
        json={"url": hooks.url("/mine"), "events": ["job.completed"]},
    )
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "org_role_required"
    assert (
        httpx.delete(f"{server.base_url}/api/webhooks/{hook['id']}", headers=_auth(member)).status_code == 403
    )

    job_id = _async_job(server, member)  # the member's work is the organisation's: it is told
    [request] = hooks.wait("/roles", 1, timeout_s=60)
    assert verify(hook["secret"], request)["data"]["id"] == job_id
    [delivery] = _until("the delivery is logged", lambda: _deliveries(server, member, hook["id"]))
    again = f"{server.base_url}/api/webhooks/{hook['id']}/deliveries/{delivery['id']}/redeliver"
    assert httpx.post(again, headers=_auth(member)).status_code == 403
    assert httpx.post(again, headers=_auth(admin)).status_code == 202
    hooks.wait("/roles", 2, timeout_s=60)

    own = register(server, admin, hooks.url("/admins"), ["batch.completed"])  # an org admin's key
    assert own["org_id"] == org
    for endpoint in (own, hook):
        gone = httpx.delete(f"{server.base_url}/api/webhooks/{endpoint['id']}", headers=_auth(admin))
        assert gone.status_code == 200, gone.text
    assert httpx.get(f"{server.base_url}/api/webhooks", headers=_auth(unowned)).json()["data"] == []
