"""Per-key limits and budgets through real gateways: exact under concurrency, shared across gateway
replicas through Redis, OpenAI-conformant headers, and fail-closed when the limit store is down."""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.conftest import MODEL, create_key
from tests.support import REDIS_URL, Server, create_pg_database, drop_pg_database, make_server

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "count me"}]
CHAT: dict[str, object] = {"model": MODEL, "messages": MESSAGES, "max_tokens": 5}
_DURATION = re.compile(r"^(\d+ms|\d+(\.\d+)?s|\d+m\d+s)$")


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def _fire(
    urls: list[str], key: str, total: int, body: dict[str, object] = CHAT
) -> list[httpx.Response]:
    """`total` requests at once, spread over `urls` (one gateway each)."""
    limits = httpx.Limits(max_connections=200)
    # Requests queue for one of the 200 connections for as long as the burst takes: on a busy
    # machine that is over a minute, which is no failure of the limit under test.
    timeout = httpx.Timeout(60, pool=None)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as http:
        return await asyncio.gather(
            *(
                http.post(f"{urls[i % len(urls)]}/v1/chat/completions", headers=_auth(key), json=body)
                for i in range(total)
            )
        )


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = make_server(
        Path(tmp_path_factory.mktemp("limits")),
        env={"GPUCLOUD_PRICES": '{"gpucloud-sim-1": {"input_per_million": 1, "output_per_million": 1}}'},
    )
    srv.start()
    yield srv
    srv.stop()


def test_1000_concurrent_requests_admit_exactly_100(gateway: Server) -> None:
    key = str(create_key(gateway, name="rpm", rpm_limit=100)["key"])
    responses = asyncio.run(_fire([gateway.base_url], key, 1000))
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 100, 429: 900}
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert 1 <= int(refused.headers["retry-after"]) <= 120
    assert refused.headers["x-ratelimit-limit-requests"] == "100"
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    ok = next(r for r in responses if r.status_code == 200)
    assert ok.headers["x-ratelimit-limit-requests"] == "100"
    assert _DURATION.match(ok.headers["x-ratelimit-reset-requests"])


def test_token_reservations_never_exceed_the_limit_and_settle_to_actual_use(gateway: Server) -> None:
    key = str(create_key(gateway, name="tpm", tpm_limit=1000)["key"])
    body = {**CHAT, "max_tokens": 300}  # reserves prompt + 300 tokens each, actual use is far less
    responses = asyncio.run(_fire([gateway.base_url], key, 20, body))
    admitted = [r for r in responses if r.status_code == 200]
    assert 1 <= len(admitted) <= 3  # 3 × (prompt + 300) ≤ 1000 < 4 × …
    assert all(r.status_code in (200, 429) for r in responses)
    used = sum(r.json()["usage"]["total_tokens"] for r in admitted)
    after = httpx.post(f"{gateway.v1}/chat/completions", headers=_auth(key), json={**CHAT, "max_tokens": 1})
    assert after.status_code == 200
    remaining = int(after.headers["x-ratelimit-remaining-tokens"])
    this_request = after.json()["usage"]["total_tokens"]
    # settled to what the requests used, not what they reserved (the last one still holds its reserve
    # until it is settled, so allow its reservation rather than its use)
    assert 1000 - used - this_request - 2 * 12 <= remaining <= 1000 - used
    assert remaining > 1000 - 3 * 310  # reservations of the first requests were given back


def test_budget_is_never_overshot_by_concurrent_requests(gateway: Server) -> None:
    # 1 micro-dollar per token; each request reserves its prompt + 100 completion tokens.
    prompt_tokens = httpx.post(
        f"{gateway.v1}/chat/completions", headers=_auth(gateway.admin_key), json={**CHAT, "max_tokens": 1}
    ).json()["usage"]["prompt_tokens"]
    per_request = prompt_tokens + 100
    key = str(
        create_key(gateway, name="budget", budget_usd=10 * per_request / 1_000_000, budget_period="monthly")[
            "key"
        ]
    )
    responses = asyncio.run(_fire([gateway.base_url], key, 50, {**CHAT, "max_tokens": 100}))
    statuses = Counter(r.status_code for r in responses)
    assert statuses[200] <= 10
    assert statuses[200] + statuses[429] == 50
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.json()["error"]["code"] == "insufficient_quota"
    assert refused.json()["error"]["type"] == "insufficient_quota"
    assert refused.headers["x-should-retry"] == "false"
    usage = httpx.get(f"{gateway.base_url}/api/usage", headers=_auth(key)).json()["totals"]
    assert usage["cost_usd"] <= 10 * per_request / 1_000_000
    key_id = next(
        k["id"]
        for k in httpx.get(f"{gateway.base_url}/api/keys", headers=_auth(gateway.admin_key)).json()["data"]
        if k["name"] == "budget"
    )
    view = httpx.get(f"{gateway.base_url}/api/keys/{key_id}", headers=_auth(gateway.admin_key)).json()
    assert view["budget_usd"] == pytest.approx(10 * per_request / 1_000_000)
    assert view["status"]["budget_usd_remaining"] >= 0


