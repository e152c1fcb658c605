"""Each limit script touches the keys of one subject, which share one Redis Cluster hash slot;
different subjects spread over the cluster (redis-py's own slot function decides)."""

from __future__ import annotations

import pytest
from redis.crc import key_slot

from gpucloud.limits.names import LimitNames

SUBJECTS = ["key:k_0123", "org:42", "}", "{", "{}", "}{x}", "a:b:c", "ünïcode", "s" * 300]
PERIODS = ["2026-11", "day:2026-11-29", "{p}", "}"]


def slot(key: str) -> int:
    return int(key_slot(key.encode()))


@pytest.mark.parametrize("subject", SUBJECTS)
def test_a_subjects_window_keys_share_a_slot(subject: str) -> None:
    """ADMIT and SETTLE: the window, its tokens and the concurrency slots."""
    names = LimitNames("gc")
    keys = [names.window(subject), names.tokens(subject), names.slots(subject)]
    assert len({slot(key) for key in keys}) == 1


@pytest.mark.parametrize("subject", SUBJECTS)
@pytest.mark.parametrize("period", PERIODS)
def test_a_budgets_keys_share_a_slot(subject: str, period: str) -> None:
    """BUDGET and BUDGET_SETTLE: the counter and its holds."""
    names = LimitNames("gc")
    assert slot(names.budget(subject, period)) == slot(names.budget_holds(subject, period))


def test_subjects_spread_over_slots() -> None:
    names = LimitNames("gc")
    slots = {slot(names.window(f"key:{n}")) for n in range(200)}
    assert len(slots) > 150


def test_keys_stay_distinct_and_end_with_the_subject() -> None:
    names = LimitNames("gc")
    keys = [names.window(s) for s in SUBJECTS] + [names.budget(s, p) for s in SUBJECTS for p in PERIODS]
    keys += [names.budget_holds(s, p) for s in SUBJECTS for p in PERIODS]
    assert len(keys) == len(set(keys))
    assert all(names.window(s).endswith(":" + s) for s in SUBJECTS)
