"""Worker health with hysteresis, on tables: silence degrades, steady beats recover, one stray
beat after a gap does not, and the policy's bounds are checked."""

from __future__ import annotations

import pytest

from gpucloud.cluster.health import HealthPolicy, WorkerState, beats_after, next_state, transition_reason

POLICY = HealthPolicy(unhealthy_after_s=15, offline_after_s=60, recover_beats=2)
H, U, OFF = WorkerState.HEALTHY, WorkerState.UNHEALTHY, WorkerState.OFFLINE


@pytest.mark.parametrize(
    ("current", "silent_s", "beats", "expected"),
    [
        (H, 0, 1, H),
        (H, 14.9, 1, H),
        (H, 15, 5, U),
        (H, 60, 5, OFF),
        (U, 59.9, 0, U),
        (OFF, 30, 0, OFF),  # silence never improves a state
        (OFF, 1, 1, OFF),  # one beat after a gap is not enough
        (OFF, 1, 2, H),
        (U, 1, 1, U),
        (U, 1, 2, H),
    ],
)
def test_next_state(current: WorkerState, silent_s: float, beats: int, expected: WorkerState) -> None:
    assert next_state(current, silent_s, beats, POLICY) is expected


def test_a_beat_after_a_gap_starts_a_new_run() -> None:
    assert beats_after(4, 1.0, POLICY) == 5
    assert beats_after(4, 15.0, POLICY) == 1
    assert beats_after(0, 0.0, POLICY) == 1


def test_a_flaky_worker_needs_two_steady_beats() -> None:
    state, beats = OFF, 0
    for gap in (70.0, 1.0):  # back after a gap, then one steady beat
        beats = beats_after(beats, gap, POLICY)
        state = next_state(state, 0.0, beats, POLICY)
    assert (state, beats) == (H, 2)


@pytest.mark.parametrize(
    ("unhealthy", "offline", "beats"), [(0, 10, 1), (20, 10, 1), (5, 10, 0), (-1, 10, 1)]
)
def test_bad_policies_are_refused(unhealthy: float, offline: float, beats: int) -> None:
    with pytest.raises(ValueError, match="unhealthy_after_s"):
        HealthPolicy(unhealthy_after_s=unhealthy, offline_after_s=offline, recover_beats=beats)


def test_transition_reasons() -> None:
    assert transition_reason(U, H, 0.0, 2) == "2 consecutive heartbeats"
    assert transition_reason(H, U, 15.25, 0) == "no heartbeat for 15.2s"
