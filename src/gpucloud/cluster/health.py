"""Worker health with hysteresis: the pure rule that moves a worker between states.

A worker is `healthy` while it beats. Silence for `unhealthy_after_s` makes it `unhealthy`, and
silence for `offline_after_s` makes it `offline`. Coming back takes `recover_beats` heartbeats in a
row (beats closer together than `unhealthy_after_s`), so one stray beat after a gap does not flip
a flaky machine back and forth. A new worker starts `healthy`: it has no history to flap with.

`next_state` is a pure function of the facts the database holds (time since the last beat and the
run of consecutive beats), so the heartbeat handler and the monitor apply the same rule, and it is
tested on tables without clocks.
"""

from __future__ import annotations

from dataclasses import dataclass

# Defined with the worker API's bodies (its answer carries the state), so that a worker can read
# it without loading this package; re-exported here, beside the rule that sets it.
from gpucloud.wire import WorkerState as WorkerState


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    unhealthy_after_s: float = 15.0
    offline_after_s: float = 60.0
    recover_beats: int = 2

    def __post_init__(self) -> None:
        if not 0 < self.unhealthy_after_s <= self.offline_after_s or self.recover_beats < 1:
            raise ValueError("need 0 < unhealthy_after_s <= offline_after_s and recover_beats >= 1")


def next_state(
    current: WorkerState, seconds_since_last_beat: float, consecutive_beats: int, policy: HealthPolicy
) -> WorkerState:
    """The state a worker should be in now."""
    if seconds_since_last_beat >= policy.offline_after_s:
        return WorkerState.OFFLINE
    if seconds_since_last_beat >= policy.unhealthy_after_s:
        # Silence never improves a state: an offline worker stays offline until it beats again.
        return WorkerState.OFFLINE if current is WorkerState.OFFLINE else WorkerState.UNHEALTHY
    if current is WorkerState.HEALTHY or consecutive_beats >= policy.recover_beats:
        return WorkerState.HEALTHY
    return current


def beats_after(previous_beats: int, seconds_since_last_beat: float, policy: HealthPolicy) -> int:
    """The run of consecutive beats once a beat arrives: a beat after a gap starts a new run."""
    if seconds_since_last_beat >= policy.unhealthy_after_s:
        return 1
    return previous_beats + 1


def transition_reason(old: WorkerState, new: WorkerState, gap_s: float, beats: int) -> str:
    """Words for the log line of a transition."""
    if new is WorkerState.HEALTHY:
        return f"{beats} consecutive heartbeats"
    return f"no heartbeat for {gap_s:.1f}s"
