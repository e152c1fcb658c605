"""The fleet views (gateway/views/fleet.py) describe what the worker, cluster and deployment routes answer."""

from __future__ import annotations

import uuid

from gpucloud.gateway.views.deployments import DeploymentDeleted, DeploymentList, DeploymentView
from gpucloud.gateway.views.fleet import (
    ClusterView,
    WorkerList,
    WorkerTokenCreated,
    WorkerTokenList,
    WorkerView,
)
from gpucloud.wire import SESSION_HEADER, WorkerOrders
from tests.unit.gateway.conftest import LiveApp


async def test_fleet_responses_match_their_views(live: LiveApp) -> None:
    get, post = live.client.get, live.client.post
    made = WorkerTokenCreated.model_validate(
        (await post("/api/workers/tokens", json={"name": "v"}, headers=live.admin)).json()
    )
    WorkerTokenList.model_validate((await get("/api/workers/tokens", headers=live.admin)).json())
    token = {"Authorization": f"Bearer {made.token}"}
    worker_id = f"w-{uuid.uuid4().hex[:8]}"
    gpu = {
        "index": 0,
        "uuid": "GPU-v",
        "name": "NVIDIA L4",
        "memory_total_bytes": 10**10,
        "memory_used_bytes": 0,
    }
    register = {
        "worker_id": worker_id,
        "hostname": "h",
        "cpu_count": 1,
        "memory_total_bytes": 1,
        "memory_available_bytes": 1,
        "gpus": [gpu],
        "slots": 1,
    }
    orders = (await post("/api/workers/register", json=register, headers=token)).json()
    WorkerOrders.model_validate(orders)
    session = token | {SESSION_HEADER: orders["session"]}
    WorkerOrders.model_validate(
        (await post(f"/api/workers/{worker_id}/heartbeat", json={}, headers=session)).json()
    )
    WorkerView.model_validate((await get(f"/api/workers/{worker_id}", headers=live.admin)).json())
    WorkerList.model_validate((await get("/api/workers", headers=live.admin)).json())
    ClusterView.model_validate((await get("/api/cluster", headers=live.admin)).json())
    name = f"view-{uuid.uuid4().hex[:6]}"
    spec = {
        "name": name,
        "engine": "simulated",
        "replicas": 1,
        "gpu_memory_gb": 1.0,
        "autoscale": {"min_replicas": 0, "max_replicas": 2},
    }
    created = await post("/api/deployments", json=spec, headers=live.admin)
    assert created.status_code == 201, created.text
    DeploymentView.model_validate(created.json())
    DeploymentList.model_validate((await get("/api/deployments", headers=live.admin)).json())
    DeploymentDeleted.model_validate(
        (await live.client.delete(f"/api/deployments/{name}", headers=live.admin)).json()
    )
