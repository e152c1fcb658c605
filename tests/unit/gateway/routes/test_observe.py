"""`/metrics` and `/api/stats` (gateway/routes/observe.py) on the real app: admin only."""

from __future__ import annotations

from tests.unit.gateway.conftest import LiveApp


async def test_metrics_are_prometheus_text_for_an_admin_key(live: LiveApp) -> None:
    await live.client.get("/health")
    response = await live.client.get("/metrics", headers=live.admin)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "gpucloud_http_requests_total" in response.text


async def test_stats_have_an_hour_of_minutes(live: LiveApp) -> None:
    response = await live.client.get("/api/stats", headers=live.admin)
    assert response.status_code == 200
    body = response.json()
    assert len(body["series"]) == 60
    assert {"requests_per_s", "queue_depth", "workers"} <= set(body["current"])


async def test_a_plain_key_sees_neither(live: LiveApp) -> None:
    _, secret = await live.new_key()
    headers = {"Authorization": f"Bearer {secret}"}
    assert (await live.client.get("/metrics", headers=headers)).status_code == 403
    assert (await live.client.get("/api/stats", headers=headers)).status_code == 403
    assert (await live.client.get("/metrics")).status_code == 401
