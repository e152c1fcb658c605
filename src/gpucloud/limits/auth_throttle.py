"""`AuthThrottle`: failed authentication is throttled per client address.

An address that presents `max_failures` wrong credentials (API keys or worker tokens) within a
window of `window_s` gets 429 `too_many_auth_failures` with `Retry-After` until the window ends,
whatever it sends; a request that authenticates costs nothing here but a dictionary lookup:

- `check(address)` reads only this process's cache of blocked addresses (no I/O);
- `failed(address)` counts a failure in the store, in one atomic step, and caches the block when
  the count reaches the limit. Only failures are counted, so a client that knows its key never
  touches the store.

The store is in-process in embedded mode (`MemoryFailures`) and Redis in cluster mode
(`RedisFailures`: one Lua script, `INCR` plus `PEXPIRE` on the first failure, on Redis's clock),
so failures against all gateways add up: a gateway blocks an address at its next failure there
once the address has used up the shared count. Counting is best effort: if Redis cannot be
reached the failure is still a 401, only not counted (a log line says so).

Missing credentials are not counted (a browser opening the API without a key is no attack), and
the address is the connection's peer as the server sees it (behind a proxy, configure the
server's trusted forwarded-for addresses so that it is the client's).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from redis.exceptions import RedisError

from gpucloud.errors import AuthenticationFailed, RateLimited
from gpucloud.redis_pools import CONNECTION_CLOSED_UNDER_USE, RedisClient, redis_client
from gpucloud.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

_PRUNE_AT = 10_000  # addresses held before expired entries are dropped
_COUNT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
if n >= tonumber(ARGV[2]) then return redis.call('PTTL', KEYS[1]) end
return 0
"""


class FailureStore(Protocol):
    async def add(self, address: str, max_failures: int, window_s: float) -> float:
        """Count one failure; seconds left in the address's window once it reached the limit, else 0."""
        ...

    async def close(self) -> None: ...


class MemoryFailures:
    """Fixed windows per address, in this process (embedded mode)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[str, tuple[float, int]] = {}  # address → (window end, failures)

    async def add(self, address: str, max_failures: int, window_s: float) -> float:
        now = self._clock()
        end, count = self._windows.get(address, (0.0, 0))
        if end <= now:
            end, count = now + window_s, 0
        self._windows[address] = (end, count + 1)
        if len(self._windows) > _PRUNE_AT:
            self._windows = {a: w for a, w in self._windows.items() if w[0] > now}
        return end - now if count + 1 >= max_failures else 0.0

    async def close(self) -> None:
        return None


class RedisFailures:
    """The same windows in Redis (cluster mode), shared by every gateway."""

    def __init__(self, url: str, prefix: str) -> None:
        self._redis: RedisClient = redis_client(url, connect_timeout_s=1.0, socket_timeout_s=1.0)
        self._prefix = prefix
        self._script = self._redis.register_script(_COUNT)

    async def add(self, address: str, max_failures: int, window_s: float) -> float:
        key = f"{self._prefix}:authfail:{address}"
        left_ms = await self._script(keys=[key], args=[int(window_s * 1000), max_failures])
        return max(0.0, int(left_ms) / 1000.0)

    async def close(self) -> None:
        await self._redis.aclose()


class AuthThrottle:
    def __init__(
        self,
        store: FailureStore,
        *,
        max_failures: int = 20,
        window_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._max = max_failures
        self._window_s = window_s
        self._clock = clock
        self._blocked: dict[str, float] = {}  # address → until (this process's clock)

    def check(self, address: str) -> None:
        """RateLimited (429, Retry-After) while `address` is blocked; a local lookup only."""
        until = self._blocked.get(address)
        if until is None:
            return
        left = until - self._clock()
        if left <= 0:
            del self._blocked[address]
            return
        raise RateLimited(
            "Too many failed authentication attempts from this address; retry later.",
            retry_after_s=left,
            code="too_many_auth_failures",
        )

    async def guard(self, address: str, authenticate: Callable[[str], Awaitable[T]], secret: str) -> T:
        """`authenticate(secret)` for a request from `address`: 429 while the address is blocked,
        and a wrong credential (`AuthenticationFailed`) counted before it propagates."""
        self.check(address)
        try:
            return await authenticate(secret)
        except AuthenticationFailed:
            await self.failed(address)
            raise

    async def failed(self, address: str) -> None:
        """Count a failed authentication from `address` (best effort: never raises)."""
        try:
            left = await self._store.add(address, self._max, self._window_s)
        except (RedisError, CONNECTION_CLOSED_UNDER_USE) as exc:
            log.warning("auth throttle: could not count a failure (%s)", type(exc).__name__)
            return
        if left > 0:
            now = self._clock()
            self._blocked[address] = now + left
            if len(self._blocked) > _PRUNE_AT:
                self._blocked = {a: u for a, u in self._blocked.items() if u > now}

    async def close(self) -> None:
        await self._store.close()


def build_auth_throttle(settings: Settings) -> AuthThrottle:
    """Redis-backed in cluster mode, in-process otherwise (GPUCLOUD_AUTH_THROTTLE__*)."""
    url = settings.redis_dsn()
    store: FailureStore = MemoryFailures() if url is None else RedisFailures(url, settings.redis_prefix)
    limits = settings.auth_throttle
    return AuthThrottle(store, max_failures=limits.max_failures, window_s=limits.window_s)
