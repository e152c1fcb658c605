"""`/api/webhooks` (gateway/routes/webhooks.py) on the real app: the SSRF guard refuses private
targets, events are checked, an endpoint's secret is shown once, and endpoints belong to a key.
Nothing is delivered: the endpoint's key makes no jobs."""

from __future__ import annotations

from tests.unit.gateway.conftest import LiveApp

PUBLIC = "https://93.184.216.34/hook"  # an address literal: no DNS lookup, and never called here


async def test_an_endpoint_is_registered_listed_and_removed(live: LiveApp) -> None:
    _, secret = await live.new_key()
    bearer = {"Authorization": f"Bearer {secret}"}
    created = await live.client.post(
        "/api/webhooks", json={"url": PUBLIC, "events": ["batch.completed"]}, headers=bearer
    )
    assert created.status_code == 201, created.text
    endpoint = created.json()
    assert endpoint["secret"]
    listed = (await live.client.get("/api/webhooks", headers=bearer)).json()["data"]
    assert [e["id"] for e in listed] == [endpoint["id"]]
    assert endpoint["secret"] not in str(listed)
    deliveries = await live.client.get(f"/api/webhooks/{endpoint['id']}/deliveries", headers=bearer)
    assert deliveries.json()["data"] == []
    _, other = await live.new_key()
    theirs = await live.client.delete(
        f"/api/webhooks/{endpoint['id']}", headers={"Authorization": f"Bearer {other}"}
    )
    assert theirs.status_code == 404
    assert (await live.client.delete(f"/api/webhooks/{endpoint['id']}", headers=bearer)).status_code == 200


async def test_private_targets_and_unknown_events_are_refused(live: LiveApp) -> None:
    _, secret = await live.new_key()
    bearer = {"Authorization": f"Bearer {secret}"}
    for url in ("http://127.0.0.1:9/hook", "http://10.0.0.1/hook", "http://[::1]/hook"):
        r = await live.client.post(
            "/api/webhooks", json={"url": url, "events": ["batch.completed"]}, headers=bearer
        )
        assert (r.status_code, r.json()["error"]["param"]) == (400, "url"), url
    unknown = await live.client.post(
        "/api/webhooks", json={"url": PUBLIC, "events": ["job.exploded"]}, headers=bearer
    )
    assert (unknown.status_code, unknown.json()["error"]["param"]) == (400, "events")
