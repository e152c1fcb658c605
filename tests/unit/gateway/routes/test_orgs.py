"""`/api/orgs` (gateway/routes/orgs.py) on the real app: admins create organisations and set their
limits; members are added, re-roled and removed; roles are checked."""

from __future__ import annotations

import uuid

from tests.unit.gateway.conftest import LiveApp

PASSWORD = "correct horse battery staple 42"


async def test_an_organisation_and_its_members(live: LiveApp) -> None:
    org = await live.client.post(
        "/api/orgs", json={"name": f"org-{uuid.uuid4().hex[:6]}"}, headers=live.admin
    )
    assert org.status_code == 201, org.text
    org_id = org.json()["id"]
    limited = await live.client.patch(f"/api/orgs/{org_id}", json={"rpm_limit": 10}, headers=live.admin)
    assert (limited.status_code, limited.json()["rpm_limit"]) == (200, 10)
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    user = await live.client.post(
        "/api/users", json={"email": email, "password": PASSWORD}, headers=live.admin
    )
    user_id = user.json()["id"]
    added = await live.client.post(
        f"/api/orgs/{org_id}/members", json={"user_id": user_id, "role": "viewer"}, headers=live.admin
    )
    assert added.status_code == 201, added.text
    members = (await live.client.get(f"/api/orgs/{org_id}/members", headers=live.admin)).json()["data"]
    assert [(m["user_id"], m["role"]) for m in members] == [(user_id, "viewer")]
    changed = await live.client.patch(
        f"/api/orgs/{org_id}/members/{user_id}", json={"role": "admin"}, headers=live.admin
    )
    assert changed.json()["role"] == "admin"
    bad_role = await live.client.patch(
        f"/api/orgs/{org_id}/members/{user_id}", json={"role": "emperor"}, headers=live.admin
    )
    assert bad_role.status_code == 400
    removed = await live.client.delete(f"/api/orgs/{org_id}/members/{user_id}", headers=live.admin)
    assert removed.status_code == 200
    assert (await live.client.get(f"/api/orgs/{org_id}/members", headers=live.admin)).json()["data"] == []


async def test_plain_keys_cannot_manage_organisations(live: LiveApp) -> None:
    _, secret = await live.new_key()
    bearer = {"Authorization": f"Bearer {secret}"}
    assert (await live.client.post("/api/orgs", json={"name": "mine"}, headers=bearer)).status_code == 403
    assert (await live.client.get("/api/orgs/org_missing", headers=live.admin)).status_code == 404
