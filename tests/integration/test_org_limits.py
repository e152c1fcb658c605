"""Organisation limits are enforced exactly across all the organisation's keys and all gateways:
two `gpucloud serve` processes on one PostgreSQL database and one Redis, an organisation whose
budget covers 10 requests, 50 concurrent requests over 3 of its keys (which have no limits of
their own) on both gateways → at most 10 admitted, the rest refused with `insufficient_quota`,
and what was billed stays within the budget."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.conftest import MODEL, create_key
from tests.integration.accounts_support import auth
from tests.support import REDIS_URL, Server, create_pg_database, drop_pg_database, free_port, make_server

MAX_TOKENS = 10
PRICE = {"input_per_million": 0.0, "output_per_million": 1000.0}  # 1000 micro-dollars a token
COST_MICROS = MAX_TOKENS * 1000  # every answer runs to max_tokens (natural_end off)
BUDGET_USD = 10 * COST_MICROS / 1_000_000  # covers exactly 10 requests


@pytest.fixture
def gateways(tmp_path: Path) -> Iterator[list[Server]]:
    database_url = create_pg_database()
    env = {
        "GPUCLOUD_DEFAULT_PRICE": json.dumps(PRICE),
        "GPUCLOUD_LOCAL_WORKER__ENABLED": "true",
        "GPUCLOUD_LOCAL_WORKER__NATURAL_END": "false",
        "GPUCLOUD_LOCAL_WORKER__TTFT_MS": "50",
    }
    first = make_server(tmp_path / "a", database_url=database_url, redis_url=REDIS_URL, env=env)
    second = Server(
        base_url=f"http://127.0.0.1:{free_port()}",
        admin_key=first.admin_key,
        data_dir=tmp_path / "b" / "data",
        log_path=tmp_path / "b.log",
        env=dict(first.env),  # the same database, Redis prefix and admin key
    )
    servers = [first, second]
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.stop()
        drop_pg_database(database_url)


async def _ask(server: Server, key: str) -> str:
    client = openai.AsyncOpenAI(base_url=server.v1, api_key=key, max_retries=0, timeout=60)
    try:
        await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=MAX_TOKENS
        )
        return "admitted"
    except openai.RateLimitError as exc:
        return str(exc.code)
    finally:
        await client.close()


def test_org_budget_holds_across_keys_and_gateways(gateways: list[Server]) -> None:
    first, second = gateways
    admin = auth(first.admin_key)
    org = httpx.post(
        f"{first.base_url}/api/orgs", json={"name": "budgeted"}, headers=admin, timeout=10
    ).json()
    limits = httpx.patch(
        f"{first.base_url}/api/orgs/{org['id']}", json={"budget_usd": BUDGET_USD}, headers=admin, timeout=10
    )
    assert limits.status_code == 200, limits.text
    assert limits.json()["budget_usd"] == BUDGET_USD
    keys = [str(create_key(first, org_id=org["id"])["key"]) for _ in range(3)]

    async def burst() -> list[str]:
        calls = [_ask(gateways[i % 2], keys[i % 3]) for i in range(50)]
        return await asyncio.gather(*calls)

    outcomes = asyncio.run(burst())
    admitted = outcomes.count("admitted")
    assert admitted == 10, outcomes  # the budget covers exactly 10, reserved at their exact cost
    assert outcomes.count("insufficient_quota") == 50 - admitted, outcomes
    usage = httpx.get(
        f"{second.base_url}/api/usage",
        params={"org_id": org["id"], "group_by": "org"},
        headers=admin,
        timeout=10,
    ).json()
    assert "totals" in usage, usage
    assert usage["totals"]["requests"] == admitted
    assert usage["totals"]["cost_usd"] <= BUDGET_USD
