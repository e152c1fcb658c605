"""A large batch end to end: `--lines` requests (chat and embeddings alternating) through the Batch
API on an embedded server with the zero-delay simulated engine; how long it takes, and a check that
every line is answered once, run by one job and billed once.

    python bench/batch_scale.py [--lines 10000]
"""

from __future__ import annotations

import argparse
import io
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import openai

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.batch_support import mixed_input  # noqa: E402 - the repository's own harness
from tests.support import make_server  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=10_000)
    args = parser.parse_args()
    env = {"GPUCLOUD_LOG_LEVEL": "WARNING", "GPUCLOUD_BATCHES__EVERY_S": "0.2"}
    with tempfile.TemporaryDirectory() as tmp:
        srv = make_server(Path(tmp), env=env)
        srv.start()
        try:
            client = openai.OpenAI(base_url=srv.v1, api_key=srv.admin_key, max_retries=0, timeout=120)
            batch_input = mixed_input(args.lines)
            started = time.monotonic()
            uploaded = client.files.create(file=("in.jsonl", io.BytesIO(batch_input.data())), purpose="batch")
            uploaded_s = time.monotonic() - started
            batch = client.batches.create(
                input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
            )
            while batch.status not in ("completed", "failed", "expired", "cancelled"):
                time.sleep(1.0)
                batch = client.batches.retrieve(batch.id)
            total_s = time.monotonic() - started
            output = client.files.content(batch.output_file_id or "").text.splitlines()
            ids = [json.loads(line)["custom_id"] for line in output]
            with sqlite3.connect(Path(tmp) / "data" / "gpucloud.db") as db:
                jobs, billed = db.execute(
                    "SELECT count(DISTINCT j.id), count(u.id) FROM jobs j LEFT JOIN usage_records u "
                    "ON u.job_id = j.id WHERE j.idempotency_key LIKE ?",
                    (f"batch:{batch.id}:%",),
                ).fetchone()
        finally:
            srv.stop()
    print(f"lines: {args.lines}  status: {batch.status}  counts: {batch.request_counts}")
    rate = args.lines / total_s
    print(f"upload: {uploaded_s:.1f} s   upload to completed: {total_s:.1f} s   {rate:.0f} lines/s")
    print(f"answered once: {len(ids) == len(set(ids)) == args.lines}   jobs: {jobs}   usage rows: {billed}")


if __name__ == "__main__":
    main()
