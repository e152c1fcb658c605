"""Invitations over HTTP: an organisation's owners and admins (or a platform admin) invite an
email with a role; the token is shown once and is good once; accepting it creates the user (or,
for an email that has an account, checks that account's password) as a member and signs it in;
revoked, expired and used tokens are a clear 400; every step leaves an audit row."""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from tests.batch_support import db_rows
from tests.integration.accounts_support import (
    auth,
    create_org,
    create_user,
    new_email,
    new_password,
    token_of,
)
from tests.integration.test_openai_api import assert_envelope
from tests.support import SECRETS, Server


def _invite(server: Server, org_id: str, token: str, email: str, role: str = "member") -> httpx.Response:
    r = httpx.post(
        f"{server.base_url}/api/orgs/{org_id}/invitations",
        json={"email": email, "role": role},
        headers=auth(token),
        timeout=10,
    )
    if r.status_code == 201:
        SECRETS.add(r.json()["token"])
    return r


def _accept(server: Server, token: str, password: str) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/api/auth/invitations/accept",
        json={"token": token, "password": password},
        timeout=10,
    )


def _members(server: Server, org_id: str) -> dict[str, str]:
    r = httpx.get(f"{server.base_url}/api/orgs/{org_id}/members", headers=auth(server.admin_key), timeout=10)
    assert r.status_code == 200, r.text
    return {m["email"]: m["role"] for m in r.json()["data"]}


def _audit(server: Server, action: str) -> list[dict[str, Any]]:
    r = httpx.get(
        f"{server.base_url}/api/audit",
        params={"action": action, "limit": "200"},
        headers=auth(server.admin_key),
        timeout=10,
    )
    assert r.status_code == 200, r.text
    rows: list[dict[str, Any]] = r.json()["data"]
    return rows


def test_invite_accept_sign_in_and_single_use(server: Server) -> None:
    org_id = create_org(server, "inv")
    email, password = new_email("invitee"), new_password()
    created = _invite(server, org_id, server.admin_key, email.upper(), "viewer")
    assert created.status_code == 201, created.text
    invitation = created.json()
    assert invitation["email"] == email
    assert invitation["role"] == "viewer"
    assert invitation["status"] == "pending"
    assert invitation["url"] == f"/?invite={invitation['token']}"
    listed = httpx.get(
        f"{server.base_url}/api/orgs/{org_id}/invitations", headers=auth(server.admin_key), timeout=10
    ).json()["data"]
    assert [i["id"] for i in listed] == [invitation["id"]]
    assert "token" not in listed[0]
    assert "url" not in listed[0]

    accepted = _accept(server, invitation["token"], password)
    assert accepted.status_code == 200, accepted.text
    access = accepted.json()["access_token"]
    SECRETS.add(access)
    me = httpx.get(f"{server.base_url}/api/auth/me", headers=auth(access), timeout=10)
    assert me.json()["email"] == email
    assert _members(server, org_id)[email] == "viewer"
    token_of(server, email, password)  # the password chosen on accepting signs in

    again = _accept(server, invitation["token"], password)
    assert_envelope(again, 400, param="token")
    assert again.json()["error"]["code"] == "invitation_accepted"
    unknown = _accept(server, "gci_" + secrets.token_urlsafe(32), password)
    assert_envelope(unknown, 400, param="token")
    rows = [r for r in _audit(server, "POST /api/auth/invitations/accept") if r["org_id"] == org_id]
    assert [(r["result"], r["actor"]) for r in rows] == [("success", me.json()["id"])]
    made = [r for r in _audit(server, "POST /api/orgs/{org_id}/invitations") if r["org_id"] == org_id]
    assert [r["target"] for r in made] == [invitation["id"]]


def test_revoked_expired_and_existing_accounts(server: Server) -> None:
    org_id = create_org(server, "inv")
    revoked = _invite(server, org_id, server.admin_key, new_email()).json()
    gone = httpx.delete(
        f"{server.base_url}/api/orgs/{org_id}/invitations/{revoked['id']}",
        headers=auth(server.admin_key),
        timeout=10,
    )
    assert gone.status_code == 200
    assert gone.json()["status"] == "revoked"
    refused = _accept(server, revoked["token"], new_password())
    assert_envelope(refused, 400, param="token")
    assert refused.json()["error"]["code"] == "invitation_revoked"

    expired = _invite(server, org_id, server.admin_key, new_email()).json()
    db_rows(server, "UPDATE invitations SET expires_at = created_at WHERE id = ?", expired["id"])
    late = _accept(server, expired["token"], new_password())
    assert late.status_code == 400
    assert late.json()["error"]["code"] == "invitation_expired"

    email, password = new_email("existing"), new_password()
    create_user(server, email, password)
    existing = _invite(server, org_id, server.admin_key, email, "admin").json()
    wrong = _accept(server, existing["token"], new_password())
    assert_envelope(wrong, 401)
    assert _accept(server, existing["token"], password).status_code == 200
    assert _members(server, org_id)[email] == "admin"
    duplicate = _invite(server, org_id, server.admin_key, email)
    assert_envelope(duplicate, 409, param="email")


def test_who_may_invite(server: Server) -> None:
    org_id = create_org(server, "inv")
    people = {}
    for role in ("admin", "member"):
        email, password = new_email(role), new_password()
        user_id = str(create_user(server, email, password)["id"])
        r = httpx.post(
            f"{server.base_url}/api/orgs/{org_id}/members",
            json={"user_id": user_id, "role": role},
            headers=auth(server.admin_key),
            timeout=10,
        )
        assert r.status_code == 201, r.text
        people[role] = token_of(server, email, password)
    assert _invite(server, org_id, people["admin"], new_email(), "member").status_code == 201
    assert_envelope(_invite(server, org_id, people["admin"], new_email(), "owner"), 403)  # owners only
    assert_envelope(_invite(server, org_id, people["member"], new_email()), 403)
    listing = httpx.get(
        f"{server.base_url}/api/orgs/{org_id}/invitations", headers=auth(people["member"]), timeout=10
    )
    assert_envelope(listing, 403)
    outsider = _invite(server, create_org(server, "inv"), people["admin"], new_email())
    assert_envelope(outsider, 404)
    bad_role = _invite(server, org_id, server.admin_key, new_email(), "emperor")
    assert_envelope(bad_role, 400, param="role")


def test_auth_config_is_public(server: Server) -> None:
    r = httpx.get(f"{server.base_url}/api/auth/config", timeout=10)
    assert r.status_code == 200
    assert r.json() == {"password": True, "oidc": {"enabled": False, "name": None}}
