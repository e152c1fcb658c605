"""`Pacer` (engines/pacing.py): token i is due `ttft + i * interval` after the start, measured on the
event loop's clock (faked here through the loop's `time`)."""

from __future__ import annotations

import asyncio

import pytest

from gpucloud.engines import pacing
from gpucloud.engines.pacing import Pacer

# A loop of their own: the fake clock and sleep below would otherwise be the session loop's,
# where other tests' background tasks (a gateway app's worker) would spin on a sleep that
# never yields, and this test would never be resumed.
pytestmark = pytest.mark.asyncio(loop_scope="function")


class FakeTime:
    """Stands in for the running loop's clock; `asyncio.sleep` is recorded instead of slept."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []
        loop = asyncio.get_running_loop()
        monkeypatch.setattr(loop, "time", lambda: self.now)
        monkeypatch.setattr(asyncio, "sleep", self.sleep)

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        self.now += delay


async def test_due_times_are_absolute_so_slow_steps_do_not_drift(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeTime(monkeypatch)
    pacer = Pacer(ttft_s=0.5, interval_s=0.1)
    await pacer.wait(0)
    assert clock.sleeps == [pytest.approx(0.5)]
    clock.now += 0.05  # the token took some time to produce
    await pacer.wait(1)
    assert clock.sleeps[-1] == pytest.approx(0.05)  # due at 100.6, not 100.65
    clock.now += 1.0  # far behind: no sleep, the next tokens catch up
    clock.sleeps.clear()
    await pacer.wait(3)
    assert clock.sleeps == []


async def test_unpaced_tokens_still_yield_every_few_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeTime(monkeypatch)
    pacer = Pacer(ttft_s=0.0, interval_s=0.0)
    clock.now += 1
    for index in range(1, 2 * pacing.YIELD_EVERY + 1):
        await pacer.wait(index)
    assert clock.sleeps == [0, 0]
