"""The gateway's input policy at the edge: what no route ever receives.

The database is the strictest reader of a request: PostgreSQL refuses a NUL character in any
text column, and columns have lengths. So, before any route runs (`edge_problem`, called by the
request middleware):

- the path and every query parameter (name and value) carry no control character (C0 or DEL)
  and stay within `MAX_PATH` / `MAX_QUERY_VALUE` characters;
- the headers a route reads (`Idempotency-Key`, `x-gpucloud-priority`) carry none either;
- `x-request-id` is not checked here: a caller's id that is not short and plain is replaced by
  a generated one (`middleware`), never refused.

Bodies are checked by their models: `CleanInput` is the base of every admin and worker API body
and refuses NUL and control characters (tab, newline and carriage return aside) in any string,
naming the field; the OpenAI bodies check the fields that are stored as columns (`model`, `user`).
Prompts may hold any character: they are stored as JSON, which escapes them.
Each refusal is a 400 whose `param` names the parameter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from pydantic import BaseModel, ConfigDict, field_validator
from starlette.types import Scope

MAX_PATH = 2048
MAX_QUERY_VALUE = 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # tab, LF and CR allowed
_CHECKED_HEADERS = {b"idempotency-key": "Idempotency-Key", b"x-gpucloud-priority": "x-gpucloud-priority"}
_REFUSED = "must not contain NUL or other control characters"


def edge_problem(scope: Scope) -> tuple[str, str] | None:
    """(message, param) for the first thing the policy refuses in a request, or None."""
    path = str(scope.get("path", ""))
    if len(path) > MAX_PATH or _CONTROL.search(path):
        return f"The request path is longer than {MAX_PATH} characters or {_REFUSED}.", "path"
    raw = scope.get("query_string", b"").decode("latin-1")
    if raw:
        try:
            pairs = parse_qsl(raw, keep_blank_values=True, errors="strict", max_num_fields=200)
        except (ValueError, UnicodeDecodeError):
            return "The query string could not be parsed (bad percent-encoding or too many fields).", "query"
        for name, value in pairs:
            if _CONTROL.search(name) or _CONTROL.search(value) or len(value) > MAX_QUERY_VALUE:
                param = name if not _CONTROL.search(name) else "query"
                return f"Query parameter '{param}' is over {MAX_QUERY_VALUE} characters or {_REFUSED}.", param
    for header, value in scope.get("headers", []):
        label = _CHECKED_HEADERS.get(header)
        if label is not None and _CONTROL.search(value.decode("latin-1")):
            return f"Header {label} {_REFUSED}.", label
    return None


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
        raise ValueError(_REFUSED)
    return value


class CleanInput(BaseModel):
    """Base of the API's own request bodies: unknown fields refused, no control characters."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value: Any) -> Any:
        return refuse_control(value)
