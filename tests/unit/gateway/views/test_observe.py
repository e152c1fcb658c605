"""The usage, stats and health views (gateway/views/observe.py) describe what the routes answer."""

from __future__ import annotations

from gpucloud.gateway.views.observe import Health, Readiness, Stats, UsageReport
from tests.unit.gateway.conftest import MODEL, LiveApp


async def test_observe_responses_match_their_views(live: LiveApp) -> None:
    _, secret = await live.new_key()
    bearer = {"Authorization": f"Bearer {secret}"}
    await live.client.post(
        "/v1/completions", json={"model": MODEL, "prompt": "x", "max_tokens": 1}, headers=bearer
    )
    report = UsageReport.model_validate((await live.client.get("/api/usage", headers=bearer)).json())
    assert report.data
    Stats.model_validate((await live.client.get("/api/stats", headers=live.admin)).json())
    Health.model_validate((await live.client.get("/health")).json())
    Readiness.model_validate((await live.client.get("/ready")).json())
