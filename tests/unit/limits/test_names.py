"""The limiters' Redis key names (limits/names.py): one prefix, no collisions between subjects or
between (period, subject) pairs."""

from __future__ import annotations

from gpucloud.limits.names import LimitNames


def test_every_key_sits_under_the_prefix() -> None:
    names = LimitNames("p1")
    keys = [
        names.window("s"),
        names.tokens("s"),
        names.slots("s"),
        names.budget("s", "tokens:2026-11"),
        names.budget_holds("s", "tokens:2026-11"),
    ]
    assert all(key.startswith("p1:limits:") for key in keys)
    assert len(set(keys)) == len(keys)
    assert LimitNames().window("s") == "gc:limits:window:s"


def test_the_subject_comes_last_so_colons_cannot_collide() -> None:
    names = LimitNames()
    assert names.window("a:b") != names.tokens("b")
    assert names.window("a:b").endswith(":a:b")


def test_budget_periods_are_length_prefixed() -> None:
    names = LimitNames()
    assert names.budget("c", "a:b") != names.budget("b:c", "a")
    assert names.budget_holds("c", "a:b") != names.budget_holds("b:c", "a")
    assert names.budget("k", "usd:2026") == "gc:limits:budget:8:usd:2026:k"
