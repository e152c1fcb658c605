"""Cluster mode on a real Redis Cluster (three masters started here; docs/architecture.md §10).

Gateways (`gpucloud serve`) and workers (`gpucloud worker`) are given one node's address with the
cluster scheme (`redis+cluster://`) or with `GPUCLOUD_REDIS_CLUSTER=true`, and everything works as
on one server: requests and streams through the official `openai` SDK, a worker SIGKILLed mid-job
(another worker finishes the job, billed once), rpm limits exact across two gateways, and key
revocations and cancellations carried by pub/sub. A script or transaction whose keys spanned two
slots would fail here with CROSSSLOT; a client that did not follow the slot map, with MOVED.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest
from openai.types.chat import ChatCompletionMessageParam
from redis.asyncio import RedisCluster
from redis.crc import key_slot

from gpucloud.limits.names import LimitNames
from gpucloud.queue.names import RedisNames
from tests.conftest import MODEL, create_key
from tests.integration.cluster_support import (
    Cluster,
    ClusterFactory,
    cluster_factory_fixture,  # noqa: F401 — the fixture `cluster_factory`
    job_id_of,
    kill,
    openai_client,
)
from tests.integration.redis_cluster_support import RedisClusterNodes, redis_cluster, redis_cluster_available
from tests.support import Worker

pytestmark = [
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.skipif(not redis_cluster_available(), reason="needs redis-server and redis-cli"),
]

SLOW = "sim-slow"


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterNodes]:
    with redis_cluster(tmp_path_factory.mktemp("redis-cluster")) as started:
        yield started


async def _on_cluster(cluster_factory: ClusterFactory, nodes: RedisClusterNodes, **env: str) -> Cluster:
    """A gateway on the Redis Cluster, with a worker for MODEL."""
    cluster = await cluster_factory(env, redis_url=nodes.url)
    cluster.worker(MODEL, worker_id="rc-worker", slots=16)
    cluster.server.wait_for_model(MODEL)
    return cluster


async def _wait_serving(worker: Worker, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while "serving" not in worker.logs():
        assert time.monotonic() < deadline, worker.logs()[-2000:]
        await asyncio.sleep(0.05)


async def test_requests_and_streams_are_served_and_billed(
    cluster_factory: ClusterFactory, nodes: RedisClusterNodes
) -> None:
    cluster = await _on_cluster(cluster_factory, nodes)
    client = openai_client(cluster.server.v1, cluster.server.admin_key)
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello cluster"}]
    answer = await client.chat.completions.create(model=MODEL, messages=messages, max_tokens=8)
    assert answer.choices[0].message.content
    assert answer.usage is not None
    chunks, text, usage = 0, "", None
    stream = await client.chat.completions.create(
        model=MODEL,
        messages=messages,
        max_tokens=12,
        stream=True,
        stream_options={"include_usage": True},
    )
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            chunks += 1
            text += chunk.choices[0].delta.content
        usage = chunk.usage or usage
    await client.close()
    assert text
    assert chunks > 0
    assert usage is not None
    assert usage.completion_tokens >= chunks
    rows = await cluster.wait_for(
        "SELECT * FROM usage_records", timeout_s=30, until=lambda rows: len(rows) == 2
    )
    billed = sorted((r["prompt_tokens"], r["completion_tokens"]) for r in rows)
    assert billed == sorted(
        [
            (answer.usage.prompt_tokens, answer.usage.completion_tokens),
            (usage.prompt_tokens, usage.completion_tokens),
        ]
    )
    await _the_queue_is_one_slot_on_one_node(cluster, nodes)


async def _the_queue_is_one_slot_on_one_node(cluster: Cluster, nodes: RedisClusterNodes) -> None:
    """What the run left in Redis: every queue key in the prefix's slot, all on its master."""
    names = RedisNames(cluster.server.env["GPUCLOUD_REDIS_PREFIX"])
    client = RedisCluster.from_url(nodes.plain_url, decode_responses=True)
    try:
        keys = [key async for key in client.scan_iter(match=f"{names.root}:*", count=1000)]
        assert names.epoch() in keys
        assert names.outcomes() in keys
        assert {key_slot(key.encode()) for key in keys} == {key_slot(names.root.encode())}
    finally:
        await client.aclose()


async def test_a_worker_killed_mid_job_loses_no_job_and_it_is_billed_once(
    cluster_factory: ClusterFactory, nodes: RedisClusterNodes
) -> None:
    """SIGKILL the worker running a (non-streamed) job: its lease expires, the other worker
    reclaims the delivery and finishes the job; one usage row, matching what the client got."""
    cluster = await cluster_factory(redis_url=nodes.url)
    doomed = cluster.worker(SLOW, "tokens_per_s=5", "natural_end=false", worker_id="rc-doomed", slots=2)
    await _wait_serving(doomed)
    cluster.server.wait_for_model(SLOW)
    client = openai_client(cluster.server.v1, cluster.server.admin_key, timeout=180)
    # A busy machine may let the worker's presence lapse for a moment: the 503 says when to retry.
    request = client.with_options(max_retries=3).chat.completions.create(
        model=SLOW, messages=[{"role": "user", "content": "survive"}], max_tokens=500
    )
    answer = asyncio.ensure_future(request)  # 100 s on the slow worker: it is killed long before
    running = await cluster.wait_for("SELECT id, worker_id FROM jobs WHERE status = 'running'", timeout_s=90)
    if not running and answer.done():
        answer.result()  # the request's own failure says more than an empty list
    (job,) = running
    assert job["worker_id"] == "rc-doomed"
    rescuer = cluster.worker(SLOW, "tokens_per_s=1000", "natural_end=false", worker_id="rc-rescuer", slots=2)
    await _wait_serving(rescuer)
    kill(doomed)
    killed_at = time.time()
    response = await asyncio.wait_for(answer, 120)
    await client.close()
    assert job_id_of(response.id) == job["id"]
    assert response.usage is not None
    assert response.usage.completion_tokens == 500
    row = await cluster.job(job["id"])
    assert row is not None
    assert (row["status"], row["worker_id"]) == ("completed", "rc-rescuer")
    assert row["attempts"] >= 2
    assert row["started_at"].timestamp() > killed_at
    (usage,) = await cluster.usage(job["id"])
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (
        response.usage.prompt_tokens,
        response.usage.completion_tokens,
    )
    assert len(await cluster.rows("SELECT id FROM usage_records")) == 1


