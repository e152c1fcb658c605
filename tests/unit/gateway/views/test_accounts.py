"""The account views (gateway/views/accounts.py) describe what the user, org and audit routes answer."""

from __future__ import annotations

import uuid

from gpucloud.gateway.views.accounts import (
    AccessToken,
    AuditList,
    OrgList,
    OrgView,
    SignedOut,
    UserList,
    UserView,
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
