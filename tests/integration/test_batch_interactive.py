"""Interactive traffic while a large batch runs (embedded mode, a simulated engine of fixed
capacity: 8 slots, each answer about 90 ms). The batch's 2,000 lines are queued at `low` priority
and fed gradually; interactive requests at `normal` priority go on meanwhile. Checked from the job
rows the server wrote, not from a stopwatch in the test:
- the batch never held more than its share (`max_share`) of the slots at once, and it was using
  that share while the interactive requests ran (so they met a busy server);
- every interactive request was answered, and it waited for a slot far less than an answer takes
  (its median queue wait is under half the batch lines' median time on a slot; FIFO behind the
  batch would wait whole answers). The exact latency figures come from `bench/batch_interference.py`.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import openai
import pytest

from tests.batch_support import db_rows, wait_for_batch
from tests.conftest import create_key
from tests.support import Server, make_server

MODEL = "paced-sim"
SLOTS = 8
SHARE = 0.75
BODY: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": "hello"}], "max_tokens": 16}


@pytest.fixture(scope="module")
def paced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {
        "GPUCLOUD_LOCAL_WORKER__MODELS": f'["{MODEL}"]',
        "GPUCLOUD_LOCAL_WORKER__SLOTS": str(SLOTS),
        "GPUCLOUD_LOCAL_WORKER__TTFT_MS": "50",
        "GPUCLOUD_LOCAL_WORKER__TOKENS_PER_S": "400",
        "GPUCLOUD_LOCAL_WORKER__NATURAL_END": "false",  # every answer is 16 tokens: about 90 ms
        "GPUCLOUD_BATCHES__EVERY_S": "0.1",
        "GPUCLOUD_BATCHES__MAX_SHARE": str(SHARE),
    }
    srv = make_server(tmp_path_factory.mktemp("paced"), env=env)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def _time(value: Any) -> float:
    return (value if isinstance(value, datetime) else datetime.fromisoformat(str(value))).timestamp()


def most_at_once(spans: list[tuple[float, float]]) -> int:
    """The most spans open at one instant (a span's end comes before another's start at a tie)."""
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    open_now = peak = 0
    for _, step in edges:
        open_now += step
        peak = max(peak, open_now)
    return peak


def test_interactive_requests_keep_their_slots_while_a_large_batch_runs(paced: Server) -> None:
    batch_key = str(create_key(paced, name="batch owner")["key"])
    user_key = str(create_key(paced, name="interactive user")["key"])
    batcher = openai.OpenAI(base_url=paced.v1, api_key=batch_key, max_retries=0)
    user = openai.OpenAI(base_url=paced.v1, api_key=user_key, max_retries=0, timeout=60)
    lines = [
        {"custom_id": f"b{i}", "method": "POST", "url": "/v1/chat/completions", "body": BODY}
        for i in range(2000)
    ]
    data = "\n".join(json.dumps(line) for line in lines).encode()
    uploaded = batcher.files.create(file=("big.jsonl", data), purpose="batch")
    batch = batcher.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    deadline = time.monotonic() + 60
    while completed(batcher, batch.id) < 3 * SLOTS:
        assert time.monotonic() < deadline, "the batch never got going"
        time.sleep(0.1)
    for _ in range(30):  # interactive requests, one after another, while the batch keeps its share busy
        answer = user.chat.completions.create(**BODY)
        assert answer.choices[0].message.content
    batcher.batches.cancel(batch.id)
    ended = wait_for_batch(batcher, batch.id)
    assert ended.request_counts is not None
    assert ended.request_counts.completed < 2000  # it was still running when the requests ended

    rows = db_rows(
        paced,
        "SELECT j.created_at, j.started_at, j.finished_at, k.name FROM jobs j "
        "JOIN api_keys k ON k.id = j.key_id WHERE j.status = 'completed' "
        "AND k.name IN ('batch owner', 'interactive user')",
    )
    batch_spans = [(_time(s), _time(f)) for _, s, f, name in rows if name == "batch owner"]
    interactive = [(_time(c), _time(s)) for c, s, _, name in rows if name == "interactive user"]
    assert len(interactive) == 30
    assert most_at_once(batch_spans) <= int(SHARE * SLOTS)
    first, last = min(c for c, _ in interactive), max(s for _, s in interactive)
    during = [span for span in batch_spans if span[0] < last and span[1] > first]
    assert most_at_once(during) >= SLOTS // 2, "the batch did not keep the server busy meanwhile"
    waits = [started - created for created, started in interactive]
    on_slot = [end - start for start, end in batch_spans]
    assert statistics.median(waits) < statistics.median(on_slot) / 2, (waits, statistics.median(on_slot))


def completed(client: openai.OpenAI, batch_id: str) -> int:
    counts = client.batches.retrieve(batch_id).request_counts
    return counts.completed if counts is not None else 0
