"""Helpers for the Batch API tests: input files mixing chat and embeddings, waiting for a batch to
end, reading its output files, and reading the database (SQLite file or PostgreSQL) directly."""

from __future__ import annotations

import asyncio
import io
import json
import math
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

import asyncpg
import openai
from openai.types import Batch

from tests.conftest import MODEL
from tests.support import Server

ENDED = ("completed", "failed", "expired", "cancelled")
PRICE = {"input_per_million": 1000.0, "output_per_million": 3000.0, "batch_factor": 0.5}
PRICES_ENV = {"GPUCLOUD_PRICES": json.dumps({MODEL: PRICE})}


@dataclass(frozen=True)
class BatchInput:
    lines: list[dict[str, Any]]
    invalid: set[str]  # custom_ids that must be answered with an error

    def data(self) -> bytes:
        return ("\n".join(json.dumps(line) for line in self.lines) + "\n").encode()

    @property
    def custom_ids(self) -> set[str]:
        return {str(line["custom_id"]) for line in self.lines}


FAIL_MARKER = "engine-please-fail"  # the simulated engine's fail_marker in the cluster tests


def mixed_input(count: int, *, invalid_every: int = 0, max_tokens: int = 8, failing: int = 0) -> BatchInput:
    """`count` lines alternating chat (every other one a Responses API request) and embeddings;
    every `invalid_every`-th one invalid in a way only the model or the endpoint's own checks can
    tell (the upload accepts it); the first `failing` chat lines carry FAIL_MARKER (the engine
    refuses them while running them)."""
    lines, invalid = [], set()
    for i in range(count):
        custom_id = f"req-{i:05d}"
        bad = bool(invalid_every) and i % invalid_every == invalid_every - 1
        marker = f" {FAIL_MARKER}" if i % 2 == 0 and i < 2 * failing and not bad else ""
        if i % 4 == 2:  # a Responses API request: it runs as a chat job, answers as a response
            body: dict[str, Any] = {
                "model": MODEL,
                "input": f"line {i}{marker}",
                "max_output_tokens": max_tokens if not bad else 10**9,
            }
            url = "/v1/responses"
        elif i % 2 == 0:
            body = {
                "model": MODEL,
                "messages": [{"role": "user", "content": f"line {i}{marker}"}],
                "max_tokens": max_tokens if not bad else 10**9,
            }
            url = "/v1/chat/completions"
        else:
            body = {"model": MODEL if not bad else "no-such-model", "input": [f"text {i}", "more"]}
            url = "/v1/embeddings"
        lines.append({"custom_id": custom_id, "method": "POST", "url": url, "body": body})
        if bad or marker:
            invalid.add(custom_id)
    return BatchInput(lines, invalid)


def start_batch(client: openai.OpenAI, batch_input: BatchInput, **extra: Any) -> Batch:
    uploaded = client.files.create(file=("input.jsonl", io.BytesIO(batch_input.data())), purpose="batch")
    return client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h", **extra
    )


def wait_for_batch(
    client: openai.OpenAI, batch_id: str, statuses: tuple[str, ...] = ENDED, timeout_s: float = 120
) -> Batch:
    deadline = time.monotonic() + timeout_s
    while True:
        batch = client.batches.retrieve(batch_id)
        if batch.status in statuses:
            return batch
        if time.monotonic() > deadline:
            raise AssertionError(f"batch still {batch.status}: {batch.request_counts}")
        time.sleep(0.2)


def read_jsonl(client: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    text = client.files.content(file_id).text
    return [json.loads(line) for line in text.splitlines() if line]


def batch_cost(prompt_tokens: int, completion_tokens: int) -> int:
    full = prompt_tokens * PRICE["input_per_million"] + completion_tokens * PRICE["output_per_million"]
    return math.ceil(full * PRICE["batch_factor"])


def db_rows(server: Server, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Rows of a query on the server's database (`?` placeholders, translated for PostgreSQL)."""
    url = server.env.get("GPUCLOUD_DATABASE_URL")
    if url is None:
        with sqlite3.connect(server.data_dir / "gpucloud.db") as connection:
            return list(connection.execute(sql, args))
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    parts = sql.split("?")
    pg_sql = parts[0] + "".join(f"${i}{part}" for i, part in enumerate(parts[1:], start=1))

    async def fetch() -> list[tuple[Any, ...]]:
        connection = await asyncpg.connect(dsn)
        try:
            return [tuple(r) for r in await connection.fetch(pg_sql, *args)]
        finally:
            await connection.close()

    return asyncio.run(fetch())
