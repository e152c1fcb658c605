"""Jobs survive the loss of the queue's state: an embedded server killed mid-work and restarted,
a Redis that lost its data, and a gateway that died between a job's row and the queue (its
idempotent repeat queues it). The database still holds them, so they are enqueued again and
finish exactly once."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.batch_support import db_rows
from tests.conftest import MODEL, create_key
from tests.support import REDIS_URL, Server, create_pg_database, drop_pg_database, make_server


def _submit(server: Server, key: str, n: int, max_tokens: int) -> list[str]:
    ids = []
    for i in range(n):
        r = httpx.post(
            f"{server.v1}/jobs",
            headers={"Authorization": f"Bearer {key}"},
            json={"endpoint": "completions", "model": MODEL, "prompt": f"job {i}", "max_tokens": max_tokens},
            timeout=30,
        )
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
    return ids


def _views(server: Server, key: str, ids: list[str]) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {key}"}
    return [httpx.get(f"{server.v1}/jobs/{i}", headers=headers, timeout=30).json() for i in ids]


def _wait_views(
    server: Server, key: str, ids: list[str], until: Callable[[list[dict[str, Any]]], bool], timeout_s: float
) -> list[dict[str, Any]]:
    """The jobs' views once `until` holds for them (or the timeout passed: the last ones)."""
    deadline = time.monotonic() + timeout_s
    while True:
        views = _views(server, key, ids)
        if until(views) or time.monotonic() > deadline:
            return views
        time.sleep(0.1)


def _wait_all(server: Server, key: str, ids: list[str], timeout_s: float) -> list[dict[str, Any]]:
    return _wait_views(
        server, key, ids, lambda views: all(v["status"] == "completed" for v in views), timeout_s
    )


# 3 s per job at 40 tokens/s: long enough that the first two are still running when the kill
# comes, even on a machine slow to take the five submissions.
TOKENS = 120


def test_embedded_restart_reruns_queued_and_running_jobs(tmp_path: Path) -> None:
    env = {
        "GPUCLOUD_LOCAL_WORKER__SLOTS": "2",
        "GPUCLOUD_LOCAL_WORKER__TOKENS_PER_S": "40",
        "GPUCLOUD_LOCAL_WORKER__NATURAL_END": "false",
    }
    server = make_server(tmp_path, env=env)
    server.start()
    key = str(create_key(server, name="survivor")["key"])
    ids = _submit(server, key, 5, max_tokens=TOKENS)  # 2 run (3 s each), 3 wait
    # As soon as the local worker has taken some.
    running = _wait_views(server, key, ids, lambda views: any(v["status"] == "running" for v in views), 20)
    assert {v["status"] for v in running} == {"running", "queued"}
    assert server.process is not None
    server.process.send_signal(signal.SIGKILL)  # no drain, no goodbye: the in-process queue is gone
    server.process.wait()
    server.start()  # same data dir, same database, a new (empty) in-process queue
    views = _wait_all(server, key, ids, timeout_s=60)
    server.stop()
    assert [v["status"] for v in views] == ["completed"] * 5
    assert any(v["attempts"] == 2 for v in views)  # the ones that were running ran again
    server.start()
    usage = httpx.get(f"{server.base_url}/api/usage", headers={"Authorization": f"Bearer {key}"}).json()
    server.stop()
    assert usage["totals"]["requests"] == 5  # one bill per job
    assert usage["totals"]["completion_tokens"] == 5 * TOKENS


@pytest.mark.redis
def test_redis_data_loss_is_reconciled(tmp_path: Path) -> None:
    database_url = create_pg_database()
    env = {"GPUCLOUD_QUEUE__RECONCILE_EVERY_S": "0.5"}  # the loss is found by the next pass
    server = make_server(tmp_path, database_url=database_url, redis_url=REDIS_URL, env=env)
    server.start()
    try:
        worker = server.add_worker("--model", MODEL, "--slots", "4")
        server.wait_for_model(MODEL)
        key = str(create_key(server, name="redis-loss")["key"])
        assert worker.process is not None
        # Frozen, the worker stays listed (the model takes requests) but runs nothing: the jobs
        # wait in Redis. A stopped worker would leave the list, and the model would answer 503.
        worker.process.send_signal(signal.SIGSTOP)
        ids = _submit(server, key, 6, max_tokens=5)
        prefix = server.env["GPUCLOUD_REDIS_PREFIX"]
        client = redis.Redis.from_url(REDIS_URL)
        queued = client.scan_iter(match=f"{{{prefix}}}:*")
        lost = [k for k in queued if b":workers" not in k and b":models" not in k]
        assert lost, "the jobs should be in Redis before the loss"
        client.delete(*lost)  # what a Redis restart without persistence does to the queue
        worker.process.kill()  # SIGKILL ends a frozen process too
        worker.process.wait()
        server.add_worker("--model", MODEL, "--slots", "4")
        views = _wait_all(server, key, ids, timeout_s=60)
        assert [v["status"] for v in views] == ["completed"] * 6
        usage = httpx.get(f"{server.base_url}/api/usage", headers={"Authorization": f"Bearer {key}"}).json()
        assert usage["totals"]["requests"] == 6
    finally:
        server.stop()
        drop_pg_database(database_url)


