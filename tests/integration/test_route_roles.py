"""Every route × every kind of caller against the declarative table (`gateway.permissions`).

The table must name exactly the routes the app serves; then each route is called on a live
server by an anonymous caller, a worker token, a user API key, an admin API key, a signed-in
platform admin, an organisation's owner and viewer, and a signed-in user outside it. What each
gets (allowed, 401, 403, or 404 for an organisation it is not in) must be what the table says.
Bodies are empty, so an allowed call ends in a 400 or 404 rather than changing anything.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from gpucloud.gateway.app import create_app
from gpucloud.gateway.permissions import ROUTES, Need
from gpucloud.settings import Settings
from tests.conftest import create_key
from tests.integration.accounts_support import auth, create_user, new_email, new_password, token_of
from tests.support import SECRETS, Server, make_server

ROLES = ("anonymous", "worker", "user_key", "admin_key", "admin_user", "owner", "viewer", "outsider")
USERS = ("admin_user", "owner", "viewer", "outsider")
KEYS = ("user_key", "admin_key")


def expected(need: Need, role: str) -> str:
    """ "ok", or the status the table implies for this caller."""
    if need is Need.PUBLIC:
        return "ok"
    if role == "anonymous":
        return "401"
    if need is Need.WORKER or role == "worker":
        return "ok" if need is Need.WORKER and role == "worker" else "401"
    if need is Need.USER:
        return "ok" if role in USERS else "401"
    if need is Need.KEY:
        return "ok" if role in KEYS else "401"
    if need is Need.ADMIN_KEY:
        return {"admin_key": "ok", "user_key": "403"}.get(role, "401")
    if role in ("admin_key", "admin_user") or need is Need.CALLER:
        return "ok"
    if need is Need.ADMIN:
        return "403"
    if role in ("outsider", "user_key"):
        return "404"  # an organisation is invisible to non-members
    return "403" if need is Need.ORG_MANAGE and role == "viewer" else "ok"


def outcome(response: httpx.Response) -> str:
    if response.status_code in (401, 403):
        return str(response.status_code)
    if response.status_code == 404 and "No organisation" in response.text:
        return "404"
    return "ok"


def test_the_table_names_exactly_the_served_routes() -> None:
    schema = create_app(Settings()).openapi()
    served = {(method.upper(), path) for path, ops in schema["paths"].items() for method in ops}
    assert served == set(ROUTES)


@pytest.fixture(scope="module")
def callers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str], str]]:
    server = make_server(tmp_path_factory.mktemp("route-roles"))
    server.start()
    try:
        admin = auth(server.admin_key)
        worker = httpx.post(
            f"{server.base_url}/api/workers/tokens", json={"name": "w"}, headers=admin, timeout=10
        )
        SECRETS.add(worker.json()["token"])
        creds = {"worker": worker.json()["token"], "admin_key": server.admin_key}
        creds["user_key"] = str(create_key(server)["key"])
        org = httpx.post(
            f"{server.base_url}/api/orgs", json={"name": "matrix"}, headers=admin, timeout=10
        ).json()
        for role in USERS:
            email, password = new_email(role), new_password()
            user = create_user(server, email, password, is_admin=role == "admin_user")
            if role in ("owner", "viewer"):
                body = {"user_id": user["id"], "role": role}
                r = httpx.post(
                    f"{server.base_url}/api/orgs/{org['id']}/members", json=body, headers=admin, timeout=10
                )
                assert r.status_code == 201, r.text
            creds[role] = token_of(server, email, password)
        yield server, creds, str(org["id"])
    finally:
        server.stop()


def _call(server: Server, method: str, path: str, token: str | None, org_id: str) -> httpx.Response:
    url = server.base_url + path.replace("{org_id}", org_id)
    for name in ("model", "job_id", "key_id", "token_id", "worker_id", "ref", "user_id"):
        url = url.replace("{" + name + "}", f"nope-{name}")
    headers = auth(token) if token else {}
    body: dict[str, object] | None = {} if method in ("POST", "PATCH") else None
    return httpx.request(method, url, json=body, headers=headers, timeout=30)


def test_every_route_for_every_caller(callers: tuple[Server, dict[str, str], str]) -> None:
    server, creds, org_id = callers
    wrong = []
    # Signing out revokes the caller's token: those calls go last.
    routes = sorted(ROUTES.items(), key=lambda item: item[0] == ("POST", "/api/auth/logout"))
    for (method, path), need in routes:
        for role in ROLES:
            response = _call(server, method, path, creds.get(role), org_id)
            got, want = outcome(response), expected(need, role)
            if got != want:
                wrong.append(
                    f"{method} {path} as {role}: {response.status_code} (table: {want}) {response.text[:120]}"
                )
    assert wrong == [], "\n".join(wrong)
