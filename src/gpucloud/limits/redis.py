"""`RedisLimitStore` and `RedisBudgetStore`: the limit and budget stores of cluster mode.

Every admission, settle and reservation is one Lua script (`gpucloud.limits.scripts`) on the
Redis clock, so any number of gateway replicas enforce one limit exactly. Keys:
`gpucloud.limits.names`; rules: `gpucloud.limits.protocol` and `gpucloud.limits.budget`.

Failure rules: admission is on every request's path and fails closed, so it must fail fast.

* Short timeouts (connect 1 s, each reply 2 s: a script here touches a handful of entries);
  no retries inside the client (a command that failed may or may not have run; the caller's
  `release`/`settle` in a `finally` makes either case harmless).
* A bounded pool that waits up to `POOL_WAIT_S` for a free connection: redis-py's default pool
  raises at once past 100 connections in use, which would turn a burst into refusals.
* Every Redis error becomes `LimitUnavailable`; its message names the operation and the error
  class (and a server error's text), never the URL, which may carry a password.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

from redis.exceptions import RedisError, ResponseError

from gpucloud.limits.budget import DEFAULT_HOLD_TTL_S, Baseline, BaselineLoader, check_period, check_reserve
from gpucloud.limits.decision import REASONS, WindowState, decision, from_micros
from gpucloud.limits.names import LimitNames
from gpucloud.limits.protocol import (
    CONCURRENCY_RETRY_S,
    DEFAULT_SLOT_TTL_S,
    WINDOW_S,
    Decision,
    Limits,
    LimitUnavailable,
)
from gpucloud.limits.scripts import LimitScripts
from gpucloud.limits.validation import check_amount, check_ids, check_tokens
from gpucloud.redis_pools import CONNECTION_CLOSED_UNDER_USE, RedisClient, redis_client

CONNECT_TIMEOUT_S = 1.0
SOCKET_TIMEOUT_S = 2.0
# Connections per store, and how long a command waits for one before the store is "unavailable".
POOL_SIZE = 64
POOL_WAIT_S = 2.0
# Idle pooled connections are PINGed before reuse after this long, to notice a restarted server.
HEALTH_CHECK_INTERVAL_S = 10
# Keys outlive what they hold by this much, so a key never expires under a script still using it.
KEY_TTL_MARGIN_S = 60.0

# What a Lua script takes in ARGV.
ScriptArg = str | int | float


def connect(url: str, wait_s: float = POOL_WAIT_S) -> RedisClient:
    """A client for `url` with the timeouts and pool above; nothing connects before the first
    command. `wait_s` bounds both the wait for a free connection and each reply; a caller that
    waits longer than the default also gives each connect longer (half of it)."""
    return redis_client(
        url,
        connect_timeout_s=max(CONNECT_TIMEOUT_S, wait_s / 2),
        socket_timeout_s=max(SOCKET_TIMEOUT_S, wait_s),
        health_check_interval_s=HEALTH_CHECK_INTERVAL_S,
        max_connections=POOL_SIZE,
        pool_wait_s=wait_s,
    )


@contextmanager
def guard(action: str) -> Iterator[None]:
    """Turn any Redis error raised while doing `action` into `LimitUnavailable` (fail closed)."""
    try:
        yield
    except ResponseError as exc:
        # The server's own message (script error, OOM under noeviction, read-only replica): no URL in it.
        raise LimitUnavailable(f"redis refused {action}: {type(exc).__name__}: {exc}") from exc
    except (RedisError, CONNECTION_CLOSED_UNDER_USE) as exc:
        raise LimitUnavailable(f"redis is unavailable ({action}: {type(exc).__name__})") from exc


def _micros(seconds: float) -> int:
    return round(seconds * 1_000_000)


def _millis(seconds: float) -> int:
    return round(seconds * 1000)


def _limit_arg(limit: int | None) -> int:
    return -1 if limit is None else limit


class RedisLimitStore:
    """The `LimitStore` protocol on Redis (see the module docstring and `gpucloud.limits.protocol`)."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "gc",
        slot_ttl_s: float = DEFAULT_SLOT_TTL_S,
        wait_s: float = POOL_WAIT_S,
    ) -> None:
        if slot_ttl_s <= 0:
            raise ValueError("slot_ttl_s must be positive")
        self.names = LimitNames(prefix)
        self._slot_ttl_s = slot_ttl_s
        self._redis = connect(url, wait_s)
        self._scripts = LimitScripts(self._redis)

    async def admit(self, subject: str, limits: Limits, request_id: str, tokens: int) -> Decision:
        check_ids(subject, request_id)
        check_tokens(tokens)
        return await self._run("admit", subject, limits, request_id, tokens)

    async def settle(self, subject: str, request_id: str, actual_tokens: int) -> None:
        check_ids(subject, request_id)
        check_tokens(actual_tokens)
        await self._end("settle", subject, request_id, str(actual_tokens))

    async def release(self, subject: str, request_id: str) -> None:
        check_ids(subject, request_id)
        await self._end("release", subject, request_id, "")

    async def peek(self, subject: str, limits: Limits) -> Decision:
        check_ids(subject, "peek")
        # "peek" mode never consumes; one token asks whether any request could pass now.
        return await self._run("peek", subject, limits, "", 1)

    async def close(self) -> None:
        await self._redis.aclose()

    def _keys(self, subject: str) -> list[str]:
        return [self.names.window(subject), self.names.tokens(subject), self.names.slots(subject)]

    async def _run(self, mode: str, subject: str, limits: Limits, request_id: str, tokens: int) -> Decision:
        args: Sequence[ScriptArg] = [
            mode,
            request_id,
            _limit_arg(limits.rpm),
            _limit_arg(limits.tpm),
            _limit_arg(limits.max_concurrency),
            tokens,
            _micros(WINDOW_S),
            _micros(self._slot_ttl_s),
            _millis(WINDOW_S + KEY_TTL_MARGIN_S),
            _millis(self._slot_ttl_s + KEY_TTL_MARGIN_S),
            _micros(CONCURRENCY_RETRY_S),
        ]
        with guard(mode):
            raw = cast(list[int], await self._scripts.admit(keys=self._keys(subject), args=args))
        return decision(limits, _window_state(raw))

    async def _end(self, action: str, subject: str, request_id: str, actual: str) -> None:
        args: Sequence[ScriptArg] = [request_id, actual, _micros(WINDOW_S)]
        with guard(action):
            await self._scripts.settle(keys=self._keys(subject), args=args)


