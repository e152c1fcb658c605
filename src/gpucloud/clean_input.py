"""The rule every body the HTTP API takes obeys: no NUL or other control characters in any
string (tab, newline and carriage return aside), and no unknown fields — `CleanInput`, the base
of the gateway's request models (`gateway.inputs`) and of the worker API's bodies (`wire`).

A module of its own, importing pydantic only, so that `gpucloud worker` (which builds the worker
API's bodies) can apply the rule without loading the gateway. PostgreSQL refuses a NUL in any
text column, so the rule is checked where a body is parsed, naming the field (a 400).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

REFUSED = "must not contain NUL or other control characters"
_CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # tab, LF and CR allowed


def has_control(value: object) -> bool:
    """Whether a parsed body value (strings, lists, dicts: keys too) holds a refused character."""
    if isinstance(value, str):
        return _CONTROL_IN_TEXT.search(value) is not None
    if isinstance(value, Mapping):
        return any(has_control(k) or has_control(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(has_control(item) for item in value)
    return False


def refuse_control(value: Any) -> Any:
    """A field validator's body: the value unchanged, or ValueError (a 400 naming the field)."""
    if has_control(value):
        raise ValueError(REFUSED)
    return value


class CleanInput(BaseModel):
    """Base of the API's own request bodies: unknown fields refused, no control characters."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value: Any) -> Any:
        return refuse_control(value)
