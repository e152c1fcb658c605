"""The account views (gateway/views/accounts.py) describe what the user, org and audit routes answer."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson

from gpucloud.accounts.service import TokenGrant
from gpucloud.db import User
from gpucloud.gateway.responses import json_response
from gpucloud.gateway.views.accounts import (
    AccessToken,
    AuditList,
    OrgList,
    OrgView,
    SignedOut,
    UserList,
    UserView,
    access_token_view,
    user_view,
)
from tests.unit.gateway.conftest import LiveApp


async def test_account_responses_match_their_views(live: LiveApp) -> None:
    email, password = f"{uuid.uuid4().hex[:8]}@example.com", "correct horse battery staple 42"
    user = await live.client.post(
        "/api/users", json={"email": email, "password": password}, headers=live.admin
    )
    UserView.model_validate(user.json())
    UserList.model_validate((await live.client.get("/api/users", headers=live.admin)).json())
    login = await live.client.post("/api/auth/login", json={"email": email, "password": password})
    AccessToken.model_validate(login.json())
    bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}
    SignedOut.model_validate((await live.client.post("/api/auth/logout", headers=bearer)).json())
    org = await live.client.post(
        "/api/orgs", json={"name": f"org-{uuid.uuid4().hex[:6]}"}, headers=live.admin
    )
    assert org.status_code == 201, org.text
    OrgView.model_validate(org.json())
    OrgList.model_validate((await live.client.get("/api/orgs", headers=live.admin)).json())
    audit = AuditList.model_validate((await live.client.get("/api/audit", headers=live.admin)).json())
    assert audit.data


AT = datetime(2026, 11, 29, 12, tzinfo=UTC)


def test_the_view_leaves_secrets_out_and_matches_its_model() -> None:
    row = User(
        id="usr_1",
        email="a@example.com",
        password_hash="$argon2id$secret",
        is_admin=False,
        created_at=AT,
        disabled_at=None,
        password_changed_at=AT,
        token_version=7,
    )
    view = orjson.loads(json_response(user_view(row)).body)
    assert view == {
        "id": "usr_1",
        "object": "user",
        "email": "a@example.com",
        "is_admin": False,
        "created_at": "2026-11-29T12:00:00+00:00",
        "disabled_at": None,
        "password_changed_at": "2026-11-29T12:00:00+00:00",
    }
    assert "argon2" not in str(view)


def test_an_access_token_is_a_bearer_token_with_its_lifetime() -> None:
    grant = TokenGrant(access_token="jwt.a.b", expires_in=900, user_id="usr_1")
    body = orjson.loads(json_response(access_token_view(grant)).body)
    assert body == {"access_token": "jwt.a.b", "token_type": "bearer", "expires_in": 900}
