"""`Replica`: one deployment replica on a worker — its state (standby, loading, ready, failed,
unloading), its engine once loaded, and its breaker (`BreakerPolicy`): a replica whose jobs fail
`threshold` times within `window_s` leaves rotation for `cooldown_s`. Failed loads are retried with
exponential backoff (2 s doubling to 60 s). `worker.replicas.ReplicaSet` drives them."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

from gpucloud.engines.protocol import Engine
from gpucloud.wire import ReportedState
from gpucloud.worker.assignment import Assignment

RETRY_START_S = 2.0
RETRY_MAX_S = 60.0


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    threshold: int = 5
    window_s: float = 60.0
    cooldown_s: float = 30.0


@dataclass(eq=False)
class Replica:
    assignment: Assignment
    state: ReportedState = "standby"  # what heartbeats report (`wire.ReplicaIn`)
    reason: str | None = None
    engine: Engine | None = None
    active: int = 0
    last_used: float = 0.0  # wall clock of the last job's end (LRU order, idle unload)
    failures: deque[float] = field(default_factory=deque)
    broken_until: float = 0.0
    retry_at: float = 0.0
    retry_delay_s: float = RETRY_START_S
    settled: asyncio.Event = field(default_factory=asyncio.Event)  # a load ended (either way)
    idle: asyncio.Event = field(default_factory=asyncio.Event)  # set when the last job ends
    task: asyncio.Task[None] | None = None

    @property
    def holds_memory(self) -> bool:
        return self.engine is not None or self.state == "loading"

    def record_failure(self, now: float, policy: BreakerPolicy) -> bool:
        """Count an engine failure; True when it trips the breaker (the replica leaves rotation
        for `policy.cooldown_s`)."""
        self.failures.append(now)
        while self.failures and self.failures[0] < now - policy.window_s:
            self.failures.popleft()
        if len(self.failures) < policy.threshold:
            return False
        self.broken_until = now + policy.cooldown_s
        self.failures.clear()
        # Shown to every client of the model (503s): no error text, which can quote a request.
        self.reason = (
            f"taken out of rotation for {policy.cooldown_s:.0f} s after "
            f"{policy.threshold} engine failures in {policy.window_s:.0f} s (see the worker's log)"
        )
        return True

    def load_failed(self, now: float, exc: BaseException) -> None:
        """A load ended in `exc`: `failed`, retried after a delay that doubles up to a minute."""
        detail = str(exc) or type(exc).__name__
        self.state, self.reason = "failed", f"load failed: {detail[:500]}"
        self.retry_at = now + self.retry_delay_s
        self.retry_delay_s = min(self.retry_delay_s * 2, RETRY_MAX_S)

    def loaded(self, engine: Engine, now: float) -> None:
        self.engine, self.state, self.reason = engine, "ready", None
        self.retry_delay_s = RETRY_START_S
        self.last_used = now
