"""The response models of `gateway.views` match what a live `gpucloud serve` sends.

Every JSON route is called on an embedded server with a simulated GPU (so workers, deployments
and the cluster have data) and its body is validated with the model the OpenAPI schema names for
it; the models forbid extra fields, so a field the server sends but the schema lacks fails here.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from gpucloud.gateway import views
from gpucloud.gateway.app import create_app
from gpucloud.settings import Settings
from tests.support import Server, make_server

# Routes whose answer is not one JSON body: streams, CSV, Prometheus text.
# Prometheus text, file bytes, and the single sign-on redirects (302s, no JSON body).
UNTYPED = {
    ("GET", "/metrics"),
    ("GET", "/v1/files/{file_id}/content"),
    ("GET", "/api/auth/oidc/login"),
    ("GET", "/api/auth/oidc/callback"),
}


@pytest.fixture(scope="module")
def laptop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("response-schemas")
    env = {
        "GPUCLOUD_LOCAL_WORKER__SIMULATE_GPUS": "H100:80",
        "GPUCLOUD_CLUSTER__MONITOR_EVERY_S": "0.25",
    }
    server = make_server(tmp, env=env)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def api(laptop: Server) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {laptop.admin_key}"}
    with httpx.Client(base_url=laptop.base_url, headers=headers, timeout=10) as client:
        yield client


def check(response: httpx.Response, model: type[BaseModel], status: int = 200) -> Any:
    """The body, after asserting the status and that `model` describes it exactly."""
    assert response.status_code == status, response.text
    body = response.json()
    model.model_validate(body)
    return body


def wait_for(check_once: Any, timeout_s: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if found := check_once():
            return found
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_every_json_route_names_its_response_schema() -> None:
    schema = create_app(Settings()).openapi()
    missing = []
    for path, operations in schema["paths"].items():
        if not path.startswith(("/api/", "/v1/")):
            continue
        for method, operation in operations.items():
            if (method.upper(), path) in UNTYPED:
                continue
            ok = [
                r
                for code, r in operation["responses"].items()
                if code.startswith("2")
                and "$ref" in r.get("content", {}).get("application/json", {}).get("schema", {})
            ]
            if not ok:
                missing.append(f"{method.upper()} {path}")
    assert missing == []


def test_keys_and_me(api: httpx.Client) -> None:
    created = check(
        api.post("/api/keys", json={"name": "schemas", "rpm_limit": 100, "token_quota": 10_000}),
        views.ApiKeyCreated,
        201,
    )
    key_id = created["id"]
    check(api.get("/api/keys"), views.ApiKeyList)
    detail = check(api.get(f"/api/keys/{key_id}"), views.ApiKeyDetail)
    assert detail["status"]["window"] is not None
    check(
        api.patch(f"/api/keys/{key_id}", json={"budget_usd": 5, "budget_period": "daily"}), views.ApiKeyView
    )
    check(api.get("/api/me"), views.ApiKeyView)
    user = httpx.get(
        f"{api.base_url}/api/me", headers={"Authorization": f"Bearer {created['key']}"}, timeout=10
    )
    check(user, views.ApiKeyView)
    check(api.delete(f"/api/keys/{key_id}"), views.ApiKeyView)


def test_models_and_inference(api: httpx.Client) -> None:
    models = check(api.get("/v1/models"), views.ModelList)
    assert models["data"]
    check(api.get("/v1/models/gpucloud-sim-1"), views.ModelCard)
    chat = {
        "model": "gpucloud-sim-1",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 4,
        "n": 2,
    }
    check(api.post("/v1/chat/completions", json=chat), views.ChatCompletion)
    function = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    with_tools = {**chat, "tools": [function], "tool_choice": "required", "logprobs": True}
    check(api.post("/v1/chat/completions", json=with_tools), views.ChatCompletion)
    text = {"model": "gpucloud-sim-1", "prompt": "hi", "max_tokens": 4}
    check(api.post("/v1/completions", json=text), views.TextCompletion)
    tool = {"type": "function", "name": "f", "parameters": {"type": "object"}}
    for extra in ({}, {"tools": [tool], "tool_choice": "required"}):
        body = {"model": "gpucloud-sim-1", "input": "hi", "max_output_tokens": 5, **extra}
        check(api.post("/v1/responses", json=body), views.ResponseObject)
    for encoding in ("float", "base64"):
        embed = {"model": "gpucloud-sim-1", "input": ["a", "b"], "encoding_format": encoding}
        check(api.post("/v1/embeddings", json=embed), views.EmbeddingList)


def test_jobs(api: httpx.Client) -> None:
    body = {
        "endpoint": "chat.completions",
        "model": "gpucloud-sim-1",
        "messages": [{"role": "user", "content": "x"}],
    }
    job = check(api.post("/v1/jobs", json={**body, "max_tokens": 4}), views.JobView, 202)
    done = wait_for(lambda: (j := api.get(f"/v1/jobs/{job['id']}").json())["status"] == "completed" and j)
    views.JobView.model_validate(done)
    assert done["result"]["object"] == "chat.completion"
    check(api.get("/v1/jobs"), views.JobList)
    check(api.get("/api/jobs", params={"status": "completed"}), views.JobList)
    text = check(
        api.post("/v1/jobs", json={"endpoint": "completions", "model": "gpucloud-sim-1", "prompt": "y"}),
        views.JobView,
        202,
    )
    wait_for(lambda: api.get(f"/v1/jobs/{text['id']}").json()["status"] == "completed")
    assert check(api.get(f"/v1/jobs/{text['id']}"), views.JobView)["result"]["object"] == "text_completion"


def test_cancelled_and_failed_jobs(api: httpx.Client) -> None:
    options = {"load_s": "0.1", "tokens_per_s": "5", "fail_marker": "FAIL-NOW"}
    spec = {"name": "slow-model", "engine": "simulated", "gpu_memory_gb": 8, "engine_options": options}
    check(api.post("/api/deployments", json=spec), views.DeploymentView, 201)
    wait_for(lambda: api.get("/api/deployments/slow-model").json()["state"] == "ready")
    body = {"endpoint": "chat.completions", "model": "slow-model", "max_tokens": 2000}
    long = check(
        api.post("/v1/jobs", json={**body, "messages": [{"role": "user", "content": "x"}]}),
        views.JobView,
        202,
    )
    cancelled = check(api.delete(f"/v1/jobs/{long['id']}"), views.JobView)
    assert cancelled["id"] == long["id"]
    ended = wait_for(lambda: (j := api.get(f"/v1/jobs/{long['id']}").json())["status"] == "cancelled" and j)
    assert views.JobView.model_validate(ended).error is not None
    failing = {**body, "messages": [{"role": "user", "content": "FAIL-NOW"}]}
    job = check(api.post("/v1/jobs", json=failing), views.JobView, 202)
    failed = wait_for(
        lambda: (j := api.get(f"/v1/jobs/{job['id']}").json())["status"] in ("failed", "dead") and j
    )
    assert views.JobView.model_validate(failed).error is not None
    check(api.get("/api/jobs", params={"model": "slow-model"}), views.JobList)
    check(api.delete("/api/deployments/slow-model"), views.DeploymentDeleted)


def test_usage_and_stats(api: httpx.Client) -> None:
    chat = {"model": "gpucloud-sim-1", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    assert api.post("/v1/chat/completions", json=chat).status_code == 200
    day = wait_for(lambda: (u := api.get("/api/usage").json())["data"] and u)
    views.UsageReport.model_validate(day)
    assert "day" in day["data"][0]
    hour = check(
        api.get("/api/usage", params={"granularity": "hour", "group_by": "model"}), views.UsageReport
    )
    assert "hour" in hour["data"][0]
    assert hour["data"][0]["key_id"] is None
    stats = check(api.get("/api/stats"), views.Stats)
    assert len(stats["series"]) == 60


def test_deployments_workers_and_cluster(api: httpx.Client) -> None:
    spec = {
        "name": "schema-model",
        "engine": "simulated",
        "gpu_memory_gb": 8,
        "engine_options": {"load_s": "0.1"},
    }
    check(api.post("/api/deployments", json=spec), views.DeploymentView, 201)
    ready = wait_for(lambda: (d := api.get("/api/deployments/schema-model").json())["state"] == "ready" and d)
    views.DeploymentView.model_validate(ready)
    assert ready["replica_states"]
    check(api.get("/api/deployments"), views.DeploymentList)
    cluster = check(api.get("/api/cluster"), views.ClusterView)
    assert cluster["deployments"]["schema-model"]["replica_states"]
    workers = check(api.get("/api/workers"), views.WorkerList)
    local = workers["data"][0]
    assert local["gpus"]
    assert local["replicas"]
    check(api.get(f"/api/workers/{local['id']}"), views.WorkerView)
    check(api.patch("/api/deployments/schema-model", json={"replicas": 0}), views.DeploymentView)
    check(api.delete("/api/deployments/schema-model"), views.DeploymentDeleted)


def test_worker_tokens_registration_and_drain(api: httpx.Client) -> None:
    created = check(api.post("/api/workers/tokens", json={"name": "schemas"}), views.WorkerTokenCreated, 201)
    check(api.get("/api/workers/tokens"), views.WorkerTokenList)
    agent = {"Authorization": f"Bearer {created['token']}"}
    gpu = {
        "index": 0,
        "uuid": "GPU-schemas",
        "name": "L4",
        "memory_total_bytes": 24 << 30,
        "memory_used_bytes": 0,
    }
    registration = {
        "worker_id": "schemas-1",
        "hostname": "schemas",
        "cpu_count": 4,
        "memory_total_bytes": 8 << 30,
        "memory_available_bytes": 4 << 30,
        "gpus": [gpu],
        "models": [],
        "slots": 1,
        "labels": {"pool": "none"},
    }
    # Drained before it beats, so the controller places nothing on it.
    orders = check(api.post("/api/workers/register", json=registration, headers=agent), views.WorkerOrders)
    check(api.post("/api/workers/schemas-1/drain"), views.WorkerView)
    beat = {"running": 0, "gpus": [gpu], "replicas": []}
    session = {**agent, "x-gpucloud-worker-session": orders["session"]}
    check(api.post("/api/workers/schemas-1/heartbeat", json=beat, headers=session), views.WorkerOrders)
    check(api.get("/api/workers/schemas-1"), views.WorkerView)
    check(api.post("/api/workers/schemas-1/undrain"), views.WorkerView)
    check(api.get("/api/cluster"), views.ClusterView)
    check(api.delete(f"/api/workers/tokens/{created['id']}"), views.WorkerTokenView)


def test_files_batches_and_webhooks(api: httpx.Client) -> None:
    from gpucloud.gateway.views import offline

    line = {
        "custom_id": "a",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "gpucloud-sim-1", "messages": [{"role": "user", "content": "x"}], "max_tokens": 2},
    }
    import json

    upload = api.post(
        "/v1/files", files={"file": ("in.jsonl", json.dumps(line).encode())}, data={"purpose": "batch"}
    )
    file = check(upload, offline.FileObject)
    check(api.get("/v1/files"), offline.FileList)
    check(api.get(f"/v1/files/{file['id']}"), offline.FileObject)
    create = {"input_file_id": file["id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    batch = check(api.post("/v1/batches", json=create), offline.BatchObject)
    check(api.get("/v1/batches"), offline.BatchList)
    done = wait_for(
        lambda: (b := api.get(f"/v1/batches/{batch['id']}").json())["status"] == "completed" and b
    )
    offline.BatchObject.model_validate(done)
    hook = {
        "url": "http://93.184.216.34/hooks",
        "events": ["batch.completed"],
    }  # never called: no event follows
    created = check(api.post("/api/webhooks", json=hook), offline.WebhookEndpointView, 201)
    check(api.get("/api/webhooks"), offline.WebhookEndpointList)
    check(api.get(f"/api/webhooks/{created['id']}/deliveries"), offline.WebhookDeliveryList)
    check(api.delete(f"/api/webhooks/{created['id']}"), offline.WebhookEndpointView)
    check(api.delete(f"/v1/files/{file['id']}"), offline.FileDeleted)


def test_users_and_sign_in(api: httpx.Client) -> None:
    body = {"email": "schemas@example.com", "password": "schemas-password-1"}
    user = check(api.post("/api/users", json=body), views.UserView, 201)
    check(api.get("/api/users"), views.UserList)
    check(api.get(f"/api/users/{user['id']}"), views.UserView)
    check(api.patch(f"/api/users/{user['id']}", json={"is_admin": True}), views.UserView)
    signed_in = check(httpx.post(f"{api.base_url}/api/auth/login", json=body, timeout=10), views.AccessToken)
    session = {"Authorization": f"Bearer {signed_in['access_token']}"}
    check(httpx.get(f"{api.base_url}/api/auth/me", headers=session, timeout=10), views.UserView)
    refreshed = check(
        httpx.post(f"{api.base_url}/api/auth/refresh", headers=session, timeout=10), views.AccessToken
    )
    session = {"Authorization": f"Bearer {refreshed['access_token']}"}
    check(httpx.post(f"{api.base_url}/api/auth/logout", headers=session, timeout=10), views.SignedOut)
    check(api.post(f"/api/users/{user['id']}/password", json={"password": "another-pw-2"}), views.UserView)
    check(api.delete(f"/api/users/{user['id']}"), views.UserDeleted)


def test_organisations_and_audit(api: httpx.Client) -> None:
    org = check(api.post("/api/orgs", json={"name": "schemas-org"}), views.OrgView, 201)
    check(api.get("/api/orgs"), views.OrgList)
    check(api.get(f"/api/orgs/{org['id']}"), views.OrgView)
    limited = check(
        api.patch(f"/api/orgs/{org['id']}", json={"rpm_limit": 5, "budget_usd": 2}), views.OrgView
    )
    assert limited["budget_usd"] == 2
    body = {"email": "schemas-member@example.com", "password": "schemas-password-2"}
    user = check(api.post("/api/users", json=body), views.UserView, 201)
    member = {"user_id": user["id"], "role": "viewer"}
    check(api.post(f"/api/orgs/{org['id']}/members", json=member), views.MemberView, 201)
    check(api.get(f"/api/orgs/{org['id']}/members"), views.MemberList)
    check(api.patch(f"/api/orgs/{org['id']}/members/{user['id']}", json={"role": "admin"}), views.MemberView)
    check(api.delete(f"/api/orgs/{org['id']}/members/{user['id']}"), views.MemberRemoved)
    check(api.get("/api/usage", params={"group_by": "org"}), views.UsageReport)
    audit = check(api.get("/api/audit", params={"limit": 2}), views.AuditList)
    assert audit["next_cursor"] is not None
    check(api.get("/api/audit", params={"cursor": audit["next_cursor"]}), views.AuditList)
