"""The request id of the work at hand (observability/context.py): it follows a task and the tasks
it starts, and `ContextFilter` puts it on every log record without overriding explicit ids."""

from __future__ import annotations

import asyncio
import contextvars
import logging

from gpucloud.observability.context import ContextFilter, bind_request, current_request_id


def record(**extra: object) -> logging.LogRecord:
    entry = logging.LogRecord("t", logging.INFO, __file__, 1, "message", None, None)
    entry.__dict__.update(extra)
    return entry


def ids(entry: logging.LogRecord) -> tuple[object, object]:
    return entry.__dict__["request_id"], entry.__dict__["job_id"]


def in_fresh_context() -> tuple[str | None, tuple[object, object]]:
    bind_request("req-1", "job-1")
    entry = record()
    assert ContextFilter().filter(entry)
    return current_request_id(), ids(entry)


def test_bound_ids_reach_the_log_record() -> None:
    assert contextvars.Context().run(in_fresh_context) == ("req-1", ("req-1", "job-1"))


def test_explicit_ids_on_a_record_are_kept() -> None:
    def run() -> logging.LogRecord:
        bind_request("bound", "bound-job")
        entry = record(request_id="explicit", job_id="explicit-job")
        ContextFilter().filter(entry)
        return entry

    entry = contextvars.Context().run(run)
    assert ids(entry) == ("explicit", "explicit-job")


def test_an_unbound_context_has_no_ids() -> None:
    def run() -> tuple[str | None, tuple[object, object]]:
        entry = record()
        ContextFilter().filter(entry)
        return current_request_id(), ids(entry)

    assert contextvars.Context().run(run) == (None, (None, None))


def test_rebinding_without_a_job_keeps_the_job() -> None:
    def run() -> object:
        bind_request("a", "job")
        bind_request("b")
        entry = record()
        ContextFilter().filter(entry)
        return ids(entry)

    assert contextvars.Context().run(run) == ("b", "job")


async def test_tasks_inherit_the_id_and_do_not_leak_theirs_back() -> None:
    async def outer() -> tuple[str | None, str | None]:
        bind_request("parent")

        async def child() -> str | None:
            seen = current_request_id()
            bind_request("child")
            return seen

        seen = await asyncio.create_task(child())
        return seen, current_request_id()

    assert await asyncio.create_task(outer(), context=contextvars.Context()) == ("parent", "parent")
