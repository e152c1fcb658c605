"""`LoginThrottle`: wrong passwords are counted per account and per client IP over a sliding
window; past the limit, sign-in attempts for that account (or from that IP) get 429 with
Retry-After until the oldest failure leaves the window — even with the right password, so that a
guesser learns nothing from an attempt made while throttled.

The failures live in a `FailureLog`: in this process in embedded mode (`MemoryFailureLog`), in
Redis in cluster mode (`accounts.throttle_redis.RedisFailureLog`), so the limits hold across all
gateway replicas. Subjects are `account:<email>` and `ip:<address>`; the Redis store keeps only
their digests. Counting is best effort: if Redis cannot be reached, sign-in goes on unthrottled
(argon2id still makes each guess slow) and a log line says so.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Protocol

from redis.exceptions import RedisError

from gpucloud.errors import RateLimited
from gpucloud.redis_pools import CONNECTION_CLOSED_UNDER_USE

log = logging.getLogger(__name__)
_MAX_TRACKED = 100_000  # distinct accounts/IPs remembered; past it the oldest are forgotten


class FailureLog(Protocol):
    async def retry_after(self, subject: str, limit: int, window_s: float) -> float | None:
        """Seconds until `subject` may try again (`limit` failures in the window), or None."""
        ...

    async def record(self, subject: str, window_s: float) -> None: ...

    async def clear(self, subject: str) -> None: ...

    async def close(self) -> None: ...


class MemoryFailureLog:
    """Failure times per subject, in this process (embedded mode)."""

    def __init__(self) -> None:
        self._failures: dict[str, deque[float]] = {}

    async def retry_after(self, subject: str, limit: int, window_s: float) -> float | None:
        failures = self._failures.get(subject)
        if failures is None:
            return None
        now = time.monotonic()
        while failures and failures[0] <= now - window_s:
            failures.popleft()
        if not failures:
            del self._failures[subject]
            return None
        if len(failures) < limit:
            return None
        return failures[-limit] + window_s - now

    async def record(self, subject: str, window_s: float) -> None:
        if subject not in self._failures and len(self._failures) >= _MAX_TRACKED:
            del self._failures[next(iter(self._failures))]
        self._failures.setdefault(subject, deque()).append(time.monotonic())

    async def clear(self, subject: str) -> None:
        self._failures.pop(subject, None)

    async def close(self) -> None:
        return None


class LoginThrottle:
    """Per-account and per-IP failure windows (see the module docstring)."""

    def __init__(self, failures: FailureLog, *, account_limit: int, ip_limit: int, window_s: float) -> None:
        self._failures = failures
        self._account_limit = account_limit
        self._ip_limit = ip_limit
        self._window_s = window_s

    async def check(self, email: str, ip: str) -> None:
        try:
            waits = [
                await self._failures.retry_after(f"account:{email}", self._account_limit, self._window_s),
                await self._failures.retry_after(f"ip:{ip}", self._ip_limit, self._window_s),
            ]
        except (RedisError, CONNECTION_CLOSED_UNDER_USE) as exc:
            log.warning("login throttle: failures not readable (%s)", type(exc).__name__)
            return
        found = [w for w in waits if w is not None]
        if found:
            raise RateLimited(
                "Too many wrong passwords. Try again later.",
                retry_after_s=max(max(found), 1.0),
                code="too_many_sign_in_attempts",
            )

    async def failed(self, email: str, ip: str) -> None:
        try:
            await self._failures.record(f"account:{email}", self._window_s)
            await self._failures.record(f"ip:{ip}", self._window_s)
        except (RedisError, CONNECTION_CLOSED_UNDER_USE) as exc:
            log.warning("login throttle: failure not counted (%s)", type(exc).__name__)

    async def succeeded(self, email: str) -> None:
        try:
            await self._failures.clear(f"account:{email}")
        except (RedisError, CONNECTION_CLOSED_UNDER_USE) as exc:
            log.warning("login throttle: failures not cleared (%s)", type(exc).__name__)

    async def close(self) -> None:
        await self._failures.close()
