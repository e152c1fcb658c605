"""`/health` and `/ready` (gateway/routes/health.py) on the real app: public, and `/ready` names
the failing part without detail."""

from __future__ import annotations

from tests.unit.gateway.conftest import LiveApp


async def test_health_and_ready_need_no_key(live: LiveApp) -> None:
    health = await live.client.get("/health")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    ready = await live.client.get("/ready")
    assert (ready.status_code, ready.json()) == (
        200,
        {"status": "ok", "checks": {"database": "ok", "queue": "ok"}},
    )


async def test_only_get_is_served(live: LiveApp) -> None:
    response = await live.client.post("/health")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
