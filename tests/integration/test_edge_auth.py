"""The edge of the API for callers without a valid credential (findings 11 and 12 of the security
review, and the deny-by-default rule):

- every route of the OpenAPI schema answers 401 without a credential, except an explicit list
  of public paths;
- no redirect is built from the Host header;
- failed authentication is throttled per client address: in-process in embedded mode, through
  Redis across gateways in cluster mode.

The server trusts `X-Forwarded-For` from 127.0.0.1 (uvicorn's default), which lets one test
machine speak from several client addresses.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gpucloud.gateway.permissions import ROUTES, Need
from tests.support import REDIS_URL, Server, create_pg_database, drop_pg_database, free_port, make_server

# Routes anyone may call: liveness and readiness say nothing else.
# health, readiness, sign-in, the sign-in page's config, single sign-on and accepting an invitation
PUBLIC = {route for route, need in ROUTES.items() if need is Need.PUBLIC}
THROTTLE = {"GPUCLOUD_AUTH_THROTTLE__MAX_FAILURES": "20", "GPUCLOUD_AUTH_THROTTLE__WINDOW_S": "60"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = make_server(tmp_path_factory.mktemp("edge"), env=THROTTLE)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def schema_routes() -> list[tuple[str, str]]:
    out = subprocess.run(
        [sys.executable, "-m", "gpucloud", "openapi"], capture_output=True, text=True, check=True, timeout=60
    )
    paths: dict[str, dict[str, Any]] = json.loads(out.stdout)["paths"]
    return [(method.upper(), path) for path, methods in paths.items() for method in methods]


def test_every_route_needs_a_credential_except_the_public_ones(server: Server) -> None:
    routes = schema_routes()
    assert len(routes) > 30
    assert set(routes) >= PUBLIC
    for index, (method, path) in enumerate(routes):
        concrete = re.sub(r"\{[^}]+\}", "some-id", path)
        # Each from its own address: these missing credentials are not failures the throttle counts,
        # but a wrong one below is, and this keeps the test independent of that rule.
        headers = {"x-forwarded-for": f"198.51.100.{index % 250}"}
        r = httpx.request(method, f"{server.base_url}{concrete}", headers=headers, timeout=10)
        if (method, path) in PUBLIC:
            # health answers, readiness may not; sign-in without a body is the client's mistake;
            # single sign-on is off on this server (404) or redirects
            assert r.status_code in (200, 302, 400, 404, 503), (method, path, r.status_code)
            continue
        assert r.status_code == 401, (method, path, r.status_code, r.text)
        assert set(r.json()["error"]) == {"message", "type", "param", "code"}
        bad = {**headers, "Authorization": "Bearer gc_not-a-real-key"}
        r = httpx.request(method, f"{server.base_url}{concrete}", headers=bad, timeout=10)
        assert r.status_code == 401, (method, path, r.status_code, r.text)


def test_no_redirect_is_built_from_the_host_header(server: Server) -> None:
    for path in ("/api/keys/", "/v1/models/", "/api/workers/"):
        r = httpx.get(f"{server.base_url}{path}", headers={"Host": "evil.example"}, follow_redirects=False)
        assert not 300 <= r.status_code < 400, (path, r.status_code, r.headers)
        assert "location" not in r.headers
        assert "evil.example" not in r.text


def attempt(base_url: str, address: str, key: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}", "x-forwarded-for": address}
    return httpx.get(f"{base_url}/v1/models", headers=headers, timeout=10)


def test_failed_authentication_is_throttled_per_address(server: Server) -> None:
    attacker, bystander = "203.0.113.7", "203.0.113.8"
    for i in range(20):
        assert attempt(server.base_url, attacker, f"gc-guess-{i}").status_code == 401
    r = attempt(server.base_url, attacker, "gc-guess-20")
    assert r.status_code == 429, r.text
    assert r.json()["error"]["code"] == "too_many_auth_failures"
    assert 1 <= int(r.headers["retry-after"]) <= 60
    # The address is blocked whatever it sends; other addresses are not.
    assert attempt(server.base_url, attacker, server.admin_key).status_code == 429
    assert attempt(server.base_url, bystander, server.admin_key).status_code == 200
    assert attempt(server.base_url, bystander, "gc-one-typo").status_code == 401
    # Worker tokens count the same way.
    headers = {"Authorization": "Bearer gcw_guess", "x-forwarded-for": attacker}
    r = httpx.post(f"{server.base_url}/api/workers/register", json={}, headers=headers)
    assert r.status_code == 429


def test_successes_are_never_counted(server: Server) -> None:
    for _ in range(40):
        assert attempt(server.base_url, "203.0.113.9", server.admin_key).status_code == 200


@pytest.fixture(scope="module")
def two_gateways(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server]]:
    url = create_pg_database()
    prefix = f"gctest-{uuid.uuid4().hex[:10]}"
    env = {**THROTTLE, "GPUCLOUD_REDIS_PREFIX": prefix}
    gateways = []
    try:
        first = make_server(tmp_path_factory.mktemp("gw-a"), database_url=url, redis_url=REDIS_URL, env=env)
        tmp = tmp_path_factory.mktemp("gw-b")  # the same database, Redis prefix and admin key
        second = Server(
            f"http://127.0.0.1:{free_port()}", first.admin_key, tmp / "data", tmp / "log", first.env
        )
        for gateway in (first, second):
            gateway.start()
            gateways.append(gateway)
        yield first, second
    finally:
        for gateway in gateways:
            gateway.stop()
        drop_pg_database(url)


def test_failures_add_up_across_gateways_through_redis(two_gateways: tuple[Server, Server]) -> None:
    a, b = two_gateways
    address = "203.0.113.50"
    for i in range(10):
        assert attempt(a.base_url, address, f"gc-a-{i}").status_code == 401
        assert attempt(b.base_url, address, f"gc-b-{i}").status_code == 401
    assert attempt(b.base_url, address, "gc-b-more").status_code == 429  # b saw the 20th failure
    # a learns at this address's next failure there: the shared count is past the limit.
    assert attempt(a.base_url, address, "gc-a-more").status_code == 401
    assert attempt(a.base_url, address, a.admin_key).status_code == 429
    assert attempt(a.base_url, "203.0.113.51", a.admin_key).status_code == 200
