"""Who may call which route (gateway/permissions.py), on the real app with a signed-in user: an
organisation's viewer may read it but not manage it, a non-member is told it does not exist, an
access token is refused where an API key is needed, and unlisted needs default to admin."""

from __future__ import annotations

import uuid

from gpucloud.gateway.permissions import ROUTES, Need, user_id_of
from gpucloud.keys import Principal
from gpucloud.queue.messages import Priority
from tests.unit.gateway.conftest import MODEL, LiveApp

PASSWORD = "correct horse battery staple 42"


def principal(key_id: str) -> Principal:
    return Principal(key_id, "name", "user", None, Priority.NORMAL, Priority.NORMAL)


def test_signed_in_users_are_told_from_keys() -> None:
    assert user_id_of(principal("usr_abc")) == "usr_abc"
    assert user_id_of(principal("key_abc")) is None


def test_the_table_keeps_public_routes_few() -> None:
    public = {route for route, need in ROUTES.items() if need is Need.PUBLIC}
    assert public == {
        ("GET", "/health"),
        ("GET", "/ready"),
        ("POST", "/api/auth/login"),
        ("GET", "/api/auth/config"),
        ("POST", "/api/auth/invitations/accept"),  # the invitation's token is the credential
        ("GET", "/api/auth/oidc/login"),
        ("GET", "/api/auth/oidc/callback"),  # the state, its cookie and the provider's code
        ("POST", "/api/auth/oidc/exchange"),  # the one-time code is the credential
    }
    assert all(need is Need.KEY for (_, path), need in ROUTES.items() if path.startswith("/v1/"))


async def test_organisation_roles_are_checked(live: LiveApp) -> None:
    org_id = (
        await live.client.post("/api/orgs", json={"name": f"perm-{uuid.uuid4().hex[:6]}"}, headers=live.admin)
    ).json()["id"]
    other_id = (
        await live.client.post("/api/orgs", json={"name": f"perm-{uuid.uuid4().hex[:6]}"}, headers=live.admin)
    ).json()["id"]
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    user_id = (
        await live.client.post("/api/users", json={"email": email, "password": PASSWORD}, headers=live.admin)
    ).json()["id"]
    member = {"user_id": user_id, "role": "viewer"}
    assert (
        await live.client.post(f"/api/orgs/{org_id}/members", json=member, headers=live.admin)
    ).status_code == 201
    token = (await live.client.post("/api/auth/login", json={"email": email, "password": PASSWORD})).json()[
        "access_token"
    ]
    bearer = {"Authorization": f"Bearer {token}"}
    assert (await live.client.get(f"/api/orgs/{org_id}", headers=bearer)).status_code == 200  # org:read
    manage = await live.client.post(f"/api/orgs/{org_id}/members", json=member, headers=bearer)
    assert (manage.status_code, manage.json()["error"]["code"]) == (403, "org_role_required")  # org:manage
    assert (await live.client.get(f"/api/orgs/{other_id}", headers=bearer)).status_code == 404  # not a member
    admin_only = await live.client.get("/api/users", headers=bearer)
    assert (admin_only.status_code, admin_only.json()["error"]["code"]) == (403, "admin_required")
    inference = await live.client.post(
        "/v1/completions", json={"model": MODEL, "prompt": "x"}, headers=bearer
    )
    assert inference.status_code == 401  # /v1 takes an API key, never an access token
