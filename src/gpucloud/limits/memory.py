"""`MemoryLimitStore`: the limit store of embedded mode, in this process.

A complete implementation of the rules in `gpucloud.limits.protocol` (not a test double): each
subject has a log of admitted requests (oldest first) with each one's tokens, a running token
total, and its concurrency slots with their lease expiry. No method awaits inside its critical
section, so on one event loop every check-and-consume is atomic without a lock.

Subjects whose windows and slots are empty are dropped when touched, and all subjects are swept
once per window, so a key that stops sending costs nothing after a minute.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from gpucloud.limits.decision import WindowState, decision, longest_wait
from gpucloud.limits.protocol import (
    CONCURRENCY_RETRY_S,
    DEFAULT_SLOT_TTL_S,
    WINDOW_S,
    Decision,
    Limits,
    Reason,
)
from gpucloud.limits.validation import check_ids, check_tokens


@dataclass
class _Subject:
    """One subject's rolling window and slots."""

    entries: deque[tuple[float, str]] = field(
        default_factory=deque
    )  # (admitted at, request id), oldest first
    amounts: dict[str, int] = field(default_factory=dict)  # request id → tokens counted for it
    used: int = 0  # sum of `amounts`
    slots: dict[str, float] = field(default_factory=dict)  # request id → lease expiry

    def expire(self, now: float) -> None:
        """Drop requests that left the window and slots whose lease ran out."""
        horizon = now - WINDOW_S
        while self.entries and self.entries[0][0] <= horizon:
            _, request_id = self.entries.popleft()
            self.used -= self.amounts.pop(request_id, 0)
        if any(expiry <= now for expiry in self.slots.values()):
            self.slots = {rid: expiry for rid, expiry in self.slots.items() if expiry > now}

    @property
    def empty(self) -> bool:
        return not self.entries and not self.slots

    def knows(self, request_id: str) -> bool:
        return request_id in self.amounts or request_id in self.slots

    def until_leaves(self, index: int, now: float) -> float:
        """Time until the `index`-th oldest request leaves the window (0 if there is none)."""
        if index >= len(self.entries):
            return 0.0
        return max(0.0, self.entries[index][0] + WINDOW_S - now)

    def until_tokens_leave(self, need: int, now: float) -> float | None:
        """Time until at least `need` tokens have left the window; None if they never will."""
        if need <= 0:
            return 0.0
        freed = 0
        for admitted_at, request_id in self.entries:
            freed += self.amounts.get(request_id, 0)
            if freed >= need:
                return max(0.0, admitted_at + WINDOW_S - now)
        return None

    def refusals(self, limits: Limits, tokens: int, now: float) -> dict[Reason, float]:
        """The wait of every limit that has no room for one more request of `tokens`."""
        waits: dict[Reason, float] = {}
        count = len(self.entries)
        if limits.rpm is not None and count + 1 > limits.rpm:
            waits["requests"] = math.inf if limits.rpm == 0 else self.until_leaves(count - limits.rpm, now)
        if limits.tpm is not None and self.used + tokens > limits.tpm:
            waits["tokens"] = self._token_wait(limits.tpm, tokens, now)
        if limits.max_concurrency is not None and len(self.slots) + 1 > limits.max_concurrency:
            waits["concurrency"] = self._slot_wait(limits.max_concurrency, now)
        return waits

    def _token_wait(self, tpm: int, tokens: int, now: float) -> float:
        if tokens > tpm:
            return math.inf
        wait = self.until_tokens_leave(self.used + tokens - tpm, now)
        return WINDOW_S if wait is None else wait

    def _slot_wait(self, max_concurrency: int, now: float) -> float:
        if max_concurrency == 0:
            return math.inf
        return min(CONCURRENCY_RETRY_S, min(self.slots.values()) - now)

    def consume(self, limits: Limits, request_id: str, tokens: int, now: float, slot_ttl_s: float) -> None:
        if limits.windowed:
            # A clock stepped back must not break the log's order (expiry pops from the left).
            admitted_at = max(now, self.entries[-1][0]) if self.entries else now
            self.entries.append((admitted_at, request_id))
            self.amounts[request_id] = tokens
            self.used += tokens
        if limits.max_concurrency is not None:
            self.slots[request_id] = now + slot_ttl_s

    def settle(self, request_id: str, actual_tokens: int | None) -> None:
        self.slots.pop(request_id, None)
        if actual_tokens is not None and request_id in self.amounts:
            self.used += actual_tokens - self.amounts[request_id]
            self.amounts[request_id] = actual_tokens

    def state(self, now: float, refusal: tuple[Reason, float] | None) -> WindowState:
        # None only if the total and the log disagree, which nothing should make happen: say "now".
        reset_tokens = (self.until_tokens_leave(1, now) if self.used > 0 else None) or 0.0
        return WindowState(
            allowed=refusal is None,
            reason=None if refusal is None else refusal[0],
            retry_after_s=0.0 if refusal is None else refusal[1],
            requests=len(self.entries),
            tokens=self.used,
            reset_requests_s=self.until_leaves(0, now),
            reset_tokens_s=reset_tokens,
        )


