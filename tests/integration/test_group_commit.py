"""The request path's writes under load and under a crash (embedded mode, SQLite): concurrent jobs'
rows and ledger rows commit together (group commit), every answer is billed exactly as answered,
and a gateway killed mid-batch leaves no answered request without its row, no row twice, and no
job active forever — nor re-runs a synchronous request whose client is gone."""

from __future__ import annotations

import asyncio
import random
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import openai
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import MODEL
from tests.integration.cluster_support import job_id_of, openai_client
from tests.support import Server, make_server

MESSAGES: Any = [{"role": "user", "content": "Tell me about group commit."}]


def _rows(server: Server, sql: str, *args: object) -> list[tuple[Any, ...]]:
    with sqlite3.connect(server.data_dir / "gpucloud.db") as conn:
        return list(conn.execute(sql, args))


async def _plain(client: openai.AsyncOpenAI, n: int) -> tuple[str, str, int, int]:
    answer = await client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=n)
    assert answer.usage is not None
    return "plain", job_id_of(answer.id), answer.usage.prompt_tokens, answer.usage.completion_tokens


async def _streamed(client: openai.AsyncOpenAI, n: int) -> tuple[str, str, int, int]:
    stream = await client.chat.completions.create(
        model=MODEL, messages=MESSAGES, max_tokens=n, stream=True, stream_options={"include_usage": True}
    )
    job, usage = "", None
    async for chunk in stream:
        job = job_id_of(chunk.id)
        usage = chunk.usage or usage
    assert usage is not None
    return "streamed", job, usage.prompt_tokens, usage.completion_tokens


async def _cancelled(client: openai.AsyncOpenAI, n: int) -> tuple[str, str, int, int]:
    stream = await client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=n, stream=True)
    async for chunk in stream:
        await stream.close()  # the client goes away after its first chunk
        return "cancelled", job_id_of(chunk.id), -1, -1
    raise AssertionError("no chunk")


def _batch_histogram(server: Server) -> tuple[float, float]:
    """(operations, transactions) the group-commit writer committed, from /metrics."""
    r = httpx.get(f"{server.base_url}/metrics", headers={"Authorization": f"Bearer {server.admin_key}"})
    total = count = 0.0
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            if sample.name == "gpucloud_db_write_batch_operations_sum":
                total = sample.value
            if sample.name == "gpucloud_db_write_batch_operations_count":
                count = sample.value
    return total, count


async def test_500_concurrent_mixed_requests_bill_exactly_what_was_answered(tmp_path: Path) -> None:
    env = {"GPUCLOUD_LOCAL_WORKER__TOKENS_PER_S": "400", "GPUCLOUD_LOCAL_WORKER__SLOTS": "256"}
    server = make_server(tmp_path / "gc", env=env)
    server.start()
    try:
        client = openai_client(server.v1, server.admin_key, timeout=120)
        rng = random.Random(7)
        kinds = [_plain] * 200 + [_streamed] * 200 + [_cancelled] * 100
        rng.shuffle(kinds)
        results = await asyncio.gather(*(kind(client, rng.randint(4, 24)) for kind in kinds))
        await client.close()
        assert len({job for _, job, _, _ in results}) == 500
        deadline = time.monotonic() + 15
        while _rows(server, "SELECT count(*) FROM usage_records")[0][0] < 500 and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        ledger = {
            job: (status, prompt, completion)
            for job, status, prompt, completion in _rows(
                server, "SELECT job_id, status, prompt_tokens, completion_tokens FROM usage_records"
            )
        }
        assert len(ledger) == 500  # one row per job: none missing (the job id is unique in the ledger)
        for kind, job, prompt, completion in results:
            status, billed_prompt, billed_completion = ledger[job]
            if kind == "cancelled":
                assert status in ("cancelled", "completed"), (job, status)  # it may finish first
            else:
                assert (status, billed_prompt, billed_completion) == ("completed", prompt, completion), job
        assert _rows(server, "SELECT count(*) FROM jobs WHERE status IN ('queued', 'running')") == [(0,)]
        _, transactions = _batch_histogram(server)
        # 500 jobs' rows and ledger rows in far fewer transactions: concurrent endings shared them
        assert 0 < transactions <= 250, transactions
    finally:
        server.stop()


async def _one(client: openai.AsyncOpenAI, streamed: bool) -> tuple[str, int, int] | None:
    """A request through a gateway that may be killed: (job, prompt, completion) if answered."""
    try:
        if streamed:
            _, job, prompt, completion = await _streamed(client, 40)
        else:
            _, job, prompt, completion = await _plain(client, 40)
    except (openai.APIError, httpx.HTTPError):
        return None
    return job, prompt, completion


async def test_gateway_killed_mid_batch_restarts_with_exact_ledger(tmp_path: Path) -> None:
    env = {"GPUCLOUD_LOCAL_WORKER__TOKENS_PER_S": "40", "GPUCLOUD_LOCAL_WORKER__NATURAL_END": "false"}
    server = make_server(tmp_path / "kill", env=env)
    server.start()
    client = openai_client(server.v1, server.admin_key, timeout=60)
    tasks = [asyncio.ensure_future(_one(client, streamed=i % 2 == 0)) for i in range(120)]
    await asyncio.sleep(0.1)
    tasks += [asyncio.ensure_future(_one(client, streamed=i % 2 == 0)) for i in range(60)]

    def running() -> int:
        return int(_rows(server, "SELECT count(*) FROM jobs WHERE status = 'running'")[0][0])

    deadline = time.monotonic() + 60
    while (sum(1 for t in tasks if t.done()) < 10 or running() == 0) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)  # kill once some are answered while others are recorded running
    assert server.process is not None
    server.process.send_signal(signal.SIGKILL)
    server.process.wait()
    answered = [r for r in await asyncio.gather(*tasks) if r is not None]
    await client.close()
    assert 0 < len(answered) < len(tasks)  # the kill came mid-run

    before = dict(_rows(server, "SELECT job_id, status FROM usage_records"))
    server.start()  # the same data directory: its reconciler ends what the crash left active
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if _rows(server, "SELECT count(*) FROM jobs WHERE status IN ('queued', 'running')") == [(0,)]:
                break
            await asyncio.sleep(0.2)
        assert _rows(server, "SELECT count(*) FROM jobs WHERE status IN ('queued', 'running')") == [(0,)]
        ledger = {
            job: (status, prompt, completion)
            for job, status, prompt, completion in _rows(
                server, "SELECT job_id, status, prompt_tokens, completion_tokens FROM usage_records"
            )
        }
        for job, prompt, completion in answered:  # every answer was billed exactly as answered
            assert ledger[job] == ("completed", prompt, completion), job
        jobs = _rows(server, "SELECT id, status, error_code FROM jobs")
        assert len(jobs) == len({row[0] for row in jobs})
        for job_id, status, code in jobs:
            assert job_id in ledger  # every ended job has its one ledger row
            if job_id not in before and job_id not in {a[0] for a in answered}:
                # running when the gateway died: ended as interrupted after the restart, not re-run
                assert (status, code) == ("failed", "interrupted"), job_id
                assert ledger[job_id][2] == 0
        assert any(code == "interrupted" for _, _, code in jobs)  # the kill did leave running rows
        # nothing that was in flight is re-run after the restart: no new ending but the orphans'
        await asyncio.sleep(1.5)
        completed_before = sum(1 for status in before.values() if status == "completed")
        assert _rows(server, "SELECT count(*) FROM usage_records WHERE status = 'completed'") == [
            (completed_before,)
        ]
    finally:
        server.stop()
