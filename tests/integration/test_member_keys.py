"""Members make their own API keys: a signed-in member of an organisation creates a user key in
it (owned by them), uses it with the official SDK, lists, reads and revokes only its own keys
and sees only their usage; viewers, outsiders and plain API keys cannot create keys, and a member
can neither make an admin key nor give its key high priority."""

from __future__ import annotations

import httpx
import openai

from tests.conftest import MODEL, create_key
from tests.integration.accounts_support import auth, create_org
from tests.integration.accounts_support import new_member as _member
from tests.integration.test_openai_api import assert_envelope
from tests.support import SECRETS, Server


def _make(server: Server, token: str, **body: object) -> httpx.Response:
    r = httpx.post(
        f"{server.base_url}/api/keys", json={"name": "mine", **body}, headers=auth(token), timeout=10
    )
    if r.status_code == 201:
        SECRETS.add(r.json()["key"])
    return r


def test_a_member_makes_uses_sees_and_revokes_its_own_key(server: Server) -> None:
    org_id = create_org(server, "keys")
    user_id, token = _member(server, org_id, "member")
    _, colleague = _member(server, org_id, "member")
    made = _make(server, token, org_id=org_id)
    assert made.status_code == 201, made.text
    key = made.json()
    assert (key["owner_user_id"], key["org_id"], key["role"]) == (user_id, org_id, "user")
    theirs = _make(server, colleague, org_id=org_id).json()
    admins = create_key(server, org_id=org_id)

    client = openai.OpenAI(base_url=server.v1, api_key=key["key"], max_retries=0)
    answer = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=3
    )
    assert answer.usage is not None
    colleague_client = openai.OpenAI(base_url=server.v1, api_key=theirs["key"], max_retries=0)
    colleague_client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=3
    )

    listed = httpx.get(f"{server.base_url}/api/keys", headers=auth(token), timeout=10).json()["data"]
    assert [k["id"] for k in listed] == [key["id"]]
    for other in (theirs["id"], admins["id"]):
        hidden = httpx.get(f"{server.base_url}/api/keys/{other}", headers=auth(token), timeout=10)
        assert_envelope(hidden, 404)
        kept = httpx.delete(f"{server.base_url}/api/keys/{other}", headers=auth(token), timeout=10)
        assert_envelope(kept, 404)
    usage = httpx.get(f"{server.base_url}/api/usage", headers=auth(token), timeout=10).json()
    assert {row["key_id"] for row in usage["data"]} == {key["id"]}
    assert usage["totals"]["completion_tokens"] == answer.usage.completion_tokens
    in_org = httpx.get(
        f"{server.base_url}/api/usage", params={"org_id": org_id}, headers=auth(token), timeout=10
    ).json()
    assert {row["key_id"] for row in in_org["data"]} == {key["id"]}  # a member: its own only

    revoked = httpx.delete(f"{server.base_url}/api/keys/{key['id']}", headers=auth(token), timeout=10)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked_at"] is not None
    patch = httpx.patch(
        f"{server.base_url}/api/keys/{theirs['id']}",
        json={"rpm_limit": 1},
        headers=auth(colleague),
        timeout=10,
    )
    assert_envelope(patch, 403)  # limits stay with platform admins


def test_who_may_not_make_keys(server: Server) -> None:
    org_id = create_org(server, "keys")
    _, member = _member(server, org_id, "member")
    _, viewer = _member(server, org_id, "viewer")
    _, outsider = _member(server, org_id, "outsider")
    assert_envelope(_make(server, viewer, org_id=org_id), 403)
    assert_envelope(_make(server, outsider, org_id=org_id), 404)
    assert_envelope(_make(server, member), 400, param="org_id")
    assert_envelope(_make(server, member, org_id=org_id, role="admin"), 403, param="role")
    assert_envelope(_make(server, member, org_id=org_id, max_priority="high"), 403, param="max_priority")
    user_key = str(create_key(server)["key"])
    assert_envelope(_make(server, user_key, org_id=org_id), 403)
    listing = httpx.get(f"{server.base_url}/api/keys", headers=auth(user_key), timeout=10)
    assert [k["prefix"] for k in listing.json()["data"]] == [user_key[:11]]  # itself only
