"""Argument checks shared by the limit and budget stores (limits/validation.py)."""

from __future__ import annotations

import pytest

from gpucloud.limits.validation import MAX_AMOUNT, check_amount, check_ids, check_tokens


def test_ids_are_non_empty_strings() -> None:
    check_ids("key", "req")
    with pytest.raises(ValueError, match="subject"):
        check_ids("", "req")
    with pytest.raises(ValueError, match="request_id"):
        check_ids("key", "")
    with pytest.raises(ValueError, match="subject"):
        check_ids(1, "req")  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [0, 1, MAX_AMOUNT])
def test_amounts_in_range_pass(value: int) -> None:
    check_amount("usd", value)
    check_tokens(value)


@pytest.mark.parametrize("value", [-1, MAX_AMOUNT + 1, 1.0, True, "3", None])
def test_amounts_out_of_range_or_not_integers_fail(value: object) -> None:
    with pytest.raises(ValueError, match="usd must be an integer between 0 and 9007199254740991"):
        check_amount("usd", value)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tokens must be"):
        check_tokens(value)  # type: ignore[arg-type]