def _window_state(raw: list[int]) -> WindowState:
    """The ADMIT script's reply (see `gpucloud.limits.scripts.ADMIT`) as a `WindowState`."""
    allowed, reason, wait, requests, tokens, reset_requests, reset_tokens = (int(value) for value in raw)
    return WindowState(
        allowed=bool(allowed),
        reason=REASONS[reason - 1] if reason else None,
        retry_after_s=from_micros(wait) if reason else 0.0,
        requests=requests,
        tokens=tokens,
        reset_requests_s=from_micros(reset_requests),
        reset_tokens_s=from_micros(reset_tokens),
    )


class RedisBudgetStore:
    """The `BudgetStore` protocol on Redis (rules in `gpucloud.limits.budget`)."""

    def __init__(self, url: str, *, prefix: str = "gc", hold_ttl_s: float = DEFAULT_HOLD_TTL_S) -> None:
        if hold_ttl_s <= 0:
            raise ValueError("hold_ttl_s must be positive")
        self.names = LimitNames(prefix)
        self._hold_ttl_s = hold_ttl_s
        self._redis = connect(url)
        self._scripts = LimitScripts(self._redis)
        self._baselines = BaselineLoader()

    async def reserve(
        self,
        subject: str,
        period: str,
        cap: int,
        amount: int,
        request_id: str,
        ttl_s: float,
        baseline: Baseline,
    ) -> tuple[bool, int]:
        check_reserve(subject, period, cap, amount, request_id, ttl_s)
        args: list[ScriptArg] = [
            "reserve",
            request_id,
            cap,
            amount,
            _millis(ttl_s),
            _micros(self._hold_ttl_s),
        ]
        status, left = await self._budget(subject, period, args, "")
        if status < 0:
            # The counter does not exist: read the baseline, then the script creates it unless
            # another initialiser got there first (their value stands).
            spent = await self._baselines.load((subject, period), baseline)
            status, left = await self._budget(subject, period, args, str(spent))
        return status == 1, left

    async def settle(self, subject: str, period: str, request_id: str, actual: int) -> None:
        check_ids(subject, request_id)
        check_period(period)
        check_amount("actual", actual)
        with guard("budget settle"):
            await self._scripts.budget_settle(keys=self._keys(subject, period), args=[request_id, actual])

    async def remaining(self, subject: str, period: str, cap: int, baseline: Baseline) -> int:
        check_ids(subject, "remaining")
        check_period(period)
        check_amount("cap", cap)
        args: list[ScriptArg] = ["remaining", "", cap, 0, 1, _micros(self._hold_ttl_s)]
        status, left = await self._budget(subject, period, args, "")
        if status < 0:
            return max(0, cap - await self._baselines.load((subject, period), baseline))
        return left

    async def close(self) -> None:
        await self._redis.aclose()

    def _keys(self, subject: str, period: str) -> list[str]:
        return [self.names.budget(subject, period), self.names.budget_holds(subject, period)]

    async def _budget(self, subject: str, period: str, args: list[ScriptArg], spent: str) -> tuple[int, int]:
        with guard(f"budget {args[0]}"):
            raw = cast(
                list[Any], await self._scripts.budget(keys=self._keys(subject, period), args=[*args, spent])
            )
        return int(raw[0]), int(raw[1])
