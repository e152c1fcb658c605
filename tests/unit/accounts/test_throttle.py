"""Sign-in throttling: failures are counted per account and per IP in a sliding window; the
window reopens as the oldest failure leaves it, and a success clears the account (not the IP)."""

from __future__ import annotations

import time

import pytest

from gpucloud.accounts import throttle
from gpucloud.accounts.throttle import FailureWindow, LoginThrottle
from gpucloud.errors import RateLimited


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(time, "monotonic", fake)
    return fake


def test_the_window_closes_at_the_limit_and_reopens_as_failures_age(clock: Clock) -> None:
    window = FailureWindow(limit=3, window_s=60)
    assert window.retry_after("a") is None
    for _ in range(2):
        window.record("a")
        clock.now += 10
    assert window.retry_after("a") is None  # two failures: under the limit
    window.record("a")
    assert window.retry_after("a") == pytest.approx(40.0)  # the first leaves at 1060
    assert window.retry_after("b") is None
    clock.now = 1060.0
    assert window.retry_after("a") is None  # the oldest left: two remain


def test_clearing_forgets_a_subject(clock: Clock) -> None:
    window = FailureWindow(limit=1, window_s=60)
    window.record("a")
    assert window.retry_after("a") is not None
    window.clear("a")
    window.clear("never-seen")
    assert window.retry_after("a") is None


def test_the_oldest_subject_is_forgotten_past_the_tracking_bound(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(throttle, "_MAX_TRACKED", 2)
    window = FailureWindow(limit=1, window_s=60)
    for subject in ("a", "b", "c"):
        window.record(subject)
    assert window.retry_after("a") is None
    assert window.retry_after("b") is not None
    assert window.retry_after("c") is not None


def test_the_throttle_limits_accounts_and_ips_and_a_success_clears_only_the_account(clock: Clock) -> None:
    login = LoginThrottle(account_limit=2, ip_limit=3, window_s=100)
    login.failed("a@x", "10.0.0.1")
    login.check("a@x", "10.0.0.1")
    login.failed("a@x", "10.0.0.1")
    with pytest.raises(RateLimited) as limited:
        login.check("a@x", "10.0.0.2")  # the account is closed from any IP
    assert limited.value.code == "too_many_sign_in_attempts"
    assert limited.value.retry_after_s == pytest.approx(100.0)
    login.succeeded("a@x")
    login.check("a@x", "10.0.0.2")
    login.failed("b@x", "10.0.0.1")  # the IP's third failure
    with pytest.raises(RateLimited):
        login.check("c@x", "10.0.0.1")  # a fresh account from that IP is refused too
    clock.now += 100
    login.check("c@x", "10.0.0.1")
