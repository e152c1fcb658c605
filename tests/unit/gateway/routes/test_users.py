"""`/api/users` (gateway/routes/users.py) on the real app: admins create, list, disable, reset and
delete users; the password is never shown."""

from __future__ import annotations

import uuid

from tests.unit.gateway.conftest import LiveApp

PASSWORD = "correct horse battery staple 42"


async def test_a_user_lifecycle(live: LiveApp) -> None:
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    created = await live.client.post(
        "/api/users", json={"email": email, "password": PASSWORD}, headers=live.admin
    )
    assert created.status_code == 201, created.text
    user = created.json()
    assert PASSWORD not in created.text
    assert "password_hash" not in user
    user_id = user["id"]
    listed = (await live.client.get("/api/users", headers=live.admin)).json()["data"]
    assert user_id in [u["id"] for u in listed]
    disabled = await live.client.patch(f"/api/users/{user_id}", json={"disabled": True}, headers=live.admin)
    assert disabled.status_code == 200
    assert disabled.json()["disabled_at"] is not None
    reset = await live.client.post(
        f"/api/users/{user_id}/password", json={"password": PASSWORD + "!"}, headers=live.admin
    )
    assert reset.status_code == 200
    deleted = await live.client.delete(f"/api/users/{user_id}", headers=live.admin)
    assert deleted.json() == {"id": user_id, "object": "user", "deleted": True}
    assert (await live.client.get(f"/api/users/{user_id}", headers=live.admin)).status_code == 404


async def test_bad_bodies_and_duplicates_are_refused(live: LiveApp) -> None:
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    body = {"email": email, "password": PASSWORD}
    assert (await live.client.post("/api/users", json=body, headers=live.admin)).status_code == 201
    again = await live.client.post("/api/users", json=body, headers=live.admin)
    assert again.status_code == 409
    extra = await live.client.post("/api/users", json=body | {"role": "god"}, headers=live.admin)
    assert (extra.status_code, extra.json()["error"]["param"]) == (400, "role")
    weak = await live.client.post(
        "/api/users", json={"email": "w@example.com", "password": "x"}, headers=live.admin
    )
    assert weak.status_code == 400
    _, secret = await live.new_key()
    assert (
        await live.client.get("/api/users", headers={"Authorization": f"Bearer {secret}"})
    ).status_code == 403
