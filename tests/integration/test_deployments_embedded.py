"""Deployments in embedded mode: `gpucloud serve` alone (SQLite, in-process queue). Its own worker
registers in-process and holds the replicas placed on it, like a worker machine would."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.support import Server, make_server
from tests.tiny_models import make_tiny_llama


@pytest.fixture(scope="module")
def laptop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("embedded-deployments")
    make_tiny_llama(tmp / "models" / "tiny")
    env = {
        "GPUCLOUD_LOCAL_WORKER__SIMULATE_GPUS": "RTX4090:24",
        "GPUCLOUD_CLUSTER__MONITOR_EVERY_S": "0.25",
        "GPUCLOUD_MODELS_DIR": str(tmp / "models"),
        "HF_HUB_OFFLINE": "1",
    }
    server = make_server(tmp, env=env)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def get(server: Server, path: str) -> Any:
    r = httpx.get(
        f"{server.base_url}{path}", headers={"Authorization": f"Bearer {server.admin_key}"}, timeout=5
    )
    assert r.status_code == 200, r.text
    return r.json()


def wait_for(check: Any, timeout_s: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_the_embedded_worker_is_in_the_fleet_with_its_gpus(laptop: Server) -> None:
    workers = get(laptop, "/api/workers")["data"]
    assert len(workers) == 1
    local = workers[0]
    assert local["id"].startswith("local-")
    assert local["state"] == "healthy"
    assert [g["name"] for g in local["gpus"]] == ["RTX4090"]
    assert "gpucloud-sim-1" in local["models"]


def test_a_deployment_loads_on_the_embedded_worker_and_serves(laptop: Server) -> None:
    headers = {"Authorization": f"Bearer {laptop.admin_key}"}
    body = {
        "name": "laptop-model",
        "engine": "simulated",
        "gpu_memory_gb": 8,
        "engine_options": {"load_s": "0.2"},
    }
    r = httpx.post(f"{laptop.base_url}/api/deployments", json=body, headers=headers)
    assert r.status_code == 201, r.text
    d = wait_for(lambda: (x := get(laptop, "/api/deployments/laptop-model"))["state"] == "ready" and x)
    assert d["replica_states"][0]["worker_id"].startswith("local-")
    client = openai.OpenAI(base_url=laptop.v1, api_key=laptop.admin_key, max_retries=0)
    out = client.chat.completions.create(
        model="laptop-model", messages=[{"role": "user", "content": "hi"}], max_tokens=4
    )
    assert out.choices[0].message.content
    gpu = get(laptop, "/api/workers")["data"][0]["gpus"][0]
    wait_for(lambda: get(laptop, "/api/workers")["data"][0]["gpus"][0]["memory_used_bytes"] == 8 * 10**9)
    assert gpu["memory_total_bytes"] == 24 * 10**9
    cluster = get(laptop, "/api/cluster")
    assert cluster["deployments"]["laptop-model"]["ready_replicas"] == 1
    # A CPU deployment (no GPU memory asked) sits beside it; too big a one is unschedulable.
    r = httpx.post(
        f"{laptop.base_url}/api/deployments",
        json={"name": "cpu-model", "engine": "simulated"},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    assert r.json()["gpu_count"] == 0
    wait_for(lambda: get(laptop, "/api/deployments/cpu-model")["state"] == "ready")
    r = httpx.post(
        f"{laptop.base_url}/api/deployments",
        json={"name": "huge", "engine": "simulated", "gpu_memory_gb": 30},
        headers=headers,
    )
    assert r.status_code == 201
    d = wait_for(lambda: (x := get(laptop, "/api/deployments/huge"))["state"] == "unschedulable" and x)
    assert "30.0 GB" in d["reason"], d
    models = {m.id for m in client.models.list()}
    assert {"gpucloud-sim-1", "laptop-model", "cpu-model", "huge"} <= models
    for name in ("laptop-model", "cpu-model", "huge"):
        assert httpx.delete(f"{laptop.base_url}/api/deployments/{name}", headers=headers).status_code == 200
    wait_for(lambda: get(laptop, "/api/workers")["data"][0]["gpus"][0]["memory_used_bytes"] == 0)


def test_real_engines_deploy_from_the_models_directory(laptop: Server) -> None:
    """A transformers model from the models directory and the bundled MiniLM embeddings, both as
    CPU deployments on the embedded worker, served to the SDK through the queue."""
    headers = {"Authorization": f"Bearer {laptop.admin_key}"}
    for body in (
        {"name": "tiny-chat", "engine": "transformers", "source": "tiny", "gpu_count": 0},
        {"name": "minilm", "engine": "sentence-transformers", "gpu_count": 0},
    ):
        r = httpx.post(f"{laptop.base_url}/api/deployments", json=body, headers=headers)
        assert r.status_code == 201, r.text
    for name in ("tiny-chat", "minilm"):
        wait_for(lambda n=name: get(laptop, f"/api/deployments/{n}")["state"] == "ready", timeout_s=60)
    client = openai.OpenAI(base_url=laptop.v1, api_key=laptop.admin_key, max_retries=0)
    out = client.chat.completions.create(
        model="tiny-chat", messages=[{"role": "user", "content": "hello"}], max_tokens=5, seed=1
    )
    assert out.usage is not None
    assert out.usage.completion_tokens == 5 or out.choices[0].finish_reason == "stop"
    vectors = client.embeddings.create(model="minilm", input=["a cat", "a kitten"]).data
    assert [len(v.embedding) for v in vectors] == [384, 384]
    # A source outside the models directory never reaches a worker.
    r = httpx.post(
        f"{laptop.base_url}/api/deployments",
        json={"name": "escape", "engine": "transformers", "source": "../tiny", "gpu_count": 0},
        headers=headers,
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == "source"
    for name in ("tiny-chat", "minilm"):
        assert httpx.delete(f"{laptop.base_url}/api/deployments/{name}", headers=headers).status_code == 200