@pytest.mark.redis
def test_a_job_recorded_but_never_queued_runs_when_it_is_repeated(tmp_path: Path) -> None:
    """The row says queued and the queue has nothing (its gateway died in between: a batch line
    a second feeder takes over, a client retrying with its Idempotency-Key): the repeat queues it,
    once, and it runs."""
    database_url = create_pg_database()
    server = make_server(tmp_path, database_url=database_url, redis_url=REDIS_URL)
    server.start()
    try:
        frozen = server.add_worker("--model", MODEL, "--slots", "2")
        server.wait_for_model(MODEL)
        key = str(create_key(server, name="unsure")["key"])
        headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": "line-7"}
        body = {"endpoint": "completions", "model": MODEL, "prompt": "once", "max_tokens": 3}
        assert frozen.process is not None
        frozen.process.send_signal(signal.SIGSTOP)  # listed, but runs nothing
        first = httpx.post(f"{server.v1}/jobs", headers=headers, json=body, timeout=30)
        assert first.status_code == 202, first.text
        job_id = first.json()["id"]
        prefix = server.env["GPUCLOUD_REDIS_PREFIX"]
        client = redis.Redis.from_url(REDIS_URL)
        queued = [
            k for k in client.scan_iter(match=f"{{{prefix}}}:*") if b":jobs:" in k or b":submitted:" in k
        ]
        assert queued
        client.delete(*queued)  # as if the gateway had died after the row, before the queue
        frozen.process.kill()
        frozen.process.wait()
        server.add_worker("--model", MODEL, "--slots", "2")
        server.wait_for_model(MODEL)
        repeat = httpx.post(f"{server.v1}/jobs", headers=headers, json=body, timeout=30)
        assert (repeat.status_code, repeat.json()["id"]) == (202, job_id)
        again = httpx.post(f"{server.v1}/jobs", headers=headers, json=body, timeout=30)  # no second copy
        assert again.json()["id"] == job_id
        (view,) = _wait_all(server, key, [job_id], timeout_s=60)
        assert (view["status"], view["attempts"]) == ("completed", 1)
        usage = httpx.get(f"{server.base_url}/api/usage", headers={"Authorization": f"Bearer {key}"}).json()
        assert usage["totals"]["requests"] == 1
    finally:
        server.stop()
        drop_pg_database(database_url)


def test_a_job_recorded_but_never_queued_runs_without_a_repeat(tmp_path: Path) -> None:
    """As above, but nobody repeats the request (an asynchronous job without an Idempotency-Key,
    its client polling): the reconciler finds the row still queued after `stranded_after_s` and
    submits it again, once, and it runs; a job that is on the queue meanwhile is not doubled."""
    database_url = create_pg_database()
    env = {"GPUCLOUD_QUEUE__STRANDED_AFTER_S": "1", "GPUCLOUD_QUEUE__RECONCILE_EVERY_S": "0.5"}
    server = make_server(tmp_path, database_url=database_url, redis_url=REDIS_URL, env=env)
    server.start()
    try:
        frozen = server.add_worker("--model", MODEL, "--slots", "2")
        server.wait_for_model(MODEL)
        key = str(create_key(server, name="stranded")["key"])
        assert frozen.process is not None
        frozen.process.send_signal(signal.SIGSTOP)  # listed, but runs nothing
        stranded, waiting = _submit(server, key, 2, max_tokens=3)
        prefix = server.env["GPUCLOUD_REDIS_PREFIX"]
        client = redis.Redis.from_url(REDIS_URL)
        streams = [k for k in client.scan_iter(match=f"{{{prefix}}}:*") if b":jobs:" in k]
        stream = next(k for k in streams if client.type(k) == b"stream" and client.xlen(k))
        entries: list[tuple[bytes, dict[bytes, bytes]]] = client.xrange(stream)  # type: ignore[assignment]
        assert len(entries) == 2
        gone = next(entry for entry, fields in entries if stranded.encode() in b"".join(fields.values()))
        client.xdel(stream, gone)  # as if its gateway had died after the row, before the queue
        client.delete(f"{{{prefix}}}:submitted:{stranded}:0")
        # ... and written now: a pass may have looked at the row while it was still on the queue
        # (a no-op) and moved its cursor past it, which a row that was never queued does not meet.
        db_rows(server, "UPDATE jobs SET created_at = now() WHERE id = ?", stranded)
        deadline = time.monotonic() + 60
        while client.xlen(stream) < 2:  # the reconciler's pass (every 0.5 s here) puts it back
            assert time.monotonic() < deadline, "the stranded job was never queued again"
            time.sleep(0.2)
        time.sleep(2)  # several more passes: neither job is queued a second time
        assert client.xlen(stream) == 2
        # One job queued again, and said so once: passes that found it on the queue count nothing.
        assert server.logs().count("reconciler: queued 1 job(s) a lost gateway had recorded") == 1
        frozen.process.kill()
        frozen.process.wait()
        server.add_worker("--model", MODEL, "--slots", "2")
        views = _wait_all(server, key, [stranded, waiting], timeout_s=60)
        assert [(v["status"], v["attempts"]) for v in views] == [("completed", 1), ("completed", 1)]
        usage = httpx.get(f"{server.base_url}/api/usage", headers={"Authorization": f"Bearer {key}"}).json()
        assert usage["totals"]["requests"] == 2
    finally:
        server.stop()
        drop_pg_database(database_url)
