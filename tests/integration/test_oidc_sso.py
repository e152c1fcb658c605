"""Single sign-on end to end: a real gateway process and a real OpenID Connect provider
(tests/integration/oidc_provider.py) on loopback ports, the browser's redirects followed by hand
with httpx. Covered: the full flow (authorize URL with state, nonce and PKCE; callback; one-time
code; exchange for a token), users created on first sign-in with the default role and linked by
email when they exist, and the refusals — a wrong state, a callback in another browser, an ID
token for another audience, an email outside the allowed domains, an error at the provider, a
one-time code used twice — each with its audit row."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import httpx
import pytest

from tests.integration.accounts_support import auth, create_user, new_email, new_password
from tests.integration.oidc_provider import OidcProvider
from tests.integration.test_openai_api import assert_envelope
from tests.support import SECRETS, Server, make_server


def oidc_env(idp: OidcProvider) -> dict[str, str]:
    return {
        "GPUCLOUD_OIDC__ISSUER": idp.issuer,
        "GPUCLOUD_OIDC__CLIENT_ID": idp.client_id,
        "GPUCLOUD_OIDC__CLIENT_SECRET": idp.client_secret,
        "GPUCLOUD_OIDC__DISPLAY_NAME": "Test IdP",
        "GPUCLOUD_OIDC__ALLOWED_DOMAINS": json.dumps(["example.com"]),
        "GPUCLOUD_OIDC__DEFAULT_ROLE": "viewer",
    }


@pytest.fixture(scope="module")
def srv(provider: OidcProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = make_server(tmp_path_factory.mktemp("oidc"), env=oidc_env(provider))
    server.start(timeout_s=120)
    try:
        yield server
    finally:
        server.stop()


def sign_in(start: httpx.Client, callback: httpx.Client | None = None, **tamper: str) -> dict[str, str]:
    """Follow the redirects like a browser: gateway → provider → gateway → dashboard. `tamper`
    replaces query parameters of the provider's redirect back; `callback` is the gateway (and
    cookie jar) that receives it. Returns the dashboard URL's query."""
    began = start.get("/api/auth/oidc/login")
    assert began.status_code == 302, began.text
    approved = httpx.get(began.headers["location"], timeout=10)
    assert approved.status_code == 302, approved.text
    back = urlparse(approved.headers["location"])
    query = {k: v[0] for k, v in parse_qs(back.query).items()} | tamper
    ended = (callback or start).get(f"{back.path}?{urlencode(query)}")
    assert ended.status_code == 302, ended.text
    landing = urlparse(ended.headers["location"])
    assert landing.path == "/"
    assert not landing.netloc
    return {k: v[0] for k, v in parse_qs(landing.query).items()}


def exchange(client: httpx.Client, code: str) -> httpx.Response:
    return client.post("/api/auth/oidc/exchange", json={"code": code})


def callback_rows(server: Server) -> list[dict[str, Any]]:
    r = httpx.get(
        f"{server.base_url}/api/audit",
        params={"action": "GET /api/auth/oidc/callback", "limit": "200"},
        headers=auth(server.admin_key),
        timeout=10,
    )
    assert r.status_code == 200, r.text
    rows: list[dict[str, Any]] = r.json()["data"]
    return rows


def browser(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, timeout=10)


def test_config_names_the_provider(srv: Server) -> None:
    r = httpx.get(f"{srv.base_url}/api/auth/config", timeout=10)
    assert r.json() == {"password": True, "oidc": {"enabled": True, "name": "Test IdP"}}


