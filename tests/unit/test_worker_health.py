"""The worker health rule (gpucloud.cluster.health), on tables: silence, recovery, hysteresis."""

from __future__ import annotations

import pytest

from gpucloud.cluster.health import HealthPolicy, WorkerState, beats_after, next_state

H, U, OFF = WorkerState.HEALTHY, WorkerState.UNHEALTHY, WorkerState.OFFLINE
POLICY = HealthPolicy(unhealthy_after_s=15.0, offline_after_s=60.0, recover_beats=2)


@pytest.mark.parametrize(
    ("current", "gap_s", "beats", "expected"),
    [
        (H, 0.0, 1, H),  # beating
        (H, 14.9, 5, H),  # a late beat is not yet silence
        (H, 15.0, 5, U),  # 3 intervals without a beat
        (H, 59.9, 5, U),
        (H, 60.0, 5, OFF),  # a monitor that missed the unhealthy step still gets there
        (U, 30.0, 1, U),
        (U, 60.0, 1, OFF),
        (OFF, 20.0, 1, OFF),  # silence never improves a state
        (OFF, 600.0, 9, OFF),
        (U, 0.0, 1, U),  # one beat after a gap is not enough: no flapping
        (OFF, 0.0, 1, OFF),
        (U, 0.0, 2, H),  # recover_beats in a row bring it back
        (OFF, 0.0, 2, H),
        (OFF, 1.0, 3, H),
    ],
)
def test_next_state(current: WorkerState, gap_s: float, beats: int, expected: WorkerState) -> None:
    assert next_state(current, gap_s, beats, POLICY) is expected


@pytest.mark.parametrize(
    ("previous", "gap_s", "expected"),
    [(0, 0.0, 1), (1, 5.0, 2), (7, 14.9, 8), (7, 15.0, 1), (3, 120.0, 1)],
)
def test_a_beat_after_a_gap_starts_a_new_run(previous: int, gap_s: float, expected: int) -> None:
    assert beats_after(previous, gap_s, POLICY) == expected


def test_flapping_worker_never_recovers_on_single_beats() -> None:
    """A worker that beats once, then falls silent, over and over, stays unhealthy."""
    state, beats = U, 0
    for _ in range(10):
        beats = beats_after(beats, 20.0, POLICY)  # one beat after 20 s of silence
        state = next_state(state, 0.0, beats, POLICY)
        assert state is U
        state = next_state(state, 20.0, beats, POLICY)
        assert state is U


def test_recovery_needs_recover_beats_in_a_row() -> None:
    policy = HealthPolicy(unhealthy_after_s=1.5, offline_after_s=3.0, recover_beats=3)
    state, beats = OFF, 0
    history = []
    for gap in (10.0, 0.5, 0.5, 0.5):
        beats = beats_after(beats, gap, policy)
        state = next_state(state, 0.0, beats, policy)
        history.append(state)
    assert history == [OFF, OFF, H, H]


def test_policy_is_validated() -> None:
    with pytest.raises(ValueError, match="unhealthy_after_s <= offline_after_s"):
        HealthPolicy(unhealthy_after_s=10, offline_after_s=5)
    with pytest.raises(ValueError, match="recover_beats >= 1"):
        HealthPolicy(recover_beats=0)
