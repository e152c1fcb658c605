"""Quotas and money budgets per period: the `BudgetStore` contract and its in-process implementation.

A budget is a cap on what one subject may spend in one period ("tokens:2026-11",
"usd:2026-11-23"), in integer units (tokens, micro-dollars: no floats in the arithmetic). Each
request reserves its worst case at admission, so concurrent requests cannot overshoot the cap
together, and settles to the actual amount when it ends:

* `reserve` passes when `spent + reserved + amount <= cap`, and then holds `amount`;
* `settle` replaces the reservation by the actual amount (idempotent: a second settle, or one
  for an unknown id, changes nothing);
* a reservation not settled within the hold lease (`hold_ttl_s`, default 900 s) counts as spent
  in full: its gateway died, and its job may well have run;
* the counter of a (subject, period) that does not exist yet — a new period, or a store that lost
  its data — starts from `baseline()`, the amount the usage ledger says was already spent in that
  period. Initialisation has SET-NX semantics (concurrent initialisers agree on the first value
  written), and concurrent initialisers in one process share one `baseline()` call. Requests in
  flight when the data was lost are then not counted until the next baseline: the ledger
  remains the truth, the counter is the fast, atomic guard in front of it;
* the counter lives for `ttl_s` from its creation: the caller chooses it to outlast the period.

`MemoryBudgetStore` is embedded mode's implementation (complete, not a test double);
`RedisBudgetStore` (in `gpucloud.limits.redis`) keeps the same rules for cluster mode.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Protocol

from gpucloud.limits.protocol import WINDOW_S
from gpucloud.limits.validation import check_amount, check_ids

# Reads what was already spent in a period from the usage ledger (only when the counter is missing).
Baseline = Callable[[], Awaitable[int]]

# A reservation not settled within this long is counted as spent (see the module docstring).
DEFAULT_HOLD_TTL_S = 900.0


class BudgetStore(Protocol):
    """Where budget counters live; every method may raise `LimitUnavailable`."""

    async def reserve(
        self,
        subject: str,
        period: str,
        cap: int,
        amount: int,
        request_id: str,
        ttl_s: float,
        baseline: Baseline,
    ) -> tuple[bool, int]:
        """Hold `amount` if it fits under `cap`: (True, remaining after), else (False, remaining)."""
        ...

    async def settle(self, subject: str, period: str, request_id: str, actual: int) -> None:
        """Replace `request_id`'s reservation by `actual` (idempotent)."""
        ...

    async def remaining(self, subject: str, period: str, cap: int, baseline: Baseline) -> int:
        """What is left under `cap` now, reservations deducted (never below 0).

        A read: a missing counter is answered from `baseline()` and not created.
        """
        ...

    async def close(self) -> None:
        """Release the store's connections."""
        ...


def check_reserve(subject: str, period: str, cap: int, amount: int, request_id: str, ttl_s: float) -> None:
    """The argument checks both budget stores share."""
    check_ids(subject, request_id)
    check_period(period)
    check_amount("cap", cap)
    check_amount("amount", amount)
    if not ttl_s > 0:
        raise ValueError("ttl_s must be positive")


def check_period(period: str) -> None:
    if not isinstance(period, str) or not period:
        raise ValueError("period must be a non-empty string")


class BaselineLoader:
    """Shares one `baseline()` call among the concurrent initialisers of one counter in this process.

    At the start of a period every request finds the counter missing at once; without this, each
    would run its own ledger query. Cancelling one waiter does not cancel the shared call.
    """

    def __init__(self) -> None:
        self._loading: dict[Hashable, asyncio.Future[int]] = {}

    async def load(self, key: Hashable, baseline: Baseline) -> int:
        future = self._loading.get(key)
        if future is None:
            future = asyncio.ensure_future(baseline())
            self._loading[key] = future
            future.add_done_callback(lambda done: self._finished(key, done))
        value = await asyncio.shield(future)
        check_amount("baseline", value)
        return value

    def _finished(self, key: Hashable, future: asyncio.Future[int]) -> None:
        if self._loading.get(key) is future:
            del self._loading[key]
        if not future.cancelled():
            # Marks the error as seen when every waiter was cancelled (no "never retrieved" noise).
            future.exception()


