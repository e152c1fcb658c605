"""Turning a window's numbers into a `Decision` (limits/decision.py), as both stores do."""

from __future__ import annotations

import math

from gpucloud.limits.decision import WindowState, decision, from_micros, longest_wait
from gpucloud.limits.protocol import Limits


def state(**fields: object) -> WindowState:
    values: dict[str, object] = {
        "allowed": True,
        "reason": None,
        "retry_after_s": 0.0,
        "requests": 0,
        "tokens": 0,
        "reset_requests_s": 0.0,
        "reset_tokens_s": 0.0,
    }
    return WindowState(**(values | fields))  # type: ignore[arg-type]


def test_the_longest_wait_wins_and_ties_go_to_the_first_reason() -> None:
    assert longest_wait({}) is None
    assert longest_wait({"tokens": 3.0, "concurrency": 1.0}) == ("tokens", 3.0)
    assert longest_wait({"concurrency": 5.0, "requests": 5.0}) == ("requests", 5.0)
    assert longest_wait({"tokens": math.inf, "requests": 59.0}) == ("tokens", math.inf)


def test_unset_limits_have_no_headers() -> None:
    d = decision(Limits(max_concurrency=2), state(requests=5, tokens=7, reset_requests_s=3.0))
    assert d.allowed
    assert (d.limit_requests, d.remaining_requests, d.reset_requests_s) == (None, None, None)
    assert (d.limit_tokens, d.remaining_tokens, d.reset_tokens_s) == (None, None, None)


def test_remaining_is_clamped_when_a_limit_was_lowered() -> None:
    d = decision(Limits(rpm=3, tpm=100), state(requests=5, tokens=40, reset_requests_s=12.5))
    assert (d.limit_requests, d.remaining_requests, d.reset_requests_s) == (3, 0, 12.5)
    assert (d.limit_tokens, d.remaining_tokens, d.reset_tokens_s) == (100, 60, 0.0)


def test_negative_times_from_clock_skew_become_zero() -> None:
    d = decision(
        Limits(rpm=1, tpm=1),
        state(allowed=False, reason="requests", retry_after_s=-0.2, reset_requests_s=-1.0, reset_tokens_s=-1),
    )
    assert (d.allowed, d.reason) == (False, "requests")
    assert (d.retry_after_s, d.reset_requests_s, d.reset_tokens_s) == (0.0, 0.0, 0.0)


def test_micros_and_never() -> None:
    assert from_micros(1_500_000) == 1.5
    assert from_micros(0) == 0.0
    assert from_micros(-1) == math.inf
