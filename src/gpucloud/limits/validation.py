"""Argument checks shared by every limit and budget store, so both kinds reject the same input.

Amounts are integers (tokens, micro-dollars) and stay below 2**53: the Redis scripts do their
arithmetic in Lua numbers (doubles), which are exact only up to there.
"""

from __future__ import annotations

# The largest amount the Redis scripts compute with exactly (Lua numbers are doubles).
MAX_AMOUNT = 2**53 - 1


def check_ids(subject: str, request_id: str) -> None:
    """Subjects and request ids are non-empty strings (they become Redis key parts and members)."""
    if not isinstance(subject, str) or not subject:
        raise ValueError("subject must be a non-empty string")
    if not isinstance(request_id, str) or not request_id:
        raise ValueError("request_id must be a non-empty string")


def check_tokens(tokens: int) -> None:
    check_amount("tokens", tokens)


def check_amount(name: str, value: int) -> None:
    """`value` is an integer in [0, MAX_AMOUNT] (no floats: money is counted in micro-units)."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_AMOUNT:
        raise ValueError(f"{name} must be an integer between 0 and {MAX_AMOUNT}")
