"""The limits contract (limits/protocol.py): what a `Limits` accepts and when it needs a window."""

from __future__ import annotations

import pytest

from gpucloud.limits.protocol import Limits


def test_none_is_unlimited_and_zero_is_a_limit() -> None:
    assert not Limits().windowed
    assert not Limits(max_concurrency=3).windowed
    assert Limits(rpm=0).windowed
    assert Limits(tpm=10).windowed


@pytest.mark.parametrize("field", ["rpm", "tpm", "max_concurrency"])
@pytest.mark.parametrize("value", [-1, 1.5, True, "10"])
def test_limits_are_non_negative_integers(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"{field} must be a non-negative integer or None"):
        Limits(**{field: value})  # type: ignore[arg-type]
