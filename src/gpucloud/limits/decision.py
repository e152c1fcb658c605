"""Turning a window's raw numbers into a `Decision`, the same way for every store.

Each store measures its window its own way (Python structures, or a Lua script on the Redis clock)
and reports a `WindowState`; the arithmetic that makes the headers (limits, remaining, resets)
and the choice among several refusals live here once, so both stores answer alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gpucloud.limits.protocol import Decision, Limits, Reason

# The order refusals are considered in; on equal waits the first one is reported.
REASONS: tuple[Reason, ...] = ("requests", "tokens", "concurrency")


@dataclass(frozen=True, slots=True)
class WindowState:
    """A subject's window as one admission (or peek) left it."""

    allowed: bool
    reason: Reason | None
    retry_after_s: float  # 0 when allowed; math.inf when the refused limit can never have room
    requests: int  # requests in the window (including this one when admitted)
    tokens: int  # tokens counted in the window (including this one's reservation when admitted)
    reset_requests_s: float  # until the oldest request leaves the window; 0 when empty
    reset_tokens_s: float  # until the oldest request holding tokens leaves; 0 when none does


def longest_wait(waits: dict[Reason, float]) -> tuple[Reason, float] | None:
    """The refusal that lasts longest (every limit must have room before a retry can pass)."""
    worst: tuple[Reason, float] | None = None
    for reason in REASONS:
        if reason in waits and (worst is None or waits[reason] > worst[1]):
            worst = (reason, waits[reason])
    return worst


def decision(limits: Limits, state: WindowState) -> Decision:
    """The `Decision` for `state` under `limits`."""
    return Decision(
        allowed=state.allowed,
        reason=state.reason,
        retry_after_s=max(0.0, state.retry_after_s),
        limit_requests=limits.rpm,
        remaining_requests=_remaining(limits.rpm, state.requests),
        reset_requests_s=None if limits.rpm is None else max(0.0, state.reset_requests_s),
        limit_tokens=limits.tpm,
        remaining_tokens=_remaining(limits.tpm, state.tokens),
        reset_tokens_s=None if limits.tpm is None else max(0.0, state.reset_tokens_s),
    )


def _remaining(limit: int | None, used: int) -> int | None:
    # Clamped: a limit lowered below what the window already holds leaves nothing, not a debt.
    return None if limit is None else max(0, limit - used)


def from_micros(value: int) -> float:
    """Seconds from the Redis scripts' microseconds, where -1 stands for "never"."""
    return math.inf if value < 0 else value / 1_000_000