@dataclass
class _Counter:
    """One (subject, period) budget."""

    spent: int
    expires_at: float  # the counter's own lifetime (`ttl_s`)
    reserved: int = 0
    holds: dict[str, tuple[int, float]] = field(default_factory=dict)  # request id → (amount, expiry)

    def expire_holds(self, now: float) -> None:
        for request_id, (amount, expiry) in list(self.holds.items()):
            if expiry <= now:
                del self.holds[request_id]
                self.reserved -= amount
                self.spent += amount

    def left(self, cap: int) -> int:
        return cap - self.spent - self.reserved


class MemoryBudgetStore:
    """Budget counters in this process (embedded mode); see the module docstring."""

    def __init__(
        self, *, hold_ttl_s: float = DEFAULT_HOLD_TTL_S, clock: Callable[[], float] = time.time
    ) -> None:
        if hold_ttl_s <= 0:
            raise ValueError("hold_ttl_s must be positive")
        self._hold_ttl_s = hold_ttl_s
        self._clock = clock
        self._counters: dict[tuple[str, str], _Counter] = {}
        self._baselines = BaselineLoader()
        self._next_sweep = -math.inf

    async def reserve(
        self,
        subject: str,
        period: str,
        cap: int,
        amount: int,
        request_id: str,
        ttl_s: float,
        baseline: Baseline,
    ) -> tuple[bool, int]:
        check_reserve(subject, period, cap, amount, request_id, ttl_s)
        counter = await self._counter((subject, period), ttl_s, baseline)
        # From here to the return nothing awaits: the check and the hold are one step.
        now = self._clock()
        counter.expire_holds(now)
        left = counter.left(cap)
        if request_id in counter.holds:
            return True, max(0, left)
        if amount > left:
            return False, max(0, left)
        counter.holds[request_id] = (amount, now + self._hold_ttl_s)
        counter.reserved += amount
        return True, left - amount

    async def settle(self, subject: str, period: str, request_id: str, actual: int) -> None:
        check_ids(subject, request_id)
        check_period(period)
        check_amount("actual", actual)
        counter = self._live((subject, period), self._clock())
        if counter is None:
            return
        counter.expire_holds(self._clock())
        held = counter.holds.pop(request_id, None)
        if held is not None:
            counter.reserved -= held[0]
            counter.spent += actual

    async def remaining(self, subject: str, period: str, cap: int, baseline: Baseline) -> int:
        check_ids(subject, "remaining")
        check_period(period)
        check_amount("cap", cap)
        key = (subject, period)
        counter = self._live(key, self._clock())
        if counter is None:
            return max(0, cap - await self._baselines.load(key, baseline))
        counter.expire_holds(self._clock())
        return max(0, counter.left(cap))

    async def close(self) -> None:
        self._counters.clear()

    async def _counter(self, key: tuple[str, str], ttl_s: float, baseline: Baseline) -> _Counter:
        """The live counter of `key`, created from `baseline()` when missing (first writer wins)."""
        counter = self._live(key, self._clock())
        if counter is not None:
            return counter
        spent = await self._baselines.load(key, baseline)
        now = self._clock()
        counter = self._live(key, now)
        if counter is None:
            counter = self._counters[key] = _Counter(spent=spent, expires_at=now + ttl_s)
        return counter

    def _live(self, key: tuple[str, str], now: float) -> _Counter | None:
        self._sweep(now)
        counter = self._counters.get(key)
        if counter is not None and counter.expires_at <= now:
            del self._counters[key]
            return None
        return counter

    def _sweep(self, now: float) -> None:
        """Once a minute, drop the counters whose lifetime is over (their periods ended)."""
        if now < self._next_sweep:
            return
        self._next_sweep = now + WINDOW_S
        for key in [key for key, counter in self._counters.items() if counter.expires_at <= now]:
            del self._counters[key]
