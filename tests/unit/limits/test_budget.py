"""`MemoryBudgetStore` (limits/budget.py): budgets reserve, settle, expire holds and start from their
ledger baseline once, on a fake clock."""

from __future__ import annotations

import asyncio

import pytest

from gpucloud.limits import MemoryBudgetStore
from tests.unit.limits.clock import FakeClock


class Ledger:
    """What the usage ledger says was spent; counts how often it was read."""

    def __init__(self, spent: int, delay_s: float = 0.0) -> None:
        self.spent = spent
        self.delay_s = delay_s
        self.reads = 0

    async def __call__(self) -> int:
        self.reads += 1
        await asyncio.sleep(self.delay_s)
        return self.spent


async def test_budget_concurrent_reserves_stop_at_the_cap(clock: FakeClock) -> None:
    budgets = MemoryBudgetStore(clock=clock)
    ledger = Ledger(0, delay_s=0.01)
    results = await asyncio.gather(
        *(budgets.reserve("k", "tokens:2026-11", 100, 10, f"r{i}", 3600, ledger) for i in range(50))
    )
    assert sum(ok for ok, _ in results) == 10
    assert ledger.reads == 1  # concurrent initialisers shared one ledger read
    assert min(left for _, left in results) == 0

    await budgets.settle("k", "tokens:2026-11", "r0", 4)
    await budgets.settle("k", "tokens:2026-11", "r0", 4)  # idempotent
    assert await budgets.remaining("k", "tokens:2026-11", 100, ledger) == 6
    assert await budgets.reserve("k", "tokens:2026-11", 100, 6, "late", 3600, ledger) == (True, 0)


async def test_budget_starts_from_the_baseline(clock: FakeClock) -> None:
    budgets = MemoryBudgetStore(clock=clock)
    ledger = Ledger(95)
    assert await budgets.remaining("k", "usd:2026-11-23", 100, ledger) == 5  # read, not created
    assert await budgets.reserve("k", "usd:2026-11-23", 100, 10, "r", 60, ledger) == (False, 5)
    assert await budgets.reserve("k", "usd:2026-11-23", 100, 5, "s", 60, ledger) == (True, 0)
    reads = ledger.reads
    await budgets.reserve("k", "usd:2026-11-23", 100, 0, "t", 60, ledger)
    assert ledger.reads == reads  # the counter exists: the ledger is not read again

    clock.at(61)  # the counter's lifetime is over (a new period would have a new name anyway)
    ledger.spent = 20
    assert await budgets.reserve("k", "usd:2026-11-23", 100, 10, "u", 60, ledger) == (True, 70)


async def test_budget_hold_not_settled_counts_as_spent(clock: FakeClock) -> None:
    budgets = MemoryBudgetStore(hold_ttl_s=30, clock=clock)
    ledger = Ledger(0)
    assert await budgets.reserve("k", "p", 100, 40, "crashed", 3600, ledger) == (True, 60)
    clock.at(31)
    await budgets.settle("k", "p", "crashed", 1)  # too late: the hold was counted in full
    assert await budgets.remaining("k", "p", 100, ledger) == 60


async def test_budget_retried_reserve_holds_once(clock: FakeClock) -> None:
    budgets = MemoryBudgetStore(clock=clock)
    ledger = Ledger(0)
    assert await budgets.reserve("k", "p", 100, 30, "r", 3600, ledger) == (True, 70)
    assert await budgets.reserve("k", "p", 100, 30, "r", 3600, ledger) == (True, 70)


async def test_budget_rejects_floats() -> None:
    budgets = MemoryBudgetStore()
    with pytest.raises(ValueError, match="amount"):
        await budgets.reserve("k", "p", 100, 0.5, "r", 60, Ledger(0))  # type: ignore[arg-type]
