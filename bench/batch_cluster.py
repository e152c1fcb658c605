"""The Batch API at scale in cluster mode, with everything the platform promises checked in one run.

PostgreSQL, Redis, object storage on a real S3-compatible server (moto), one gateway and one separate
`gpucloud worker` whose simulated engine has a fixed capacity (`--slots` answers at once,
`--ttft-ms` then `--tokens-per-s`). A `--lines` batch (chat, Responses API and embeddings
requests) runs while interactive chat completions go on at `normal` priority. Reported:
- the batch's time and rate;
- every line answered exactly once (output custom_ids), one job per line, one ledger row per line,
  each at the batch price;
- the input, output and error files in the S3 bucket;
- the signed `batch.completed` webhook, received and verified (Standard Webhooks);
- interactive p50/p99 on the idle cluster, then while the batch runs, and their ratio.

    python bench/batch_cluster.py [--lines 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import openai
from standardwebhooks.webhooks import Webhook

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# The repository's own harness: servers, workers, moto, the webhook receiver.
from tests.batch_support import PRICES_ENV, batch_cost, db_rows, mixed_input  # noqa: E402
from tests.conftest import MODEL  # noqa: E402
from tests.s3_support import moto_server  # noqa: E402
from tests.support import REDIS_URL, Server, create_pg_database, drop_pg_database, make_server  # noqa: E402
from tests.webhook_support import receiver  # noqa: E402

from bench.common import interactive, report  # noqa: E402


def run_batch(client: openai.OpenAI, lines: int, finished: threading.Event, out: dict[str, Any]) -> None:
    """Upload, create and wait for the batch (in a thread, while the interactive load runs)."""
    try:
        batch_input = mixed_input(lines)
        started = time.monotonic()
        uploaded = client.files.create(file=("in.jsonl", io.BytesIO(batch_input.data())), purpose="batch")
        batch = client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        while batch.status not in ("completed", "failed", "expired", "cancelled"):
            time.sleep(1.0)
            batch = client.batches.retrieve(batch.id)
        out.update(batch=batch, seconds=time.monotonic() - started, custom_ids=batch_input.custom_ids)
    finally:
        finished.set()


def read_lines(client: openai.OpenAI, file_id: str | None) -> list[str]:
    return client.files.content(file_id).text.splitlines() if file_id else []


def check_ledger(srv: Server, batch_id: str) -> tuple[int, int, int]:
    """(jobs, usage rows, rows not at the batch price) of the batch's lines."""
    jobs = db_rows(srv, "SELECT count(*) FROM jobs WHERE idempotency_key LIKE ?", f"batch:{batch_id}:%")[0][0]
    usage = db_rows(
        srv,
        "SELECT u.prompt_tokens, u.completion_tokens, u.cost_micros FROM usage_records u "
        "JOIN jobs j ON j.id = u.job_id WHERE j.idempotency_key LIKE ? AND u.status = 'completed'",
        f"batch:{batch_id}:%",
    )
    mispriced = sum(1 for prompt, completion, cost in usage if cost != batch_cost(prompt, completion))
    return int(jobs), len(usage), mispriced


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--slots", type=int, default=64)
    parser.add_argument("--ttft-ms", type=float, default=20.0)
    parser.add_argument("--tokens-per-s", type=float, default=1000.0)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()
    env = {
        **PRICES_ENV,
        "GPUCLOUD_LOG_LEVEL": "WARNING",
        "GPUCLOUD_BATCHES__EVERY_S": "0.2",
        "GPUCLOUD_WEBHOOKS__ALLOW_NETWORKS": '["127.0.0.1/32"]',
        "GPUCLOUD_WEBHOOKS__EVERY_S": "0.5",
    }
    with tempfile.TemporaryDirectory() as tmp, moto_server(Path(tmp)) as s3, receiver() as hooks:
        bucket = s3.create_bucket()
        database_url = create_pg_database()
        srv = make_server(
            Path(tmp), database_url=database_url, redis_url=REDIS_URL, env={**env, **s3.env(bucket)}
        )
        srv.start()
        try:
            srv.add_worker(
                "--model", MODEL, "--slots", str(args.slots),
                "--engine-option", f"ttft_ms={args.ttft_ms}",
                "--engine-option", f"tokens_per_s={args.tokens_per_s}",
            )  # fmt: skip
            srv.wait_for_model(MODEL)
            admin = {"Authorization": f"Bearer {srv.admin_key}"}
            hook = httpx.post(
                f"{srv.base_url}/api/webhooks",
                headers=admin,
                json={"url": hooks.url("/hook"), "events": ["batch.completed"]},
                timeout=10,
            ).json()

            def load(stop: threading.Event | float) -> list[float]:
                return asyncio.run(interactive(srv.v1, srv.admin_key, MODEL, stop, args.concurrency))

            load(2.0)  # warm-up
            idle = report("idle", load(args.idle_seconds))["p50_ms"]

            client = openai.OpenAI(base_url=srv.v1, api_key=srv.admin_key, max_retries=2, timeout=120)
            finished, out = threading.Event(), dict[str, Any]()
            thread = threading.Thread(target=run_batch, args=(client, args.lines, finished, out))
            thread.start()
            busy = report("during the batch", load(finished))["p50_ms"]
            thread.join()
            batch = out["batch"]
            output = read_lines(client, batch.output_file_id)
            errors = (
                client.files.content(batch.error_file_id).text.splitlines() if batch.error_file_id else []
            )
            ids = [json.loads(line)["custom_id"] for line in output + errors]
            jobs, billed, mispriced = check_ledger(srv, batch.id)
            stored = set(s3.keys(bucket))
            in_s3 = all(f"gc/files/{f}" in stored for f in (batch.input_file_id, batch.output_file_id))
            delivered = hooks.wait("/hook", 1, timeout_s=120)[0]
            event = Webhook(hook["secret"]).verify(delivered.body, delivered.headers)
        finally:
            srv.stop()
            drop_pg_database(database_url)
    print(f"p50 ratio during/idle: {busy / idle:.2f}")
    print(f"lines: {args.lines}  status: {batch.status}  counts: {batch.request_counts}")
    print(f"upload to completed: {out['seconds']:.1f} s   {args.lines / out['seconds']:.0f} lines/s")
    once = len(ids) == len(set(ids)) == args.lines and set(ids) == out["custom_ids"]
    print(
        f"answered once: {once}   jobs: {jobs}   usage rows: {billed}   not at the batch price: {mispriced}"
    )
    print(f"files in S3: {in_s3}   webhook verified: {event['type']} for {event['data']['id'] == batch.id}")


if __name__ == "__main__":
    main()
