"""Sign-in routes (gateway/routes/auth.py) on the real app: a user signs in, uses and refreshes the
access token, and signs out; API keys are refused where an access token is needed."""

from __future__ import annotations

import uuid

from tests.unit.gateway.conftest import LiveApp

PASSWORD = "correct horse battery staple 42"


async def signed_in(live: LiveApp) -> tuple[str, str]:
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    r = await live.client.post("/api/users", json={"email": email, "password": PASSWORD}, headers=live.admin)
    assert r.status_code == 201, r.text
    login = await live.client.post("/api/auth/login", json={"email": email.upper(), "password": PASSWORD})
    assert login.status_code == 200, login.text
    assert login.headers["cache-control"] == "no-store"
    return email, str(login.json()["access_token"])


async def test_sign_in_use_refresh_and_sign_out(live: LiveApp) -> None:
    email, token = await signed_in(live)
    bearer = {"Authorization": f"Bearer {token}"}
    me = await live.client.get("/api/auth/me", headers=bearer)
    assert (me.status_code, me.json()["email"]) == (200, email)
    refreshed = await live.client.post("/api/auth/refresh", headers=bearer)
    assert refreshed.status_code == 200
    assert refreshed.json()["token_type"] == "bearer"
    new_bearer = {"Authorization": f"Bearer {refreshed.json()['access_token']}"}
    out = await live.client.post("/api/auth/logout", headers=new_bearer)
    assert out.json() == {"object": "sign_out", "revoked": True}
    assert (await live.client.get("/api/auth/me", headers=new_bearer)).status_code == 401


async def test_wrong_passwords_and_api_keys_are_refused(live: LiveApp) -> None:
    email, _ = await signed_in(live)
    wrong = await live.client.post("/api/auth/login", json={"email": email, "password": "nope"})
    assert wrong.status_code == 401
    assert "nope" not in wrong.text
    _, secret = await live.new_key()
    with_key = await live.client.get("/api/auth/me", headers={"Authorization": f"Bearer {secret}"})
    assert (with_key.status_code, with_key.json()["error"]["code"]) == (401, "invalid_token")
    assert (await live.client.post("/api/auth/login")).status_code == 400
