"""`/api/deployments` (gateway/routes/deployments.py) on the real app: an admin creates, reads,
patches and deletes a deployment; bad specs are refused by name."""

from __future__ import annotations

import uuid

from tests.unit.gateway.conftest import LiveApp


async def test_a_deployment_lifecycle(live: LiveApp) -> None:
    name = f"unit-{uuid.uuid4().hex[:6]}"
    body = {"name": name, "engine": "simulated", "replicas": 0, "gpu_memory_gb": 1.5, "labels": {"zone": "a"}}
    created = await live.client.post("/api/deployments", json=body, headers=live.admin)
    assert created.status_code == 201, created.text
    deployment = created.json()
    assert (deployment["name"], deployment["replicas"], deployment["gpu_memory_gb"]) == (name, 0, 1.5)
    by_name = await live.client.get(f"/api/deployments/{name}", headers=live.admin)
    assert by_name.json()["id"] == deployment["id"]
    assert name in [
        d["name"] for d in (await live.client.get("/api/deployments", headers=live.admin)).json()["data"]
    ]
    patched = await live.client.patch(
        f"/api/deployments/{name}", json={"replicas": 2, "gpu_type": None}, headers=live.admin
    )
    assert (patched.status_code, patched.json()["replicas"]) == (200, 2)
    deleted = await live.client.delete(f"/api/deployments/{name}", headers=live.admin)
    assert deleted.status_code == 200
    assert (await live.client.get(f"/api/deployments/{name}", headers=live.admin)).status_code == 404


async def test_bad_deployments_are_refused(live: LiveApp) -> None:
    name = f"unit-{uuid.uuid4().hex[:6]}"
    base = {"name": name, "engine": "simulated", "replicas": 0, "gpu_memory_gb": 1.0}
    assert (
        await live.client.post("/api/deployments", json=base | {"engine": "magic"}, headers=live.admin)
    ).status_code == 400
    options = await live.client.post(
        "/api/deployments", json=base | {"engine_options": {"bad key!": "x"}}, headers=live.admin
    )
    assert options.status_code == 400
    assert (await live.client.post("/api/deployments", json=base, headers=live.admin)).status_code == 201
    duplicate = await live.client.post("/api/deployments", json=base, headers=live.admin)
    assert duplicate.status_code == 409
    negative = await live.client.patch(f"/api/deployments/{name}", json={"replicas": -1}, headers=live.admin)
    assert (negative.status_code, negative.json()["error"]["param"]) == (400, "replicas")
    _, secret = await live.new_key()
    assert (
        await live.client.get("/api/deployments", headers={"Authorization": f"Bearer {secret}"})
    ).status_code == 403
