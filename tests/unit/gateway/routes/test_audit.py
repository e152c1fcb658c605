"""`/api/audit` (gateway/routes/audit.py) on the real app: admin actions are recorded, filters and
cursors work, and a non-admin must name an organisation it manages."""

from __future__ import annotations

import uuid

from tests.unit.gateway.conftest import LiveApp


async def test_admin_actions_are_recorded_and_filtered(live: LiveApp) -> None:
    name = f"audit-{uuid.uuid4().hex[:6]}"
    created = await live.client.post("/api/keys", json={"name": name}, headers=live.admin)
    key_id = created.json()["id"]
    await live.client.delete(f"/api/keys/{key_id}", headers=live.admin)
    rows = (await live.client.get("/api/audit", params={"target": key_id}, headers=live.admin)).json()["data"]
    assert rows
    assert {row["target"] for row in rows} == {key_id}
    assert all(row["result"] == "success" for row in rows)
    assert created.json()["key"] not in str(rows)  # the secret never reaches the log
    page = (await live.client.get("/api/audit", params={"limit": 1}, headers=live.admin)).json()
    assert len(page["data"]) == 1
    if page.get("next_cursor"):
        following = await live.client.get(
            "/api/audit", params={"limit": 1, "cursor": page["next_cursor"]}, headers=live.admin
        )
        assert following.json()["data"][0]["id"] != page["data"][0]["id"]


async def test_bad_queries_and_non_admins_are_refused(live: LiveApp) -> None:
    cursor = await live.client.get("/api/audit", params={"cursor": "abc"}, headers=live.admin)
    assert (cursor.status_code, cursor.json()["error"]["param"]) == (400, "cursor")
    result = await live.client.get("/api/audit", params={"result": "maybe"}, headers=live.admin)
    assert result.status_code == 400
    _, secret = await live.new_key()
    bearer = {"Authorization": f"Bearer {secret}"}
    no_org = await live.client.get("/api/audit", headers=bearer)
    assert (no_org.status_code, no_org.json()["error"]["param"]) == (400, "org_id")
    assert (await live.client.get("/api/audit", params={"org_id": "org_x"}, headers=bearer)).status_code in (
        403,
        404,
    )
