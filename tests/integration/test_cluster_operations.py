"""Operator actions and failure modes in cluster mode: replaying a dead-lettered job, limits that
fail closed when Redis is unreachable, and the warning about an evicting Redis."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator

import httpx
import pytest
import redis

from gpucloud.queue.redis import RedisJobQueue
from tests.conftest import create_key
from tests.integration.cluster_support import (
    Cluster,
    ClusterFactory,
    TcpProxy,
    cluster_factory_fixture,  # noqa: F401 — the fixture `cluster_factory`
)
from tests.support import REDIS_URL

pytestmark = pytest.mark.redis
MODEL = "ops-sim"


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def _wait_status(
    cluster: Cluster, job_id: str, status: str, timeout_s: float = 20
) -> dict[str, object]:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient() as http:
        while True:
            view: dict[str, object] = (
                await http.get(f"{cluster.server.v1}/jobs/{job_id}", headers=_auth(cluster.server.admin_key))
            ).json()
            if view["status"] == status or time.monotonic() > deadline:
                return view
            await asyncio.sleep(0.1)


async def test_a_dead_lettered_job_is_replayed_and_billed_once(cluster_factory: ClusterFactory) -> None:
    cluster = await cluster_factory(
        {"GPUCLOUD_QUEUE__MAX_ATTEMPTS": "1", "GPUCLOUD_QUEUE__LEASE_TIMEOUT_S": "1"}
    )
    crasher = cluster.worker(MODEL, "crash_marker=POISON", worker_id="crasher", slots=1)
    cluster.server.wait_for_model(MODEL)
    admin = _auth(cluster.server.admin_key)
    async with httpx.AsyncClient(timeout=30) as http:
        submitted = await http.post(
            f"{cluster.server.v1}/jobs",
            headers=admin,
            json={"endpoint": "completions", "model": MODEL, "prompt": "POISON pill", "max_tokens": 4},
        )
        job_id = submitted.json()["id"]
        assert crasher.process is not None
        crasher.process.wait(timeout=20)
        assert crasher.process.returncode == 86
        # nobody re-leases it until a worker polls: one that does not crash on it
        cluster.worker(MODEL, worker_id="healthy", slots=1)
        dead = await _wait_status(cluster, job_id, "dead")
        assert dead["status"] == "dead"
        listed = (
            await http.get(f"{cluster.server.base_url}/api/jobs", headers=admin, params={"status": "dead"})
        ).json()["data"]
        assert job_id in [j["id"] for j in listed]
        # a user may not retry, and only dead jobs can be retried
        user = str(create_key(cluster.server, name="user")["key"])
        assert (
            await http.post(f"{cluster.server.base_url}/api/jobs/{job_id}/retry", headers=_auth(user))
        ).status_code == 403
        retried = await http.post(f"{cluster.server.base_url}/api/jobs/{job_id}/retry", headers=admin)
        assert retried.status_code == 202, retried.text
        done = await _wait_status(cluster, job_id, "completed")
        assert done["status"] == "completed"
        assert int(str(done["attempts"])) >= 2  # attempts keep counting: the old attempt stays fenced
        again = await http.post(f"{cluster.server.base_url}/api/jobs/{job_id}/retry", headers=admin)
        assert again.status_code == 409
    usage = await cluster.usage(job_id)
    assert len(usage) == 1
    assert usage[0]["status"] == "completed"
    assert usage[0]["completion_tokens"] > 0


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    p = TcpProxy()
    p.start()
    yield p
    p.close()


async def test_limits_fail_closed_when_redis_is_unreachable(
    proxy: TcpProxy, cluster_factory: ClusterFactory
) -> None:
    cluster = await cluster_factory(redis_url=proxy.url)
    cluster.worker(MODEL, worker_id="limited-worker", slots=2)
    cluster.server.wait_for_model(MODEL)
    key = str(create_key(cluster.server, name="limited", rpm_limit=1000)["key"])
    body = {"model": MODEL, "messages": [{"role": "user", "content": "x"}], "max_tokens": 2}
    async with httpx.AsyncClient(timeout=30) as http:
        ok = await http.post(f"{cluster.server.v1}/chat/completions", headers=_auth(key), json=body)
        assert ok.status_code == 200
        assert ok.headers["x-ratelimit-limit-requests"] == "1000"
        proxy.stop()
        started = time.monotonic()
        down = await http.post(f"{cluster.server.v1}/chat/completions", headers=_auth(key), json=body)
        assert time.monotonic() - started < 6
        assert down.status_code == 503, down.text
        assert down.json()["error"]["code"] in ("limits_unavailable", "service_unavailable")
        assert 1 <= int(down.headers["retry-after"]) <= 120
        proxy.start()
        deadline = time.monotonic() + 15
        status = 0
        while time.monotonic() < deadline and status != 200:
            status = (
                await http.post(f"{cluster.server.v1}/chat/completions", headers=_auth(key), json=body)
            ).status_code
            assert status in (200, 503)
            await asyncio.sleep(0.3)
        assert status == 200  # back by itself, no restart


async def test_an_evicting_redis_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    before = client.config_get("maxmemory-policy")["maxmemory-policy"]
    assert isinstance(before, str | bytes)
    queue = RedisJobQueue(REDIS_URL, prefix="gctest-evict")
    try:
        client.config_set("maxmemory-policy", "allkeys-lru")
        with caplog.at_level(logging.WARNING, logger="gpucloud.queue.redis.queue"):
            await queue.start()
        assert any("noeviction" in r.getMessage() for r in caplog.records)
        caplog.clear()
        client.config_set("maxmemory-policy", "noeviction")
        with caplog.at_level(logging.WARNING, logger="gpucloud.queue.redis.queue"):
            await queue.start()
        assert not any("noeviction" in r.getMessage() for r in caplog.records)
    finally:
        client.config_set("maxmemory-policy", before)
        await queue.close()
