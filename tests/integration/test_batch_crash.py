"""A batch survives a SIGKILL of its worker and of the gateway that feeds it (cluster mode:
PostgreSQL, Redis, files in S3 on moto_server): another gateway takes the feeder's lease, reads the
batch's progress from the database, and the batch completes with every line answered once, run by
one job, and billed once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import openai

from tests.batch_support import PRICES_ENV, db_rows, mixed_input, read_jsonl, start_batch, wait_for_batch
from tests.conftest import MODEL
from tests.integration.cluster_support import (
    ClusterFactory,
    cluster_factory_fixture,  # noqa: F401 — the fixture `cluster_factory`
    kill,
)
from tests.s3_support import moto_server

LINES = 300
SLOW = ("tokens_per_s=100", "natural_end=false")  # a chat line takes about 0.2 s


async def _wait_completed(client: openai.OpenAI, batch_id: str, at_least: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        counts = (await asyncio.to_thread(client.batches.retrieve, batch_id)).request_counts
        if counts is not None and counts.completed >= at_least:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the batch made no progress")


async def test_sigkill_of_worker_and_feeding_gateway_mid_batch(
    cluster_factory: ClusterFactory, tmp_path: Path
) -> None:
    with moto_server(tmp_path) as s3:
        env = {**s3.env(s3.create_bucket()), **PRICES_ENV}
        env.update({"GPUCLOUD_BATCHES__EVERY_S": "0.2", "GPUCLOUD_BATCHES__IN_FLIGHT": "16"})
        cluster = await cluster_factory(env)  # gateway A: up first, it takes the feeder's lease
        first = cluster.worker(MODEL, *SLOW, worker_id="w1", slots=8)
        survivor = cluster.add_gateway("b")
        survivor.wait_for_model(MODEL)
        client = openai.OpenAI(base_url=survivor.v1, api_key=survivor.admin_key, max_retries=0)
        batch_input = mixed_input(LINES)
        batch = await asyncio.to_thread(start_batch, client, batch_input)
        await _wait_completed(client, batch.id, 40)

        kill(first)
        assert cluster.server.process is not None
        cluster.server.process.kill()  # the gateway feeding the batch
        cluster.server.process.wait()
        cluster.worker(MODEL, *SLOW, worker_id="w2", slots=8)

        ended = await asyncio.to_thread(wait_for_batch, client, batch.id, timeout_s=180)
        assert ended.status == "completed", ended
        assert ended.request_counts is not None
        assert (ended.request_counts.total, ended.request_counts.completed) == (LINES, LINES)
        output = await asyncio.to_thread(read_jsonl, client, ended.output_file_id)
        ids = [line["custom_id"] for line in output]
        assert sorted(ids) == sorted(batch_input.custom_ids)  # every line, once
        assert ended.error_file_id is None

    pattern = f"batch:{batch.id}:%"
    jobs = await asyncio.to_thread(
        db_rows,
        survivor,
        "SELECT idempotency_key, status, reply_to FROM jobs WHERE idempotency_key LIKE ?",
        pattern,
    )
    assert len(jobs) == LINES  # one job per line, never a second one for a line
    assert {status for _, status, _ in jobs} == {"completed"}
    assert len({reply_to for _, _, reply_to in jobs}) == 2  # fed by the killed gateway, then the other
    usage = await asyncio.to_thread(
        db_rows,
        survivor,
        "SELECT count(*), count(DISTINCT u.job_id) FROM usage_records u JOIN jobs j ON j.id = u.job_id "
        "WHERE j.idempotency_key LIKE ?",
        pattern,
    )
    assert usage == [(LINES, LINES)]  # billed once each
