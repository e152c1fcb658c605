"""`AuthThrottle` with the in-process store: fixed windows per address, blocks cached locally."""

from __future__ import annotations

import pytest

from gpucloud.errors import AuthenticationFailed, RateLimited
from gpucloud.limits.auth_throttle import AuthThrottle, MemoryFailures


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def refuse(secret: str) -> str:
    raise AuthenticationFailed("Incorrect API key provided.")


async def accept(secret: str) -> str:
    return "principal"


async def test_the_limit_blocks_the_address_until_its_window_ends() -> None:
    clock = Clock()
    throttle = AuthThrottle(MemoryFailures(clock), max_failures=3, window_s=60, clock=clock)
    for _ in range(3):
        with pytest.raises(AuthenticationFailed):
            await throttle.guard("a", refuse, "x")
    clock.now += 10
    with pytest.raises(RateLimited) as caught:
        await throttle.guard("a", accept, "good")
    assert caught.value.retry_after_s == pytest.approx(50)
    assert await throttle.guard("b", accept, "good") == "principal"
    clock.now += 51
    assert await throttle.guard("a", accept, "good") == "principal"


async def test_failures_in_separate_windows_do_not_add_up() -> None:
    clock = Clock()
    throttle = AuthThrottle(MemoryFailures(clock), max_failures=3, window_s=60, clock=clock)
    for _ in range(2):
        with pytest.raises(AuthenticationFailed):
            await throttle.guard("a", refuse, "x")
    clock.now += 61
    for _ in range(2):
        with pytest.raises(AuthenticationFailed):
            await throttle.guard("a", refuse, "x")
    throttle.check("a")  # not blocked: 2 + 2 failures, in two windows
