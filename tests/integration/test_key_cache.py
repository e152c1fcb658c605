"""Each gateway caches authenticated keys; a change made through any gateway (or process of
`serve --workers N`) reaches every other within a second: a revoked key is refused, a new limit
applies."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import MODEL
from tests.integration.cluster_support import (
    Cluster,
    ClusterFactory,
    cluster_factory_fixture,  # noqa: F401 — the fixture `cluster_factory`
)
from tests.support import REDIS_URL, SECRETS, Server, create_pg_database, drop_pg_database, make_server

pytestmark = [pytest.mark.redis, pytest.mark.postgres]
BODY = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _new_key(server: Server, **limits: object) -> tuple[str, str]:
    r = httpx.post(
        f"{server.base_url}/api/keys", json={"name": "cached", **limits}, headers=_auth(server.admin_key)
    )
    assert r.status_code == 201, r.text
    SECRETS.add(r.json()["key"])
    return r.json()["id"], r.json()["key"]


def _chat(server: Server, key: str, client: httpx.Client | None = None) -> httpx.Response:
    url = f"{server.v1}/chat/completions"
    if client is None:
        return httpx.post(url, json=BODY, headers=_auth(key), timeout=10)
    return client.post(url, json=BODY, headers=_auth(key), timeout=10)


def _until(check: Callable[[], bool], within_s: float) -> float:
    """Seconds until `check()` holds, polled every 20 ms; fails past `within_s`."""
    started = time.monotonic()
    while time.monotonic() - started < within_s:
        if check():
            return time.monotonic() - started
        time.sleep(0.02)
    raise AssertionError(f"not within {within_s} s")


async def _two_gateways(cluster_factory: ClusterFactory) -> tuple[Cluster, Server, Server]:
    cluster = await cluster_factory()
    cluster.worker(MODEL, worker_id="cache-worker", slots=8)
    cluster.server.wait_for_model(MODEL)
    other = cluster.add_gateway("gateway-b")
    other.wait_for_model(MODEL)
    return cluster, cluster.server, other


async def test_revoke_on_one_gateway_is_refused_by_the_other_within_a_second(
    cluster_factory: ClusterFactory,
) -> None:
    _, a, b = await _two_gateways(cluster_factory)
    key_id, key = _new_key(a)
    for _ in range(3):  # B now holds the key in its cache
        assert _chat(b, key).status_code == 200
    r = httpx.delete(f"{a.base_url}/api/keys/{key_id}", headers=_auth(a.admin_key))
    assert r.status_code == 200, r.text
    took = await asyncio.to_thread(_until, lambda: _chat(b, key).status_code == 401, 1.0)
    assert took < 1.0
    refused = _chat(b, key)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_api_key"


async def test_a_new_rpm_limit_applies_on_the_other_gateway_within_a_second(
    cluster_factory: ClusterFactory,
) -> None:
    _, a, b = await _two_gateways(cluster_factory)
    key_id, key = _new_key(a)
    first = _chat(b, key)
    assert first.status_code == 200
    assert "x-ratelimit-limit-requests" not in first.headers  # unlimited: cached that way on B
    r = httpx.patch(f"{a.base_url}/api/keys/{key_id}", json={"rpm_limit": 1000}, headers=_auth(a.admin_key))
    assert r.status_code == 200, r.text

    def limited() -> bool:
        limit: str | None = _chat(b, key).headers.get("x-ratelimit-limit-requests")
        return limit == "1000"

    assert await asyncio.to_thread(_until, limited, 1.0) < 1.0


def test_serve_with_two_processes_serves_and_shares_revocations(tmp_path: Path) -> None:
    database_url = create_pg_database()
    server = make_server(tmp_path / "w2", database_url=database_url, redis_url=REDIS_URL)
    server.extra_args = ["--workers", "2"]
    server.start()
    try:
        server.add_worker("--model", MODEL, "--slots", "8")
        for _ in range(10):  # each on a fresh connection: both processes see the worker
            server.wait_for_model(MODEL)
        key_id, key = _new_key(server)
        # fresh connections spread over both processes, so each caches the key
        for _ in range(20):
            with httpx.Client() as client:
                assert _chat(server, key, client).status_code == 200
        assert server.logs().count("Started server process") == 2
        r = httpx.delete(f"{server.base_url}/api/keys/{key_id}", headers=_auth(server.admin_key))
        assert r.status_code == 200

        time.sleep(1.0)  # a second after the revoke, no process may still accept the key
        for _ in range(20):
            with httpx.Client() as client:
                assert _chat(server, key, client).status_code == 401
    finally:
        server.stop()
        drop_pg_database(database_url)


def test_serve_workers_needs_cluster_mode(tmp_path: Path) -> None:
    server = make_server(tmp_path / "embedded")
    server.extra_args = ["--workers", "2"]
    with pytest.raises(RuntimeError, match="--workers needs cluster mode"):
        server.start(timeout_s=20)
    assert server.process is not None
    assert server.process.returncode == 2
