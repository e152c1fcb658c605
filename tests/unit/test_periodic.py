"""`periodic`: rounds come one after another, and a round that fails — the queue or the database
unreachable, or any fault — is logged without ending the loop."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy.exc import OperationalError

from gpucloud.periodic import periodic
from gpucloud.queue.protocol import QueueError


async def test_failed_rounds_are_logged_and_the_next_round_comes(caplog: pytest.LogCaptureFixture) -> None:
    failures: list[BaseException] = [
        QueueError("redis down"),
        OperationalError("SELECT 1", {}, Exception("db down")),
        ValueError("bad row"),
    ]
    rounds = 0
    done = asyncio.Event()

    async def step() -> None:
        nonlocal rounds
        rounds += 1
        if failures:
            raise failures.pop(0)
        done.set()

    loop = periodic("test rounds", step, 0.001)
    with caplog.at_level(logging.WARNING, logger="gpucloud.periodic"):
        loop.start()
        await asyncio.wait_for(done.wait(), 5)
        await loop.close()
    assert rounds >= 4
    messages = [record.getMessage() for record in caplog.records]
    assert "test rounds: queue unavailable: redis down" in messages
    assert "test rounds: database unavailable: OperationalError" in messages
    assert "test rounds: round failed" in messages


async def test_closing_stops_the_rounds() -> None:
    rounds = 0

    async def step() -> None:
        nonlocal rounds
        rounds += 1

    loop = periodic("test rounds", step, 0.001)
    loop.start()
    await asyncio.sleep(0.05)
    await loop.close()
    after_close = rounds
    await asyncio.sleep(0.05)
    assert rounds == after_close > 0
