"""Accounts across gateway replicas: two `gpucloud serve` processes on one PostgreSQL database and
one Redis. Wrong passwords sent to both add up — the per-account and the per-IP limits hold for
the cluster, not per process — and a single sign-on started at one gateway finishes at the other
(the state, nonce and PKCE verifier are in the database) and its one-time code is redeemed at
the first."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from tests.integration.accounts_support import auth, create_user, login, new_email, new_password
from tests.integration.oidc_provider import OidcProvider
from tests.integration.test_oidc_sso import oidc_env
from tests.integration.test_openai_api import assert_envelope
from tests.support import (
    REDIS_URL,
    SECRETS,
    Server,
    create_pg_database,
    drop_pg_database,
    free_port,
    make_server,
)


@pytest.fixture(scope="module")
def gateways(provider: OidcProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Server]]:
    database_url = create_pg_database()
    tmp: Path = tmp_path_factory.mktemp("accounts-cluster")
    env = {
        **oidc_env(provider),
        "GPUCLOUD_ACCOUNTS__LOGIN_MAX_FAILURES": "4",
        "GPUCLOUD_ACCOUNTS__LOGIN_IP_MAX_FAILURES": "10",
        "GPUCLOUD_LOCAL_WORKER__ENABLED": "false",
    }
    first = make_server(tmp / "a", database_url=database_url, redis_url=REDIS_URL, env=env)
    # The callback URL registered with the provider: the first gateway's (behind a load balancer,
    # the public one); the token request from either gateway must name the same.
    first.env["GPUCLOUD_OIDC__REDIRECT_URI"] = f"{first.base_url}/api/auth/oidc/callback"
    second = Server(
        base_url=f"http://127.0.0.1:{free_port()}",
        admin_key=first.admin_key,
        data_dir=tmp / "b" / "data",
        log_path=tmp / "b.log",
        env=dict(first.env),  # the same database, Redis prefix and admin key
    )
    servers = [first, second]
    try:
        for server in servers:
            server.start(timeout_s=180)
        yield servers
    finally:
        for server in servers:
            server.stop()
        drop_pg_database(database_url)


def test_wrong_passwords_add_up_across_gateways(gateways: list[Server]) -> None:
    first, second = gateways
    email, password = new_email("guessed"), new_password()
    create_user(first, email, password)
    for attempt in range(4):  # the account's limit, spread over both gateways
        wrong = login(gateways[attempt % 2], email, "wrong-" + password)
        assert_envelope(wrong, 401)
    for server in gateways:  # now both refuse, even the right password
        throttled = login(server, email, password)
        assert_envelope(throttled, 429, code="too_many_sign_in_attempts")
        assert int(throttled.headers["retry-after"]) >= 1

    # The client IP's limit (10) counts every account's failures on both gateways: 6 more.
    others = [new_email("other") for _ in range(6)]
    for n, other in enumerate(others):
        assert_envelope(login(gateways[n % 2], other, "nope-" + password), 401)
    fresh_email, fresh_password = new_email("fresh"), new_password()
    create_user(first, fresh_email, fresh_password)
    assert_envelope(login(second, fresh_email, fresh_password), 429, code="too_many_sign_in_attempts")


def test_sign_on_started_at_one_gateway_finishes_at_the_other(
    gateways: list[Server], provider: OidcProvider
) -> None:
    first, second = gateways
    provider.email = new_email("roaming")
    with httpx.Client(timeout=10) as browser:  # one browser; the load balancer picks the gateway
        began = browser.get(f"{first.base_url}/api/auth/oidc/login")
        back = urlparse(httpx.get(began.headers["location"], timeout=10).headers["location"])
        ended = browser.get(f"{second.base_url}{back.path}?{back.query}")
        assert ended.status_code == 302, ended.text
        landing = parse_qs(urlparse(ended.headers["location"]).query)
        assert set(landing) == {"sso_code"}, landing
        code = landing["sso_code"][0]
        SECRETS.add(code)
        granted = browser.post(f"{first.base_url}/api/auth/oidc/exchange", json={"code": code})
        assert granted.status_code == 200, granted.text
        token = granted.json()["access_token"]
        SECRETS.add(token)
        me = browser.get(f"{second.base_url}/api/auth/me", headers=auth(token))
        assert me.json()["email"] == provider.email
        again = browser.post(f"{second.base_url}/api/auth/oidc/exchange", json={"code": code})
        assert_envelope(again, 400, param="code")


def test_config_is_the_same_on_both(gateways: list[Server]) -> None:
    answers = [httpx.get(f"{s.base_url}/api/auth/config", timeout=10).json() for s in gateways]
    assert answers == [{"password": True, "oidc": {"enabled": True, "name": "Test IdP"}}] * 2
