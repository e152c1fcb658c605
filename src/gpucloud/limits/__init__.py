"""Per-key limits (requests and tokens per rolling minute, concurrency) and per-period budgets,
enforced exactly across gateway replicas (docs/architecture.md §6).

This package is the storage and mechanism layer: a `LimitStore` admits, settles and releases
requests, a `BudgetStore` reserves and settles amounts against a cap. Each has an in-process
implementation (embedded mode) and a Redis one (cluster mode: one Lua step per decision, on the
Redis clock). The gateway chooses one of each and maps `Decision`s and `LimitUnavailable` to HTTP.
"""

from __future__ import annotations

from gpucloud.limits.budget import DEFAULT_HOLD_TTL_S, Baseline, BudgetStore, MemoryBudgetStore
from gpucloud.limits.memory import MemoryLimitStore
from gpucloud.limits.names import LimitNames
from gpucloud.limits.protocol import (
    CONCURRENCY_RETRY_S,
    DEFAULT_SLOT_TTL_S,
    WINDOW_S,
    Decision,
    Limits,
    LimitStore,
    LimitUnavailable,
    Reason,
)
from gpucloud.limits.redis import RedisBudgetStore, RedisLimitStore

__all__ = [
    "CONCURRENCY_RETRY_S",
    "DEFAULT_HOLD_TTL_S",
    "DEFAULT_SLOT_TTL_S",
    "WINDOW_S",
    "Baseline",
    "BudgetStore",
    "Decision",
    "LimitNames",
    "LimitStore",
    "LimitUnavailable",
    "Limits",
    "MemoryBudgetStore",
    "MemoryLimitStore",
    "Reason",
    "RedisBudgetStore",
    "RedisLimitStore",
]