class MemoryLimitStore:
    """The limit store of one process (embedded mode); see the module docstring."""

    def __init__(
        self, *, slot_ttl_s: float = DEFAULT_SLOT_TTL_S, clock: Callable[[], float] = time.time
    ) -> None:
        if slot_ttl_s <= 0:
            raise ValueError("slot_ttl_s must be positive")
        self._slot_ttl_s = slot_ttl_s
        self._clock = clock
        self._subjects: dict[str, _Subject] = {}
        self._next_sweep = -math.inf

    async def admit(self, subject: str, limits: Limits, request_id: str, tokens: int) -> Decision:
        check_ids(subject, request_id)
        check_tokens(tokens)
        now = self._clock()
        state = self._touch(subject, now)
        refusal = None
        if not state.knows(request_id):
            refusal = longest_wait(state.refusals(limits, tokens, now))
            if refusal is None:
                state.consume(limits, request_id, tokens, now, self._slot_ttl_s)
        return self._answer(subject, state, limits, now, refusal)

    async def settle(self, subject: str, request_id: str, actual_tokens: int) -> None:
        check_ids(subject, request_id)
        check_tokens(actual_tokens)
        self._end(subject, request_id, actual_tokens)

    async def release(self, subject: str, request_id: str) -> None:
        check_ids(subject, request_id)
        self._end(subject, request_id, None)

    async def peek(self, subject: str, limits: Limits) -> Decision:
        check_ids(subject, "peek")
        now = self._clock()
        state = self._touch(subject, now)
        refusal = longest_wait(state.refusals(limits, 1, now))
        return self._answer(subject, state, limits, now, refusal)

    async def close(self) -> None:
        self._subjects.clear()

    def _touch(self, subject: str, now: float) -> _Subject:
        self._sweep(now)
        state = self._subjects.setdefault(subject, _Subject())
        state.expire(now)
        return state

    def _answer(
        self, subject: str, state: _Subject, limits: Limits, now: float, refusal: tuple[Reason, float] | None
    ) -> Decision:
        answer = decision(limits, state.state(now, refusal))
        self._forget_if_empty(subject, state)
        return answer

    def _end(self, subject: str, request_id: str, actual_tokens: int | None) -> None:
        state = self._subjects.get(subject)
        if state is None:
            return
        state.expire(self._clock())
        state.settle(request_id, actual_tokens)
        self._forget_if_empty(subject, state)

    def _forget_if_empty(self, subject: str, state: _Subject) -> None:
        if state.empty and self._subjects.get(subject) is state:
            del self._subjects[subject]

    def _sweep(self, now: float) -> None:
        """Once per window, drop every subject with nothing left in its window or slots."""
        if now < self._next_sweep:
            return
        self._next_sweep = now + WINDOW_S
        for subject, state in list(self._subjects.items()):
            state.expire(now)
            self._forget_if_empty(subject, state)
