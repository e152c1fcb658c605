"""The audit log on a live server of its own: every state-changing management call leaves exactly
one row (actor, action, target, result, status, client IP, request id), sign-in failures too;
no secret ever appears in a row; cursor pagination; owners read their organisation's rows only;
no route changes or deletes rows."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.integration.accounts_support import auth, login, new_email, new_password
from tests.integration.test_openai_api import assert_envelope
from tests.support import SECRETS, Server, make_server


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = make_server(tmp_path_factory.mktemp("audit"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _all_rows(server: Server, **params: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = {**params, "limit": "3", **({"cursor": cursor} if cursor else {})}
        page = httpx.get(
            f"{server.base_url}/api/audit", params=query, headers=auth(server.admin_key), timeout=10
        )
        assert page.status_code == 200, page.text
        rows += page.json()["data"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return rows


def test_each_action_leaves_exactly_one_row_without_secrets(srv: Server) -> None:
    admin = auth(srv.admin_key)
    base = srv.base_url
    secrets: list[str] = []
    ids: dict[str, str] = {}

    def once(action: str, call: Callable[[], httpx.Response], **want: object) -> httpx.Response:
        before = {r["id"] for r in _all_rows(srv)}
        response = call()
        new = [r for r in _all_rows(srv) if r["id"] not in before]
        assert len(new) == 1, (action, new)
        row = new[0]
        assert row["action"] == action
        assert row["client_ip"] == "127.0.0.1"
        assert row["status"] == response.status_code
        assert row["result"] == ("success" if response.status_code < 400 else "failure")
        for field, value in want.items():
            assert row[field] == value, (action, field, row)
        return response

    email, password = new_email(), new_password()
    secrets.append(password)
    user = once(
        "POST /api/users",
        lambda: httpx.post(
            f"{base}/api/users",
            json={"email": email, "password": password},
            headers={**admin, "x-request-id": "audit-req-1"},
        ),
        request_id="audit-req-1",
    ).json()
    ids["user"] = user["id"]
    assert _all_rows(srv)[0]["target"] == ids["user"]
    once("POST /api/auth/login", lambda: login(srv, email, "wrong password"), actor="anonymous", target=email)
    token = once("POST /api/auth/login", lambda: login(srv, email, password), actor=ids["user"]).json()[
        "access_token"
    ]
    secrets.append(token)
    SECRETS.add(token)
    org = once(
        "POST /api/orgs", lambda: httpx.post(f"{base}/api/orgs", json={"name": "audited"}, headers=admin)
    )
    org_id = org.json()["id"]
    once(
        "POST /api/orgs/{org_id}/members",
        lambda: httpx.post(
            f"{base}/api/orgs/{org_id}/members", json={"user_id": ids["user"], "role": "owner"}, headers=admin
        ),
        target=ids["user"],
        org_id=org_id,
    )
    key = once(
        "POST /api/keys",
        lambda: httpx.post(f"{base}/api/keys", json={"name": "k", "org_id": org_id}, headers=admin),
    ).json()
    secrets.append(key["key"])
    SECRETS.add(key["key"])
    assert _all_rows(srv)[0]["target"] == key["id"]
    assert _all_rows(srv)[0]["org_id"] == org_id
    once(
        "DELETE /api/keys/{key_id}",
        lambda: httpx.delete(f"{base}/api/keys/{key['id']}", headers=admin),
        target=key["id"],
    )
    worker = once(
        "POST /api/workers/tokens",
        lambda: httpx.post(f"{base}/api/workers/tokens", json={"name": "w"}, headers=admin),
    )
    secrets.append(worker.json()["token"])
    SECRETS.add(worker.json()["token"])
    once("POST /api/users", lambda: httpx.post(f"{base}/api/users", json={"email": "bad"}, headers=admin))
    signed_out = once(
        "POST /api/auth/logout",
        lambda: httpx.post(f"{base}/api/auth/logout", headers=auth(token)),
        actor=ids["user"],
    )
    assert signed_out.status_code == 200
    once(
        "PATCH /api/users/{user_id}",
        lambda: httpx.patch(f"{base}/api/users/{ids['user']}", json={"is_admin": False}, headers=admin),
        target=ids["user"],
    )
    everything = httpx.Response(200, json=_all_rows(srv)).text
    for secret in [*secrets, srv.admin_key]:
        assert secret not in everything
    before = len(_all_rows(srv))
    httpx.get(f"{base}/api/keys", headers=admin)
    httpx.get(f"{base}/api/audit", headers=admin)
    assert len(_all_rows(srv)) == before  # reads are not audited


def test_pages_filters_and_who_may_read(srv: Server) -> None:
    admin = auth(srv.admin_key)
    base = srv.base_url
    for _ in range(4):
        httpx.post(f"{base}/api/users", json={"email": "nope"}, headers=admin)
    rows = _all_rows(srv)
    ids = [r["id"] for r in rows]
    assert ids == sorted(ids, reverse=True)
    assert len(ids) == len(set(ids))
    failures = _all_rows(srv, result="failure", action="POST /api/users")
    assert len(failures) >= 4
    assert all(r["result"] == "failure" for r in failures)
    org_id = httpx.post(f"{base}/api/orgs", json={"name": "readers"}, headers=admin).json()["id"]
    owner_email, owner_password = new_email(), new_password()
    owner = httpx.post(
        f"{base}/api/users", json={"email": owner_email, "password": owner_password}, headers=admin
    )
    httpx.post(
        f"{base}/api/orgs/{org_id}/members",
        json={"user_id": owner.json()["id"], "role": "owner"},
        headers=admin,
    )
    token = login(srv, owner_email, owner_password).json()["access_token"]
    SECRETS.add(token)
    mine = httpx.get(f"{base}/api/audit", params={"org_id": org_id}, headers=auth(token))
    assert mine.status_code == 200, mine.text
    assert {r["org_id"] for r in mine.json()["data"]} == {org_id}
    assert_envelope(httpx.get(f"{base}/api/audit", headers=auth(token)), 400, param="org_id")
    other = httpx.post(f"{base}/api/orgs", json={"name": "others"}, headers=admin).json()["id"]
    assert_envelope(httpx.get(f"{base}/api/audit", params={"org_id": other}, headers=auth(token)), 404)
    assert_envelope(
        httpx.get(f"{base}/api/audit", params={"cursor": "x"}, headers=admin), 400, param="cursor"
    )
    for method in ("DELETE", "PATCH", "PUT"):
        assert httpx.request(method, f"{base}/api/audit", headers=admin).status_code in (404, 405)
