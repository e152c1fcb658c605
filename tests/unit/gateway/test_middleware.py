"""The request middleware (gateway/middleware.py) on the real app: every response carries a request
id (the caller's when plain, else a generated one), the edge policy and the body bound refuse
early with OpenAI-shaped errors, and each request is counted once in the metrics."""

from __future__ import annotations

from gpucloud.keys import generate_secret
from tests.unit.gateway.conftest import LiveApp


async def test_a_plain_caller_id_is_kept_and_others_are_replaced(live: LiveApp) -> None:
    kept = await live.client.get("/health", headers={"x-request-id": "trace-42.a:b"})
    assert kept.headers["x-request-id"] == "trace-42.a:b"
    for bad in ("has space", "x" * 101, generate_secret("gc_")):
        replaced = await live.client.get("/health", headers={"x-request-id": bad})
        assert replaced.headers["x-request-id"] not in (bad, "")
    fresh = [(await live.client.get("/health")).headers["x-request-id"] for _ in range(2)]
    assert fresh[0] != fresh[1]


async def test_the_edge_policy_and_body_bound_refuse_before_any_route(live: LiveApp) -> None:
    control = await live.client.get("/v1/models", params={"after": "a\x00"}, headers=live.admin)
    assert (control.status_code, control.json()["error"]["param"]) == (400, "after")
    assert control.headers["x-request-id"]
    limit = live.app.state.runtime.settings.limits.max_body_bytes
    large = await live.client.post(
        "/v1/completions",
        content=b"x" * (limit + 1),
        headers=live.admin | {"content-type": "application/json"},
    )
    assert (large.status_code, large.json()["error"]["code"]) == (413, "request_too_large")


async def test_requests_are_counted_by_route_template(live: LiveApp) -> None:
    def count() -> float:
        value = live.app.state.metrics.registry.get_sample_value(
            "gpucloud_http_requests_total",
            {"route": "/v1/models/{model:path}", "method": "GET", "status": "404"},
        )
        return float(value or 0)

    before = count()
    await live.client.get("/v1/models/nope-1", headers=live.admin)
    await live.client.get("/v1/models/nope-2", headers=live.admin)
    assert count() == before + 2  # one series for the template, not one per model name
