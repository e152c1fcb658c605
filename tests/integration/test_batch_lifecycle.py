"""A batch's end other than completion, on a server whose engine is slow (each answer takes about a
second) so that a batch is still running when the test acts: cancel (lines not yet run end as
`batch_cancelled`, no job of the batch is left on the queue) and expiry after the completion window
(shortened by settings: unanswered lines end as `batch_expired`, what finished is in the output).
Each end is announced to the key's webhook receiver (a real server on loopback) as
`batch.cancelled` or `batch.expired`, signed per Standard Webhooks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openai.types import Batch

from tests.batch_support import db_rows, mixed_input, read_jsonl, start_batch, wait_for_batch
from tests.conftest import create_key
from tests.support import Server, make_server
from tests.webhook_support import Receiver, receiver, register, verify

WINDOW_S = 8


@pytest.fixture(scope="module")
def slow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {
        "GPUCLOUD_LOCAL_WORKER__TOKENS_PER_S": "20",
        "GPUCLOUD_LOCAL_WORKER__NATURAL_END": "false",  # every answer runs to max_tokens: ~1 s
        "GPUCLOUD_BATCHES__IN_FLIGHT": "2",
        "GPUCLOUD_BATCHES__EVERY_S": "0.2",
        "GPUCLOUD_BATCHES__WINDOW_S": str(WINDOW_S),
        "GPUCLOUD_WEBHOOKS__ALLOW_NETWORKS": '["127.0.0.1/32"]',  # the loopback receiver's address
        "GPUCLOUD_WEBHOOKS__EVERY_S": "0.2",
    }
    srv = make_server(tmp_path_factory.mktemp("slow-batches"), env=env)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def hooks() -> Iterator[Receiver]:
    with receiver() as r:
        yield r


def _announced(hooks: Receiver, hook: dict[str, Any], ended: Batch) -> None:
    """The receiver got the batch's end once, signed with the endpoint's secret, with its counts."""
    [request] = hooks.wait("/batches", 1, timeout_s=60)
    payload = verify(hook["secret"], request)
    assert payload["type"] == f"batch.{ended.status}"
    data = payload["data"]
    assert (data["id"], data["status"]) == (ended.id, ended.status)
    assert (data["output_file_id"], data["error_file_id"]) == (ended.output_file_id, ended.error_file_id)
    assert ended.request_counts is not None
    assert data["request_counts"] == ended.request_counts.model_dump()


def test_cancel_ends_queued_lines_and_keeps_finished_ones(slow: Server, hooks: Receiver) -> None:
    key = str(create_key(slow)["key"])
    hook = register(slow, key, hooks.url("/batches"), ["batch.cancelled", "batch.expired", "batch.completed"])
    client = openai.OpenAI(base_url=slow.v1, api_key=key, max_retries=0)
    batch_input = mixed_input(40, max_tokens=20)
    batch = start_batch(client, batch_input)
    running = wait_for_batch(client, batch.id, ("in_progress",), timeout_s=10)
    assert running.request_counts is not None
    jobs = db_rows(slow, "SELECT count(*) FROM jobs WHERE idempotency_key LIKE ?", f"batch:{batch.id}:%")
    assert jobs[0][0] <= 2 + 1  # fed gradually: never the whole batch on the queue
    cancelling = client.batches.cancel(batch.id)
    assert cancelling.status in ("cancelling", "cancelled")
    assert cancelling.cancelling_at is not None
    ended = wait_for_batch(client, batch.id, timeout_s=30)
    assert ended.status == "cancelled"
    assert ended.cancelled_at is not None
    counts = ended.request_counts
    assert counts is not None
    assert counts.total == 40
    assert counts.completed + counts.failed == 40
    assert counts.failed > 20  # most lines never ran
    output = read_jsonl(client, ended.output_file_id)
    errors = read_jsonl(client, ended.error_file_id)
    assert len(output) == counts.completed
    assert {e["custom_id"] for e in errors} | {o["custom_id"] for o in output} == batch_input.custom_ids
    assert any(e["error"] and e["error"]["code"] == "batch_cancelled" for e in errors)
    active = db_rows(
        slow,
        "SELECT count(*) FROM jobs WHERE idempotency_key LIKE ? AND status IN ('queued', 'running')",
        f"batch:{batch.id}:%",
    )
    assert active[0][0] == 0
    with pytest.raises(openai.ConflictError):
        client.batches.cancel(batch.id)
    _announced(hooks, hook, ended)


def test_expiry_after_the_window_answers_the_rest_as_expired(slow: Server, hooks: Receiver) -> None:
    key = str(create_key(slow)["key"])
    hook = register(slow, key, hooks.url("/batches"), ["batch.cancelled", "batch.expired", "batch.completed"])
    client = openai.OpenAI(base_url=slow.v1, api_key=key, max_retries=0)
    batch_input = mixed_input(60, max_tokens=20)  # ~1 s per chat line, 2 at a time: far past 8 s
    batch = start_batch(client, batch_input)
    assert batch.expires_at is not None
    assert batch.expires_at - batch.created_at == WINDOW_S
    ended = wait_for_batch(client, batch.id, timeout_s=60)
    assert ended.status == "expired"
    assert ended.expired_at is not None
    assert ended.expired_at >= batch.expires_at
    counts = ended.request_counts
    assert counts is not None
    assert counts.completed > 0
    assert counts.completed + counts.failed == 60
    output = read_jsonl(client, ended.output_file_id)
    errors = read_jsonl(client, ended.error_file_id)
    assert all(o["response"]["status_code"] == 200 for o in output)
    assert {e["error"]["code"] for e in errors} == {"batch_expired"}
    assert len(output) + len(errors) == 60
    assert {e["custom_id"] for e in errors} | {o["custom_id"] for o in output} == batch_input.custom_ids
    _announced(hooks, hook, ended)
