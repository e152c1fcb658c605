"""Deployments end to end: a gateway (Redis queue, PostgreSQL) and three `gpucloud worker`
processes with simulated GPUs and no `--model`: every model they serve comes from a deployment the
control plane placed on them. The official `openai` SDK is the client. Health timings are short.

Fleet: w0 has one H100 (80 GB), w1 two A10s (24 GB each), w2 one L4 (24 GB).
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.integration.cluster_support import openai_client
from tests.support import (
    REDIS_URL,
    SECRETS,
    Server,
    Worker,
    create_pg_database,
    drop_pg_database,
    make_server,
)

INTERVAL_S, UNHEALTHY_S, OFFLINE_S, MONITOR_S = 0.5, 1.5, 3.0, 0.25
ENV = {
    "GPUCLOUD_CLUSTER__HEARTBEAT_INTERVAL_S": str(INTERVAL_S),
    "GPUCLOUD_CLUSTER__UNHEALTHY_AFTER_S": str(UNHEALTHY_S),
    "GPUCLOUD_CLUSTER__OFFLINE_AFTER_S": str(OFFLINE_S),
    "GPUCLOUD_CLUSTER__RECOVER_BEATS": "2",
    "GPUCLOUD_CLUSTER__MONITOR_EVERY_S": str(MONITOR_S),
    "GPUCLOUD_QUEUE__LEASE_TIMEOUT_S": "1.5",
}
GPUS = {"w0": "H100:80", "w1": "A10:24x2", "w2": "L4:24"}


def admin(server: Server) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.admin_key}"}


def wait_until(check: Any, timeout_s: float = 15.0, every_s: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every_s)
    raise AssertionError(f"condition not met in time (last: {last!r})")


def start_worker(server: Server, token: str, worker_id: str) -> Worker:
    args = ["--slots", "8", "--grace", "2", "--server", server.base_url, "--token", token]
    args += ["--worker-id", worker_id, "--simulate-gpus", GPUS[worker_id], "--label", f"host={worker_id}"]
    return server.add_worker(*args, name=f"{worker_id}-{len(server.workers)}")


# A Llama-2-7B config.json: enough for the control plane to estimate the GPU memory it needs.
LLAMA_7B = {
    "architectures": ["LlamaForCausalLM"],
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "vocab_size": 32000,
    "hidden_act": "silu",
    "tie_word_embeddings": False,
    "torch_dtype": "float16",
}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    database_url = create_pg_database()
    tmp = tmp_path_factory.mktemp("deployments")
    (tmp / "models" / "llama-7b").mkdir(parents=True)
    (tmp / "models" / "llama-7b" / "config.json").write_text(json.dumps(LLAMA_7B))
    env = {**ENV, "GPUCLOUD_MODELS_DIR": str(tmp / "models")}
    server = make_server(tmp, database_url=database_url, redis_url=REDIS_URL, env=env)
    server.start()
    r = httpx.post(f"{server.base_url}/api/workers/tokens", json={"name": "fleet"}, headers=admin(server))
    token = r.json()["token"]
    SECRETS.add(token)
    for worker_id in GPUS:
        start_worker(server, token, worker_id)
    try:
        wait_until(lambda: len(workers(server)) == 3, timeout_s=45)  # three processes start
        yield server, token
    finally:
        server.stop()
        drop_pg_database(database_url)


def workers(server: Server) -> dict[str, dict[str, Any]]:
    r = httpx.get(f"{server.base_url}/api/workers", headers=admin(server), timeout=5)
    assert r.status_code == 200, r.text
    return {w["id"]: w for w in r.json()["data"]}


def create(server: Server, **body: Any) -> httpx.Response:
    body.setdefault("engine", "simulated")
    return httpx.post(f"{server.base_url}/api/deployments", json=body, headers=admin(server), timeout=10)


def show(server: Server, ref: str) -> dict[str, Any]:
    r = httpx.get(f"{server.base_url}/api/deployments/{ref}", headers=admin(server), timeout=5)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


def delete(server: Server, ref: str) -> None:
    r = httpx.delete(f"{server.base_url}/api/deployments/{ref}", headers=admin(server), timeout=5)
    assert r.status_code == 200, r.text


def ready(server: Server, ref: str, replicas: int) -> dict[str, Any] | None:
    d = show(server, ref)
    done = d["state"] == "ready" and d["ready_replicas"] == replicas and len(d["replica_states"]) == replicas
    return d if done else None


def chat(server: Server, model: str, content: str = "hi", **kw: Any) -> httpx.Response:
    return httpx.post(
        f"{server.v1}/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": content}], "max_tokens": 8, **kw},
        headers=admin(server),
        timeout=30,
    )


def test_two_replicas_spread_over_workers_and_serve_the_sdk(fleet: tuple[Server, str]) -> None:
    server, _ = fleet
    r = create(server, name="spread-30", replicas=2, gpu_memory_gb=20, engine_options={"load_s": "0.5"})
    assert r.status_code == 201, r.text
    assert r.json()["state"] in ("pending", "scheduled", "loading")
    d = wait_until(lambda: ready(server, "spread-30", 2))
    hosts = {rep["worker_id"] for rep in d["replica_states"]}
    assert len(hosts) == 2, d  # spread: one replica per worker
    client = openai.OpenAI(base_url=server.v1, api_key=server.admin_key, max_retries=0)
    assert "spread-30" in {m.id for m in client.models.list()}
    out = client.chat.completions.create(
        model="spread-30", messages=[{"role": "user", "content": "hello"}], max_tokens=5
    )
    assert out.usage is not None
    assert out.usage.completion_tokens > 0
    # The simulated GPUs report the memory the loaded replicas hold.
    used = {w: sum(g["memory_used_bytes"] for g in info["gpus"]) for w, info in workers(server).items()}
    assert sum(used.values()) == 2 * 20 * 10**9, used
    wait_until(
        lambda: (
            'gpucloud_deployment_replicas{deployment="spread-30",state="ready"} 2.0'
            in httpx.get(f"{server.base_url}/metrics", headers=admin(server)).text
        ),
        timeout_s=12,
    )
    delete(server, "spread-30")


def test_binpack_fills_one_gpu_and_labels_constrain(fleet: tuple[Server, str]) -> None:
    server, _ = fleet
    r = create(server, name="packed", replicas=3, gpu_memory_gb=10, policy="binpack", labels={"host": "w0"})
    assert r.status_code == 201, r.text
    d = wait_until(lambda: ready(server, "packed", 3))
    assert {rep["worker_id"] for rep in d["replica_states"]} == {"w0"}
    assert len({tuple(rep["gpu_uuids"]) for rep in d["replica_states"]}) == 1
    delete(server, "packed")


def test_nothing_fits_is_unschedulable_with_the_shortfall(fleet: tuple[Server, str]) -> None:
    server, _ = fleet
    r = create(server, name="too-big", replicas=1, gpu_memory_gb=100)
    assert r.status_code == 201, r.text
    d = wait_until(lambda: (x := show(server, "too-big"))["state"] == "unschedulable" and x)
    assert "100.0 GB" in d["reason"], d["reason"]
    assert "80.0 GB" in d["reason"], d["reason"]
    # Listed, but a request gets 503 with the reason, never a 500 or a hang.
    r = chat(server, "too-big")
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "model_not_loaded"
    assert "100.0 GB" in r.json()["error"]["message"]
    # It fits once scaled down to a size that fits.
    p = httpx.patch(
        f"{server.base_url}/api/deployments/too-big", json={"gpu_memory_gb": 50}, headers=admin(server)
    )
    assert p.status_code == 200, p.text
    d = wait_until(lambda: ready(server, "too-big", 1))
    assert d["replica_states"][0]["worker_id"] == "w0"
    delete(server, "too-big")


def test_scale_up_and_down_and_delete(fleet: tuple[Server, str]) -> None:
    server, _ = fleet
    assert create(server, name="scaler", replicas=1, gpu_memory_gb=5).status_code == 201
    wait_until(lambda: ready(server, "scaler", 1))
    for replicas in (3, 1):
        r = httpx.patch(
            f"{server.base_url}/api/deployments/scaler", json={"replicas": replicas}, headers=admin(server)
        )
        assert r.status_code == 200, r.text
        assert r.json()["replicas"] == replicas
        wait_until(lambda n=replicas: ready(server, "scaler", n))
    assert chat(server, "scaler").status_code == 200
    delete(server, "scaler")
    r = httpx.get(f"{server.base_url}/api/deployments/scaler", headers=admin(server))
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "deployment_not_found"
    r = chat(server, "scaler")  # unknown at once, though its workers announced it a moment ago
    assert r.status_code == 404, r.text


def test_bad_deployments_get_clear_400s(fleet: tuple[Server, str]) -> None:
    server, _ = fleet
    cases: list[tuple[dict[str, Any], str]] = [
        ({"name": "bad name", "replicas": 1}, "name"),
        ({"name": "x", "engine": "nope"}, "engine"),
        ({"name": "x", "engine": "transformers"}, "source"),
        ({"name": "x", "engine": "transformers", "source": "../etc/passwd", "gpu_memory_gb": 1}, "source"),
        ({"name": "x", "engine": "transformers", "source": "/etc", "gpu_memory_gb": 1}, "source"),
        ({"name": "x", "replicas": -1}, "replicas"),
        ({"name": "x", "gpu_memory_gb": "lots"}, "gpu_memory_gb"),
        ({"name": "x", "idle_unload_seconds": 5}, "idle_unload_seconds"),
        ({"name": "x", "engine": "transformers", "source": "org/model"}, "gpu_memory_gb"),
    ]
    for body, param in cases:
        body.setdefault("engine", "simulated")
        r = httpx.post(f"{server.base_url}/api/deployments", json=body, headers=admin(server))
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error"]["param"] == param, (body, r.json())
    assert create(server, name="dup", replicas=0).status_code == 201
    r = create(server, name="dup", replicas=0)
    assert r.status_code == 409, r.text
    # A PATCH null where null means nothing is refused by name, not answered 200 and ignored.
    for param in ("replicas", "engine", "policy", "labels"):
        r = httpx.patch(f"{server.base_url}/api/deployments/dup", json={param: None}, headers=admin(server))
        assert r.status_code == 400, (param, r.text)
        assert r.json()["error"]["param"] == param, r.json()
    r = httpx.patch(f"{server.base_url}/api/deployments/dup", json={"gpu_type": None}, headers=admin(server))
    assert r.status_code == 200, r.text
    delete(server, "dup")


def test_deployments_need_an_admin_key(fleet: tuple[Server, str]) -> None:
    server, token = fleet
    r = httpx.post(f"{server.base_url}/api/keys", json={"name": "u", "role": "user"}, headers=admin(server))
    user = r.json()["key"]
    SECRETS.add(user)
    for headers, status in (
        ({"Authorization": f"Bearer {user}"}, 403),
        ({"Authorization": f"Bearer {token}"}, 401),
        ({}, 401),
    ):
        assert httpx.get(f"{server.base_url}/api/deployments", headers=headers).status_code == status
        r = httpx.post(
            f"{server.base_url}/api/deployments", json={"name": "z", "engine": "simulated"}, headers=headers
        )
        assert r.status_code == status


def test_a_failing_load_is_reported_and_retried(fleet: tuple[Server, str]) -> None:
    server, _ = fleet
    r = create(
        server, name="broken-load", replicas=1, gpu_memory_gb=5, engine_options={"no_such_option": "1"}
    )
    assert r.status_code == 201, r.text
    d = wait_until(lambda: (x := show(server, "broken-load"))["state"] == "failed" and x)
    assert "unknown simulated engine option" in d["reason"], d
    assert "load failed" in d["replica_states"][0]["reason"]
    delete(server, "broken-load")


def test_breaker_takes_a_failing_replica_out_of_rotation(fleet: tuple[Server, str]) -> None:
    server, _ = fleet
    r = create(server, name="flaky", replicas=1, gpu_memory_gb=5, engine_options={"fail_marker": "BOOM"})
    assert r.status_code == 201, r.text
    wait_until(lambda: ready(server, "flaky", 1))
    for _ in range(5):
        assert chat(server, "flaky", "BOOM").status_code >= 500
    d = wait_until(lambda: (x := show(server, "flaky"))["state"] == "failed" and x, timeout_s=5)
    assert "taken out of rotation" in d["reason"], d
    delete(server, "flaky")


def test_on_demand_loads_on_first_request_unloads_when_idle_and_evicts_lru(fleet: tuple[Server, str]) -> None:
    server, _ = fleet
    # Both fit only the H100 (w0) and not together: 50 + 50 > 80.
    for name in ("od-a", "od-b"):
        r = create(
            server,
            name=name,
            replicas=1,
            gpu_memory_gb=50,
            on_demand=True,
            idle_unload_seconds=30 if name == "od-a" else 2,
            engine_options={"load_s": "0.3"},
        )
        assert r.status_code == 201, r.text
    for name in ("od-a", "od-b"):
        d = wait_until(
            lambda n=name: (
                (x := show(server, n))["replica_states"]
                and x["replica_states"][0]["state"] == "standby"
                and x
            )
        )
        assert d["state"] == "scheduled", d
        assert "on demand" in d["reason"], d
        assert d["replica_states"][0]["worker_id"] == "w0"
    assert chat(server, "od-a").status_code == 200  # waits in the queue while it loads
    wait_until(lambda: ready(server, "od-a", 1))
    assert chat(server, "od-b").status_code == 200  # needs the memory: od-a (idle) is evicted
    wait_until(lambda: ready(server, "od-b", 1))
    a = show(server, "od-a")["replica_states"][0]
    assert a["state"] == "standby", a
    assert "make room for od-b" in (a["reason"] or ""), a
    # od-b unloads by itself after 2 s idle.
    b = wait_until(
        lambda: (x := show(server, "od-b")["replica_states"][0])["state"] == "standby" and x, timeout_s=10
    )
    assert "idle" in b["reason"], b
    used = sum(g["memory_used_bytes"] for g in workers(server)["w0"]["gpus"])
    assert used == 0, used
    delete(server, "od-a")
    delete(server, "od-b")


def test_killed_worker_replica_moves_and_no_request_is_lost(fleet: tuple[Server, str]) -> None:
    server, token = fleet
    r = create(server, name="survivor", replicas=2, gpu_memory_gb=20, engine_options={"tokens_per_s": "400"})
    assert r.status_code == 201, r.text
    d = wait_until(lambda: ready(server, "survivor", 2))
    victim_id = d["replica_states"][0]["worker_id"]
    victim = next(w for w in server.workers if victim_id in w.args and w.process and w.process.poll() is None)

    async def traffic(stop: asyncio.Event) -> list[int]:
        client = openai_client(server.v1, server.admin_key, timeout=60)
        tokens: list[int] = []

        async def one() -> None:
            out = await client.chat.completions.create(
                model="survivor", messages=[{"role": "user", "content": "go"}], max_tokens=20
            )
            assert out.usage is not None
            tokens.append(out.usage.completion_tokens)

        while not stop.is_set():
            await asyncio.gather(*(one() for _ in range(6)))
        await client.close()
        return tokens

    async def scenario() -> tuple[list[int], float]:
        stop = asyncio.Event()
        load = asyncio.create_task(traffic(stop))
        await asyncio.sleep(1.0)
        assert victim.process is not None
        victim.process.send_signal(signal.SIGKILL)
        killed = time.monotonic()

        def moved() -> bool:
            x = ready(server, "survivor", 2)
            return x is not None and victim_id not in {rep["worker_id"] for rep in x["replica_states"]}

        while not await asyncio.to_thread(moved):
            assert time.monotonic() - killed < OFFLINE_S + 10, show(server, "survivor")
            await asyncio.sleep(0.1)
        took = time.monotonic() - killed
        await asyncio.sleep(1.0)
        stop.set()
        return await load, took

    tokens, took = asyncio.run(scenario())
    print(f"\nSIGKILL → replica ready elsewhere in {took:.2f}s; {len(tokens)} requests, none lost")
    assert tokens
    assert all(t > 0 for t in tokens)
    # The worker comes back and is healthy again without anyone touching it.
    start_worker(server, token, victim_id)
    wait_until(lambda: workers(server)[victim_id]["state"] == "healthy", timeout_s=20)
    delete(server, "survivor")


def test_gpu_memory_is_estimated_from_the_models_config(fleet: tuple[Server, str]) -> None:
    server, _ = fleet
    body = {"name": "llama-est", "engine": "transformers", "source": "llama-7b", "replicas": 0}
    r = create(server, **body)
    assert r.status_code == 201, r.text
    d = r.json()
    assert d["gpu_memory_estimated"] is True
    # 6.74 B parameters × 2 bytes (float16) × 1.2 overhead ≈ 16.2 GB: fits the H100 only.
    assert 15.5 < d["gpu_memory_gb"] < 17, d
    assert (
        create(
            server,
            name="llama-bf",
            engine="transformers",
            source="llama-7b",
            replicas=0,
            engine_options={"dtype": "float32"},
        ).json()["gpu_memory_gb"]
        > 30
    )
    for name in ("llama-est", "llama-bf"):
        delete(server, name)
