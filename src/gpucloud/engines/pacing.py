"""`Pacer`: paces a simulated model's tokens like a GPU's (time to first token, then a rate)."""

from __future__ import annotations

import asyncio

YIELD_EVERY = 8  # with no pacing, let other tasks (and cancellation) in this often


class Pacer:
    """Paces tokens like a GPU: token i is due `ttft + i * interval` after generation started.

    Due times are absolute (not a sleep per token) so that high rates do not drift by the cost of
    each sleep.
    """

    def __init__(self, ttft_s: float, interval_s: float) -> None:
        self._ttft_s = ttft_s
        self._interval_s = interval_s
        self._loop = asyncio.get_running_loop()
        self._started = self._loop.time()

    async def wait(self, index: int) -> None:
        delay = self._started + self._ttft_s + index * self._interval_s - self._loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        elif index % YIELD_EVERY == 0:
            await asyncio.sleep(0)
