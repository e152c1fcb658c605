"""`Background`: starting twice runs one task; closing cancels it, waits for it, and may repeat."""

from __future__ import annotations

import asyncio

from gpucloud.background import Background


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