async def test_rpm_limit_is_exact_across_two_gateways(
    cluster_factory: ClusterFactory, nodes: RedisClusterNodes
) -> None:
    """rpm_limit=5: one request through each gateway, then 12 concurrent ones, half through each:
    exactly 3 more are admitted, the rest refused with 429. The gateways reach the cluster by the
    plain URL and `GPUCLOUD_REDIS_CLUSTER=true`."""
    cluster = await cluster_factory({"GPUCLOUD_REDIS_CLUSTER": "true"}, redis_url=nodes.plain_url)
    cluster.worker(MODEL, worker_id="rc-rpm-worker", slots=16)
    cluster.server.wait_for_model(MODEL)
    other = cluster.add_gateway("gateway-b")
    other.wait_for_model(MODEL)
    created = create_key(cluster.server, name="rc-rpm", rpm_limit=5)
    body = {"model": MODEL, "messages": [{"role": "user", "content": "x"}], "max_tokens": 2}
    headers = _auth(str(created["key"]))
    gateways = (cluster.server, other)
    async with httpx.AsyncClient(timeout=60) as http:
        for gateway in gateways:  # each gateway has a connection to the subject's node now
            first = await http.post(f"{gateway.v1}/chat/completions", json=body, headers=headers)
            assert first.status_code == 200, first.text
        calls = [
            http.post(f"{gateway.v1}/chat/completions", json=body, headers=headers)
            for _ in range(6)
            for gateway in gateways
        ]
        statuses = sorted(r.status_code for r in await asyncio.gather(*calls))
    assert statuses == [200] * 3 + [429] * 9
    # The rolling window sits in the cluster in the subject's own slot, holding the 5 admissions.
    window = LimitNames(cluster.server.env["GPUCLOUD_REDIS_PREFIX"]).window(str(created["id"]))
    client = RedisCluster.from_url(nodes.plain_url, decode_responses=True)
    try:
        assert await client.zcard(window) == 5
    finally:
        await client.aclose()


async def test_revocations_and_cancellations_travel_by_pub_sub(
    cluster_factory: ClusterFactory, nodes: RedisClusterNodes
) -> None:
    """A key revoked on gateway A is refused by gateway B long before B's cache would expire
    (60 s: only the announcement explains it); a closed stream cancels its job on the worker."""
    cluster = await _on_cluster(cluster_factory, nodes, GPUCLOUD_KEY_CACHE_TTL_S="60")
    other = cluster.add_gateway("gateway-b")
    other.wait_for_model(MODEL)
    created = create_key(cluster.server, name="rc-revoked")
    key = str(created["key"])
    body = {"model": MODEL, "messages": [{"role": "user", "content": "x"}], "max_tokens": 2}
    async with httpx.AsyncClient(timeout=30) as http:
        assert (
            await http.post(f"{other.v1}/chat/completions", json=body, headers=_auth(key))
        ).status_code == 200
        admin = _auth(cluster.server.admin_key)
        revoked = await http.delete(f"{cluster.server.base_url}/api/keys/{created['id']}", headers=admin)
        assert revoked.status_code == 200, revoked.text
        status = 200
        for _ in range(300):  # at most ~30 s, half the cache's TTL
            status = (
                await http.post(f"{other.v1}/chat/completions", json=body, headers=_auth(key))
            ).status_code
            if status == 401:
                break
            await asyncio.sleep(0.1)
        assert status == 401
    await _closing_a_stream_cancels_its_job(cluster)


async def _closing_a_stream_cancels_its_job(cluster: Cluster) -> None:
    worker = cluster.worker(SLOW, "tokens_per_s=20", "natural_end=false", worker_id="rc-cancel", slots=2)
    await _wait_serving(worker)
    cluster.server.wait_for_model(SLOW)
    client = openai_client(cluster.server.v1, cluster.server.admin_key)
    stream = await client.chat.completions.create(
        model=SLOW, messages=[{"role": "user", "content": "long"}], max_tokens=2000, stream=True
    )
    seen = 0
    async for chunk in stream:
        seen += bool(chunk.choices and chunk.choices[0].delta.content)
        if seen >= 3:
            break
    await stream.close()
    await client.close()
    rows = await cluster.wait_for(
        "SELECT status FROM jobs WHERE status = 'cancelled'", timeout_s=20, until=lambda rows: len(rows) == 1
    )
    assert [r["status"] for r in rows] == ["cancelled"]
    (usage,) = await cluster.wait_for("SELECT * FROM usage_records WHERE status = 'cancelled'", timeout_s=20)
    assert 3 <= usage["completion_tokens"] < 2000


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_the_fixture_is_three_masters_sharing_every_slot(nodes: RedisClusterNodes) -> None:
    out = subprocess.run(
        ["redis-cli", "-p", str(nodes.ports[0]), "cluster", "info"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "cluster_state:ok" in out
    assert "cluster_known_nodes:3" in out
    assert "cluster_size:3" in out