def test_full_flow_creates_the_user_once_and_the_code_is_single_use(
    srv: Server, provider: OidcProvider
) -> None:
    provider.email, provider.audience, provider.authorize_error = new_email("sso"), None, None
    with browser(srv) as client:
        landing = sign_in(client)
        assert set(landing) == {"sso_code"}
        SECRETS.add(landing["sso_code"])
        granted = exchange(client, landing["sso_code"])
        assert granted.status_code == 200, granted.text
        assert set(granted.json()) == {"access_token", "token_type", "expires_in"}
        token = granted.json()["access_token"]
        SECRETS.add(token)
        me = client.get("/api/auth/me", headers=auth(token)).json()
        assert me["email"] == provider.email
        assert me["is_admin"] is False
        members = httpx.get(
            f"{srv.base_url}/api/orgs/org_default/members", headers=auth(srv.admin_key), timeout=10
        ).json()["data"]
        assert {m["email"]: m["role"] for m in members}[provider.email] == "viewer"
        again = exchange(client, landing["sso_code"])
        assert_envelope(again, 400, param="code")
        assert again.json()["error"]["code"] == "invalid_sso_code"
        second = exchange(client, sign_in(client)["sso_code"])  # the same person, signed in again
        again_me = client.get("/api/auth/me", headers=auth(second.json()["access_token"])).json()
        assert again_me["id"] == me["id"]
    rows = [r for r in callback_rows(srv) if r["target"] == provider.email]
    assert [(r["result"], r["actor"]) for r in rows] == [("success", me["id"])] * 2


def test_an_existing_user_is_linked_by_email(srv: Server, provider: OidcProvider) -> None:
    email, password = new_email("linked"), new_password()
    user = create_user(srv, email, password)
    provider.email, provider.audience, provider.authorize_error = email.upper(), None, None
    with browser(srv) as client:
        token = exchange(client, sign_in(client)["sso_code"]).json()["access_token"]
        SECRETS.add(token)
        assert client.get("/api/auth/me", headers=auth(token)).json()["id"] == user["id"]


def test_refusals_redirect_with_a_reason_and_are_audited(srv: Server, provider: OidcProvider) -> None:
    provider.email, provider.audience, provider.authorize_error = new_email("refused"), None, None
    with browser(srv) as client:
        assert sign_in(client, state="not-the-state") == {"sso_error": "invalid_state"}
        with browser(srv) as other:  # the callback in a browser that did not start the sign-in
            assert sign_in(client, callback=other) == {"sso_error": "invalid_state"}
        provider.audience = "another-client"
        assert sign_in(client) == {"sso_error": "invalid_id_token"}
        provider.audience, provider.email = None, "eve@elsewhere.test"
        assert sign_in(client) == {"sso_error": "domain_not_allowed"}
        provider.authorize_error = "access_denied"
        assert sign_in(client) == {"sso_error": "provider_error"}
        provider.authorize_error = None
        missing = exchange(client, "no-such-code")
        assert_envelope(missing, 400, param="code")
    users = httpx.get(f"{srv.base_url}/api/users", headers=auth(srv.admin_key), timeout=10).json()["data"]
    assert "eve@elsewhere.test" not in {u["email"] for u in users}
    reasons = [(r["target"], r["result"], r["status"]) for r in callback_rows(srv)[:5]]
    assert reasons == [
        ("provider_error", "failure", 401),
        ("domain_not_allowed", "failure", 403),
        ("invalid_id_token", "failure", 401),
        ("invalid_state", "failure", 401),
        ("invalid_state", "failure", 401),
    ]


def test_a_state_is_good_once(srv: Server, provider: OidcProvider) -> None:
    """The provider's redirect back, replayed with the cookie it came with, signs nobody in."""
    provider.email, provider.audience, provider.authorize_error = new_email("replay"), None, None
    with browser(srv) as client:
        began = client.get("/api/auth/oidc/login")
        back = httpx.get(began.headers["location"], timeout=10).headers["location"]
        cookie = client.cookies.get("gc_oidc_state")
        assert cookie is not None
        first = client.get(back)
        assert "sso_code=" in first.headers["location"]
        client.cookies.set("gc_oidc_state", cookie, path="/api/auth/oidc")
        replay = client.get(back)
        assert replay.headers["location"] == "/?sso_error=invalid_state"
