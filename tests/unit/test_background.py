"""`Background`: starting twice runs one task; closing cancels it, waits for it, and may repeat."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest

from gpucloud.background import Background, close_within


async def test_start_is_idempotent_and_close_awaits_the_cancellation() -> None:
    runs: list[str] = []
    stopped = asyncio.Event()

    async def run() -> None:
        runs.append("started")
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()

    task = Background("t", run)
    task.start()
    task.start()
    await asyncio.sleep(0)
    assert runs == ["started"]
    assert [t for t in asyncio.all_tasks() if t.get_name() == "t"]
    await task.close()
    assert stopped.is_set()  # close returned only once the task had run its cleanup
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "t"]
    await task.close()  # closing again is a no-op


async def test_a_closed_background_starts_again_and_close_before_start_is_harmless() -> None:
    count = 0

    async def run() -> None:
        nonlocal count
        count += 1

    task = Background("again", run)
    await task.close()
    task.start()
    await task.close()
    task.start()
    await asyncio.sleep(0)
    await task.close()
    assert count == 1  # the first start was cancelled before it ever ran


async def test_a_retry_loop_that_caught_its_cancellation_as_an_error_is_stopped() -> None:
    retries = 0

    async def client_call() -> None:  # as redis-py may: a cancellation mid-call becomes its error
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise ConnectionError("connection closed under use") from None

    async def retrying() -> None:
        nonlocal retries
        while True:
            try:
                await client_call()
            except ConnectionError:
                retries += 1
                await asyncio.sleep(0.5)

    task = Background("retrying", retrying)
    task.start()
    await asyncio.sleep(0)
    started = asyncio.get_running_loop().time()
    await task.close(timeout_s=5)
    assert asyncio.get_running_loop().time() - started < 1  # the second cancellation ended it
    assert retries == 1
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "retrying"]


async def test_a_task_that_swallows_every_cancellation_is_left_behind_with_where_it_is_stuck(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = asyncio.Event()

    async def stubborn() -> None:
        await wedged(release)

    async def wedged(until: asyncio.Event) -> None:
        while not until.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await until.wait()

    task = Background("stubborn", stubborn)
    task.start()
    await asyncio.sleep(0)
    started = asyncio.get_running_loop().time()
    with caplog.at_level(logging.WARNING, logger="gpucloud.background"):
        await task.close(timeout_s=0.3)
    assert asyncio.get_running_loop().time() - started < 5  # shutdown went on
    (record,) = [r for r in caplog.records if "stubborn did not stop" in r.getMessage()]
    assert "in stubborn" in record.getMessage()
    assert "in wedged" in record.getMessage()  # the stack follows the awaits to where it hangs
    release.set()  # let the test's own loop end it
    await asyncio.sleep(0.01)


async def test_a_shutdown_step_that_hangs_or_fails_does_not_stop_the_next(
    caplog: pytest.LogCaptureFixture,
) -> None:
    closed: list[str] = []

    async def hangs() -> None:
        await asyncio.Event().wait()

    async def fails() -> None:
        raise ConnectionError("gone")

    async def works() -> None:
        closed.append("works")

    with caplog.at_level(logging.WARNING, logger="gpucloud.background"):
        for name, step in (("hanging", hangs), ("failing", fails), ("working", works)):
            await close_within(name, step, 0.2)
    assert closed == ["works"]
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("shutdown: hanging did not close within") and "in hangs" in m for m in messages)
    assert "shutdown: closing failing failed" in messages
