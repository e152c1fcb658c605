"""`/api/keys` and `/api/me` (gateway/routes/keys.py) on the real app: admins manage keys, a key
sees only itself, and the secret is shown once."""

from __future__ import annotations

from tests.unit.gateway.conftest import LiveApp


async def test_a_key_is_created_shown_once_updated_and_revoked(live: LiveApp) -> None:
    key_id, secret = await live.new_key(name="lifecycle", rpm_limit=5)
    listed = (await live.client.get("/api/keys", headers=live.admin)).json()["data"]
    mine = next(k for k in listed if k["id"] == key_id)
    assert mine["name"] == "lifecycle"
    assert secret not in str(listed)  # the secret is never shown again
    patched = await live.client.patch(f"/api/keys/{key_id}", json={"rpm_limit": 7}, headers=live.admin)
    assert (patched.status_code, patched.json()["rpm_limit"]) == (200, 7)
    me = await live.client.get("/api/me", headers={"Authorization": f"Bearer {secret}"})
    assert (me.status_code, me.json()["id"]) == (200, key_id)
    revoked = await live.client.delete(f"/api/keys/{key_id}", headers=live.admin)
    assert revoked.status_code == 200
    after = await live.client.get("/api/me", headers={"Authorization": f"Bearer {secret}"})
    assert after.status_code == 401


async def test_bad_key_requests_are_refused_by_name(live: LiveApp) -> None:
    past = await live.client.post(
        "/api/keys", json={"name": "x", "expires_at": "2001-01-01T00:00:00Z"}, headers=live.admin
    )
    assert (past.status_code, past.json()["error"]["param"]) == (400, "expires_at")
    naive = await live.client.post(
        "/api/keys", json={"name": "x", "expires_at": "2099-01-01T00:00:00"}, headers=live.admin
    )
    assert naive.status_code == 400
    org = await live.client.post("/api/keys", json={"name": "x", "org_id": "org_nope"}, headers=live.admin)
    assert (org.status_code, org.json()["error"]["param"]) == (400, "org_id")
    key_id, _ = await live.new_key()
    null = await live.client.patch(f"/api/keys/{key_id}", json={"max_priority": None}, headers=live.admin)
    assert (null.status_code, null.json()["error"]["param"]) == (400, "max_priority")
    missing = await live.client.get("/api/keys/key_missing", headers=live.admin)
    assert missing.status_code == 404


async def test_a_plain_key_cannot_manage_keys(live: LiveApp) -> None:
    _, secret = await live.new_key()
    bearer = {"Authorization": f"Bearer {secret}"}
    listed = await live.client.get("/api/keys", headers=bearer)
    assert [k["prefix"] for k in listed.json()["data"]] == [secret[:11]]  # itself only
    made = await live.client.post("/api/keys", json={"name": "more"}, headers=bearer)
    assert (made.status_code, made.json()["error"]["code"]) == (403, "admin_required")
