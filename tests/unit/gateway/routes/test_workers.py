"""Worker routes (gateway/routes/workers.py) on the real app: an admin makes a worker token, a
worker registers and beats with it, admins see, drain and undrain it; a revoked token is refused."""

from __future__ import annotations

import uuid
from typing import Any

from gpucloud.wire import SESSION_HEADER
from tests.unit.gateway.conftest import LiveApp

GPU = {
    "index": 0,
    "uuid": "GPU-unit-0",
    "name": "NVIDIA L4",
    "memory_total_bytes": 24 * 10**9,
    "memory_used_bytes": 10**9,
}


def registration(worker_id: str) -> dict[str, Any]:
    return {
        "worker_id": worker_id,
        "hostname": "node-1",
        "labels": {"zone": "a"},
        "cpu_count": 8,
        "memory_total_bytes": 64 * 10**9,
        "memory_available_bytes": 32 * 10**9,
        "gpus": [GPU],
        "slots": 4,
    }


async def test_a_worker_registers_beats_and_is_drained(live: LiveApp) -> None:
    made = await live.client.post("/api/workers/tokens", json={"name": "rack 1"}, headers=live.admin)
    assert made.status_code == 201, made.text
    token = {"Authorization": f"Bearer {made.json()['token']}"}
    worker_id = f"w-{uuid.uuid4().hex[:8]}"
    registered = await live.client.post("/api/workers/register", json=registration(worker_id), headers=token)
    assert registered.status_code == 200, registered.text
    session = token | {SESSION_HEADER: registered.json()["session"]}
    beat = await live.client.post(
        f"/api/workers/{worker_id}/heartbeat", json={"running": 1, "gpus": [GPU]}, headers=session
    )
    assert beat.status_code == 200, beat.text
    shown = (await live.client.get(f"/api/workers/{worker_id}", headers=live.admin)).json()
    assert (shown["id"], shown["hostname"], shown["labels"]) == (worker_id, "node-1", {"zone": "a"})
    assert worker_id in [
        w["id"] for w in (await live.client.get("/api/workers", headers=live.admin)).json()["data"]
    ]
    drained = await live.client.post(f"/api/workers/{worker_id}/drain", headers=live.admin)
    assert drained.json()["draining"] is True
    undrained = await live.client.post(f"/api/workers/{worker_id}/undrain", headers=live.admin)
    assert undrained.json()["draining"] is False
    cluster = await live.client.get("/api/cluster", headers=live.admin)
    assert cluster.status_code == 200
    tokens = (await live.client.get("/api/workers/tokens", headers=live.admin)).json()["data"]
    assert made.json()["token"] not in str(tokens)
    revoked = await live.client.delete(f"/api/workers/tokens/{made.json()['id']}", headers=live.admin)
    assert revoked.json()["revoked_at"] is not None
    again = await live.client.post(f"/api/workers/{worker_id}/heartbeat", json={}, headers=session)
    assert again.status_code == 401
    stale = await live.client.post(f"/api/workers/{worker_id}/heartbeat", json={}, headers=live.admin)
    assert stale.status_code == 401


async def test_workers_need_a_worker_token_and_clean_bodies(live: LiveApp) -> None:
    refused = await live.client.post("/api/workers/register", json=registration("w-x"), headers=live.admin)
    assert refused.status_code == 401  # an admin API key is not a worker token
    made = await live.client.post("/api/workers/tokens", json={"name": "t"}, headers=live.admin)
    token = {"Authorization": f"Bearer {made.json()['token']}"}
    twice = registration("w-dup") | {"gpus": [GPU, GPU]}
    assert (await live.client.post("/api/workers/register", json=twice, headers=token)).status_code == 400
    control = registration("w-ctl") | {"hostname": "node\x00"}
    bad = await live.client.post("/api/workers/register", json=control, headers=token)
    assert (bad.status_code, bad.json()["error"]["param"]) == (400, "hostname")
    assert (await live.client.get("/api/workers/w-missing", headers=live.admin)).status_code == 404
