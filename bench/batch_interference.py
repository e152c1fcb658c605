"""Interactive latency while a large batch runs: p50/p99 of non-streamed chat completions at
`normal` priority, first on an idle server, then while a batch of `--lines` requests (each one
the same size as an interactive request) is fed through the same queue at `low` priority.

The simulated engine has a fixed capacity (`--slots` answers at once, `--ttft-ms` then
`--tokens-per-s`), so the batch keeps every slot busy: what the interactive requests lose is the
wait for a slot, not CPU. Embedded mode (SQLite, in-process queue and worker).

    python bench/batch_interference.py [--lines 2000] [--seconds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import sys
import tempfile
from pathlib import Path

import openai

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import Server, make_server  # noqa: E402 - the repository's own harness

from bench.common import chat_body, interactive, report  # noqa: E402

MODEL = "bench-sim"


def start_batch(srv: Server, lines: int) -> tuple[openai.OpenAI, str]:
    client = openai.OpenAI(base_url=srv.v1, api_key=srv.admin_key, max_retries=0)
    rows = [
        {
            "custom_id": f"b{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": chat_body(MODEL),
        }
        for i in range(lines)
    ]
    data = "\n".join(json.dumps(r) for r in rows).encode()
    uploaded = client.files.create(file=("batch.jsonl", io.BytesIO(data)), purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    return client, batch.id


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--slots", type=int, default=8)
    parser.add_argument("--ttft-ms", type=float, default=50.0)
    parser.add_argument("--tokens-per-s", type=float, default=400.0)
    args = parser.parse_args()
    env = {
        "GPUCLOUD_LOG_LEVEL": "WARNING",
        "GPUCLOUD_LOCAL_WORKER__MODELS": json.dumps([MODEL]),
        "GPUCLOUD_LOCAL_WORKER__SLOTS": str(args.slots),
        "GPUCLOUD_LOCAL_WORKER__TTFT_MS": str(args.ttft_ms),
        "GPUCLOUD_LOCAL_WORKER__TOKENS_PER_S": str(args.tokens_per_s),
        "GPUCLOUD_LOCAL_WORKER__NATURAL_END": "false",
        "GPUCLOUD_BATCHES__EVERY_S": "0.2",
    }
    with tempfile.TemporaryDirectory() as tmp:
        srv = make_server(Path(tmp), env=env)
        srv.start()
        try:

            async def load(seconds: float) -> list[float]:
                return await interactive(srv.v1, srv.admin_key, MODEL, seconds, args.concurrency)

            await load(2.0)  # warm-up
            idle = report("idle", await load(args.seconds))
            client, batch_id = start_batch(srv, args.lines)
            await asyncio.sleep(2.0)  # the feeder fills the queue
            busy = report("during batch", await load(args.seconds))
            counts = client.batches.retrieve(batch_id).request_counts
            print(f"batch lines answered during the measurement: {counts.completed if counts else 0}")
            print(f"p50 ratio during/idle: {busy['p50_ms'] / idle['p50_ms']:.2f}")
            client.batches.cancel(batch_id)
        finally:
            srv.stop()


if __name__ == "__main__":
    asyncio.run(main())
