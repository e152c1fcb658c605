"""The Redis stores' own logic (limits/redis.py): errors become `LimitUnavailable` without the URL,
and the ADMIT script's reply is decoded. The stores' behaviour against Redis itself is covered by
tests/integration/test_limits_redis.py."""

from __future__ import annotations

import math
import socket

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from gpucloud.limits import LimitUnavailable, RedisBudgetStore, RedisLimitStore
from gpucloud.limits.redis import _window_state, guard


def test_a_server_error_keeps_its_message() -> None:
    expected = "redis refused admit: ResponseError: OOM command not allowed"
    with pytest.raises(LimitUnavailable, match=expected), guard("admit"):
        raise ResponseError("OOM command not allowed")


def test_a_connection_error_names_only_its_class() -> None:
    with pytest.raises(LimitUnavailable) as caught, guard("settle"):
        raise RedisConnectionError("Error connecting to redis://:hunter2@10.0.0.1:6379")
    assert str(caught.value) == "redis is unavailable (settle: ConnectionError)"
    assert "hunter2" not in str(caught.value)


def test_other_errors_pass_through() -> None:
    with pytest.raises(KeyError), guard("admit"):
        raise KeyError("not redis")


def test_the_admit_reply_is_decoded() -> None:
    refused = _window_state([0, 2, -1, 4, 900, 1_000_000, 2_500_000])
    assert (refused.allowed, refused.reason, refused.retry_after_s) == (False, "tokens", math.inf)
    assert (refused.requests, refused.tokens) == (4, 900)
    assert (refused.reset_requests_s, refused.reset_tokens_s) == (1.0, 2.5)
    allowed = _window_state([1, 0, 5_000_000, 1, 0, 0, -1])
    assert (allowed.allowed, allowed.reason, allowed.retry_after_s) == (True, None, 0.0)
    assert allowed.reset_tokens_s == math.inf


def test_leases_must_be_positive() -> None:
    with pytest.raises(ValueError, match="slot_ttl_s"):
        RedisLimitStore("redis://127.0.0.1:6379/0", slot_ttl_s=0)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_argument_errors_come_before_any_connection() -> None:
    store = RedisLimitStore(f"redis://:secret@127.0.0.1:{closed_port()}/0")
    try:
        with pytest.raises(ValueError, match="request_id"):
            await store.settle("k", "", 1)
        with pytest.raises(LimitUnavailable) as caught:
            await store.release("k", "r")
        assert "secret" not in str(caught.value)
    finally:
        await store.close()


async def test_budget_arguments_are_checked_before_redis() -> None:
    budgets = RedisBudgetStore(f"redis://127.0.0.1:{closed_port()}/0")

    async def baseline() -> int:
        return 0

    try:
        with pytest.raises(ValueError, match="amount"):
            await budgets.reserve("k", "p", 10, -1, "r", 60, baseline)
    finally:
        await budgets.close()