def test_token_quota_refuses_with_insufficient_quota(gateway: Server) -> None:
    key = str(create_key(gateway, name="quota", token_quota=50, budget_period="daily")["key"])
    client = openai.OpenAI(base_url=gateway.v1, api_key=key, max_retries=2)
    client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=10)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=100)
    assert caught.value.code == "insufficient_quota"


def test_patch_changes_limits_and_the_sdk_retries_until_capacity_returns(
    gateway: Server, tmp_path: Path
) -> None:
    created = create_key(gateway, name="patchable")
    key, key_id = str(created["key"]), str(created["id"])
    admin = _auth(gateway.admin_key)
    r = httpx.patch(
        f"{gateway.base_url}/api/keys/{key_id}", headers=admin, json={"max_concurrency": 1, "rpm_limit": 50}
    )
    assert r.status_code == 200
    assert (r.json()["max_concurrency"], r.json()["rpm_limit"]) == (1, 50)
    assert (
        httpx.patch(
            f"{gateway.base_url}/api/keys/{key_id}", headers=admin, json={"rpm_limit": -1}
        ).status_code
        == 400
    )
    assert (
        httpx.patch(
            f"{gateway.base_url}/api/keys/{key_id}", headers=_auth(key), json={"rpm_limit": 9}
        ).status_code
        == 403
    )
    # a slow request holds the only slot; the SDK's own retry (Retry-After: 1) gets in after it
    slow = make_server(
        tmp_path,
        env={"GPUCLOUD_LOCAL_WORKER__TOKENS_PER_S": "20", "GPUCLOUD_LOCAL_WORKER__NATURAL_END": "false"},
    )
    slow.start()
    try:
        slow_key = str(create_key(slow, name="one-at-a-time", max_concurrency=1)["key"])
        patient = openai.AsyncOpenAI(base_url=slow.v1, api_key=slow_key, max_retries=3)

        async def both() -> list[object]:
            first = asyncio.create_task(
                patient.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=10)
            )
            await asyncio.sleep(0.2)
            second = patient.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=2)
            return list(await asyncio.gather(first, second))

        started = time.monotonic()
        results = asyncio.run(both())
        assert len(results) == 2
        assert time.monotonic() - started < 10
    finally:
        slow.stop()


@pytest.mark.redis
def test_three_gateways_share_one_limit(tmp_path: Path) -> None:
    database_url = create_pg_database()
    first = make_server(
        tmp_path / "g0", database_url=database_url, redis_url=REDIS_URL, extra_args=["--local-worker"]
    )
    first.start()
    gateways = [first]
    try:
        for i in (1, 2):
            other = make_server(
                tmp_path / f"g{i}",
                database_url=database_url,
                redis_url=REDIS_URL,
                extra_args=["--local-worker"],
            )
            other.env = {**first.env}  # same Redis prefix, same admin key
            other.admin_key = first.admin_key
            other.start()
            gateways.append(other)
        key = str(create_key(first, name="shared", rpm_limit=100)["key"])
        responses = asyncio.run(_fire([g.base_url for g in gateways], key, 300))
        assert Counter(r.status_code for r in responses) == {200: 100, 429: 200}
        per_gateway = Counter(str(r.url).split("/v1")[0] for r in responses if r.status_code == 200)
        assert len(per_gateway) >= 2  # the 100 were spread over the replicas, not 100 on each
    finally:
        for g in gateways:
            g.stop()
        drop_pg_database(database_url)
