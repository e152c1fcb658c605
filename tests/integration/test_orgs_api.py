"""Organisations over HTTP: created by platform admins, members with roles (owners and admins
manage members, only owners touch the owner role, outsiders get 404), keys owned by an
organisation, usage grouped and filtered by organisation, and the migration that moves existing
keys into the default organisation."""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx
import openai
import sqlalchemy as sa
from alembic import command

from gpucloud.db.migrate import alembic_config, upgrade
from tests.conftest import MODEL, create_key
from tests.integration.accounts_support import auth, create_user, new_email, new_password, token_of
from tests.integration.test_openai_api import assert_envelope
from tests.support import Server


def _org(server: Server, name: str | None = None) -> dict[str, object]:
    body = {"name": name or f"team-{secrets.token_hex(4)}"}
    r = httpx.post(f"{server.base_url}/api/orgs", json=body, headers=auth(server.admin_key), timeout=10)
    assert r.status_code == 201, r.text
    org: dict[str, object] = r.json()
    return org


def _person(server: Server) -> tuple[str, str]:
    """A new user: its id and an access token."""
    email, password = new_email(), new_password()
    user_id = str(create_user(server, email, password)["id"])
    return user_id, token_of(server, email, password)


def _add(server: Server, org_id: object, token: str, user_id: str, role: str) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/api/orgs/{org_id}/members",
        json={"user_id": user_id, "role": role},
        headers=auth(token),
        timeout=10,
    )


def test_admin_creates_organisations_and_keys_in_them(server: Server) -> None:
    org = _org(server)
    assert org["object"] == "organization"
    assert org["budget_usd"] is None
    again = httpx.post(
        f"{server.base_url}/api/orgs", json={"name": org["name"]}, headers=auth(server.admin_key), timeout=10
    )
    assert_envelope(again, 409, param="name")
    assert create_key(server, org_id=org["id"])["org_id"] == org["id"]
    assert create_key(server)["org_id"] == "org_default"
    unknown = httpx.post(
        f"{server.base_url}/api/keys",
        json={"name": "x", "org_id": "org_nope"},
        headers=auth(server.admin_key),
        timeout=10,
    )
    assert_envelope(unknown, 400, param="org_id")
    user_key = str(create_key(server)["key"])
    refused = httpx.post(
        f"{server.base_url}/api/orgs", json={"name": "mine"}, headers=auth(user_key), timeout=10
    )
    assert_envelope(refused, 403)


def test_members_and_their_roles(server: Server) -> None:
    org_id = str(_org(server)["id"])
    (owner, owner_token), (admin, admin_token), (viewer, viewer_token) = (_person(server) for _ in range(3))
    outsider, outsider_token = _person(server)
    assert _add(server, org_id, server.admin_key, owner, "owner").status_code == 201
    assert _add(server, org_id, owner_token, admin, "admin").status_code == 201
    assert _add(server, org_id, admin_token, viewer, "viewer").status_code == 201
    assert_envelope(_add(server, org_id, admin_token, outsider, "owner"), 403, code="org_role_required")
    assert_envelope(_add(server, org_id, viewer_token, outsider, "member"), 403, code="org_role_required")
    assert_envelope(_add(server, org_id, outsider_token, outsider, "member"), 404)
    assert_envelope(_add(server, org_id, owner_token, outsider, "boss"), 400, param="role")
    assert_envelope(_add(server, org_id, owner_token, "usr_nope", "member"), 400, param="user_id")
    assert_envelope(_add(server, org_id, owner_token, viewer, "member"), 409)
    members = httpx.get(
        f"{server.base_url}/api/orgs/{org_id}/members", headers=auth(viewer_token), timeout=10
    )
    assert {m["user_id"]: m["role"] for m in members.json()["data"]} == {
        owner: "owner",
        admin: "admin",
        viewer: "viewer",
    }
    promote = httpx.patch(
        f"{server.base_url}/api/orgs/{org_id}/members/{viewer}",
        json={"role": "member"},
        headers=auth(owner_token),
        timeout=10,
    )
    assert promote.json()["role"] == "member"
    demote_owner = httpx.patch(
        f"{server.base_url}/api/orgs/{org_id}/members/{owner}",
        json={"role": "member"},
        headers=auth(admin_token),
        timeout=10,
    )
    assert_envelope(demote_owner, 403)
    removed = httpx.delete(
        f"{server.base_url}/api/orgs/{org_id}/members/{viewer}", headers=auth(admin_token), timeout=10
    )
    assert removed.json()["deleted"] is True
    assert_envelope(
        httpx.get(f"{server.base_url}/api/orgs/{org_id}", headers=auth(viewer_token), timeout=10), 404
    )
    mine = httpx.get(f"{server.base_url}/api/orgs", headers=auth(owner_token), timeout=10).json()["data"]
    assert [o["id"] for o in mine] == [org_id]
    assert (
        httpx.get(f"{server.base_url}/api/orgs", headers=auth(outsider_token), timeout=10).json()["data"]
        == []
    )


def test_usage_per_organisation(server: Server) -> None:
    org_id = str(_org(server)["id"])
    key = str(create_key(server, org_id=org_id)["key"])
    client = openai.OpenAI(base_url=server.v1, api_key=key, max_retries=0)
    for _ in range(2):
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=3
        )
    by_org = httpx.get(
        f"{server.base_url}/api/usage", params={"group_by": "org"}, headers=auth(server.admin_key), timeout=10
    ).json()
    rows = [r for r in by_org["data"] if r["org_id"] == org_id]
    assert sum(r["requests"] for r in rows) == 2
    assert all(r["key_id"] is None and r["model"] is None for r in rows)
    owner, owner_token = _person(server)
    _outsider, outsider_token = _person(server)
    assert _add(server, org_id, server.admin_key, owner, "owner").status_code == 201
    own = httpx.get(
        f"{server.base_url}/api/usage", params={"org_id": org_id}, headers=auth(owner_token), timeout=10
    )
    assert own.json()["totals"]["requests"] == 2
    hidden = httpx.get(
        f"{server.base_url}/api/usage", params={"org_id": org_id}, headers=auth(outsider_token), timeout=10
    )
    assert_envelope(hidden, 404)


def test_existing_keys_move_into_the_default_organisation(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/old.db"
    command.upgrade(alembic_config(url), "0006")
    engine = sa.create_engine(f"sqlite:///{tmp_path}/old.db")
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO api_keys (id, name, prefix, digest, role, default_priority, max_priority,"
                " created_at) VALUES ('key_old', 'old', 'gc_old', 'd1', 'user', 'normal', 'normal',"
                " '2026-01-01 00:00:00')"
            )
        )
    upgrade(url)
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT org_id FROM api_keys")).scalar_one() == "org_default"
        assert connection.execute(sa.text("SELECT name FROM organizations")).scalars().all() == ["default"]
    engine.dispose()
