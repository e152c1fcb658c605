"""`LoginThrottle`: wrong passwords are counted per account and per client IP over a sliding
window; past the limit, sign-in attempts for that account (or from that IP) get 429 with
Retry-After until the oldest failure leaves the window — even with the right password, so that a
guesser learns nothing from an attempt made while throttled.

The counts live in each gateway process: with N gateways a guesser gets at most N times the
limit, still a handful of guesses per window against argon2id hashes.
"""

from __future__ import annotations

import time
from collections import deque

from gpucloud.errors import RateLimited

_MAX_TRACKED = 100_000  # distinct accounts/IPs remembered; past it the oldest are forgotten


class FailureWindow:
    """Failure times per subject within `window_s`; `limit` failures close the window."""

    def __init__(self, limit: int, window_s: float) -> None:
        self._limit = limit
        self._window_s = window_s
        self._failures: dict[str, deque[float]] = {}

    def retry_after(self, subject: str) -> float | None:
        """Seconds until `subject` may try again, or None when it may now."""
        failures = self._failures.get(subject)
        if failures is None:
            return None
        now = time.monotonic()
        while failures and failures[0] <= now - self._window_s:
            failures.popleft()
        if not failures:
            del self._failures[subject]
            return None
        if len(failures) < self._limit:
            return None
        return failures[0] + self._window_s - now

    def record(self, subject: str) -> None:
        if subject not in self._failures and len(self._failures) >= _MAX_TRACKED:
            del self._failures[next(iter(self._failures))]
        self._failures.setdefault(subject, deque()).append(time.monotonic())

    def clear(self, subject: str) -> None:
        self._failures.pop(subject, None)


class LoginThrottle:
    """Per-account and per-IP failure windows (see the module docstring)."""

    def __init__(self, *, account_limit: int, ip_limit: int, window_s: float) -> None:
        self._accounts = FailureWindow(account_limit, window_s)
        self._ips = FailureWindow(ip_limit, window_s)

    def check(self, email: str, ip: str) -> None:
        waits = [w for w in (self._accounts.retry_after(email), self._ips.retry_after(ip)) if w is not None]
        if waits:
            wait = max(waits)
            raise RateLimited(
                "Too many wrong passwords. Try again later.",
                retry_after_s=wait,
                code="too_many_sign_in_attempts",
            )

    def failed(self, email: str, ip: str) -> None:
        self._accounts.record(email)
        self._ips.record(ip)

    def succeeded(self, email: str) -> None:
        self._accounts.clear(email)
