"""The usage ledger equals what the responses reported, token for token, and SQLite copes with
200 concurrent requests (docs/architecture.md §4, issue: foundation)."""

from __future__ import annotations

import asyncio
import random
import time

import httpx
import httpx2
import openai
import pytest
from openai import AsyncStream
from openai.types import Completion
from openai.types.chat import ChatCompletionChunk, ChatCompletionStreamOptionsParam

from tests.conftest import MODEL, create_key
from tests.support import Server


async def _one(client: openai.AsyncOpenAI, rng: random.Random, i: int) -> tuple[int, int]:
    """One request of a random kind; returns the (prompt, completion) tokens its response reported."""
    max_tokens = rng.randint(1, 40)
    content = f"request {i}: " + " ".join(
        rng.choice(["alpha", "beta", "γάμμα", "日本"]) for _ in range(rng.randint(1, 30))
    )
    kind = rng.choice(["chat", "chat_stream", "completion", "completion_stream"])
    n = rng.choice([1, 1, 2])
    if kind == "chat":
        r = await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": content}], max_tokens=max_tokens, n=n
        )
        assert r.usage is not None
        return r.usage.prompt_tokens, r.usage.completion_tokens
    if kind == "completion":
        c = await client.completions.create(model=MODEL, prompt=content, max_tokens=max_tokens, n=n)
        assert c.usage is not None
        return c.usage.prompt_tokens, c.usage.completion_tokens
    opts: ChatCompletionStreamOptionsParam = {"include_usage": True}
    stream: AsyncStream[ChatCompletionChunk] | AsyncStream[Completion]
    if kind == "chat_stream":
        stream = await client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": content}],
            max_tokens=max_tokens,
            n=n,
            stream=True,
            stream_options=opts,
        )
    else:
        stream = await client.completions.create(
            model=MODEL, prompt=content, max_tokens=max_tokens, n=n, stream=True, stream_options=opts
        )
    usage = None
    async for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
    assert usage is not None
    return usage.prompt_tokens, usage.completion_tokens


async def _usage_totals(server: Server, key: str, expect_requests: int) -> dict[str, int]:
    """The ledger's totals for `key`, once it holds `expect_requests` rows (or after 10 s)."""
    deadline = time.monotonic() + 10
    async with httpx.AsyncClient(timeout=10) as http:
        while True:
            r = await http.get(f"{server.base_url}/api/usage", headers={"Authorization": f"Bearer {key}"})
            assert r.status_code == 200, r.text
            totals: dict[str, int] = r.json()["totals"]
            if totals["requests"] >= expect_requests or time.monotonic() > deadline:
                return totals
            await asyncio.sleep(0.05)


async def test_ledger_equals_reported_usage(server: Server) -> None:
    key = str(create_key(server, name="ledger")["key"])
    client = openai.AsyncOpenAI(base_url=server.v1, api_key=key, max_retries=0)
    rng = random.Random(7)
    results: list[tuple[int, int]] = []
    for wave in range(6):  # 300 requests in waves of 50 concurrent
        results += await asyncio.gather(*(_one(client, rng, wave * 50 + i) for i in range(50)))
    totals = await _usage_totals(server, key, len(results))
    assert totals["requests"] == len(results) == 300
    assert totals["prompt_tokens"] == sum(p for p, _ in results)
    assert totals["completion_tokens"] == sum(c for _, c in results)
    assert totals["total_tokens"] == totals["prompt_tokens"] + totals["completion_tokens"]
    await client.close()


async def test_200_concurrent_requests_all_succeed(server: Server) -> None:
    key = str(create_key(server, name="concurrency")["key"])
    client = openai.AsyncOpenAI(
        base_url=server.v1,
        api_key=key,
        max_retries=0,
        # The SDK's own HTTP library (httpx2) with room for every request at once.
        http_client=httpx2.AsyncClient(limits=httpx2.Limits(max_connections=250)),
    )

    async def call(i: int) -> int:
        r = await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": f"hello {i}"}], max_tokens=8
        )
        assert r.usage is not None
        return r.usage.completion_tokens

    outcomes = await asyncio.gather(*(call(i) for i in range(200)), return_exceptions=True)
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    assert errors == [], errors[:3]
    assert "database is locked" not in server.logs()
    totals = await _usage_totals(server, key, 200)
    assert totals["requests"] == 200
    assert totals["completion_tokens"] == sum(o for o in outcomes if isinstance(o, int))
    await client.close()


@pytest.mark.parametrize("stream", [False, True])
async def test_job_row_is_completed_after_response(server: Server, stream: bool) -> None:
    """The response is sent only after the finalizer has written the ledger: usage is readable at once."""
    key = str(create_key(server, name=f"read-your-writes-{stream}")["key"])
    client = openai.AsyncOpenAI(base_url=server.v1, api_key=key, max_retries=0)
    if stream:
        s = await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "x"}], max_tokens=3, stream=True
        )
        async for _ in s:
            pass
    else:
        await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "x"}], max_tokens=3
        )
    async with httpx.AsyncClient() as http:
        r = await http.get(f"{server.base_url}/api/usage", headers={"Authorization": f"Bearer {key}"})
    assert r.json()["totals"]["requests"] == 1
    await client.close()
