"""The gateway's input policy at the edge: what no route ever receives.

The database is the strictest reader of a request: PostgreSQL refuses a NUL character in any
text column, and columns have lengths. So, before any route runs (`edge_problem`, called by the
request middleware):

- the path and every query parameter (name and value) carry no control character (C0 or DEL)
  and stay within `MAX_PATH` / `MAX_QUERY_VALUE` characters;
- the headers a route reads (`Idempotency-Key`, `x-gpucloud-priority`) carry none either;
- `x-request-id` is not checked here: a caller's id that is not short and plain is replaced by
  a generated one (`middleware`), never refused.

Bodies are checked by their models: `CleanInput` (`gpucloud.clean_input`) is the base of every
admin and worker API body and refuses NUL and control characters (tab, newline and carriage
return aside) in any string, naming the field; the OpenAI bodies check the fields that are
stored as columns (`model`, `user`). Prompts may hold any character: they are stored as JSON,
which escapes them.
Each refusal is a 400 whose `param` names the parameter.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from starlette.types import Scope

from gpucloud.clean_input import REFUSED, CleanInput, has_control, refuse_control

# The body rule lives in `clean_input`, shared with the worker API's bodies (`wire`); the gateway
# re-exports it as part of its input policy.
__all__ = ["MAX_PATH", "MAX_QUERY_VALUE", "CleanInput", "edge_problem", "has_control", "refuse_control"]

MAX_PATH = 2048
MAX_QUERY_VALUE = 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CHECKED_HEADERS = {b"idempotency-key": "Idempotency-Key", b"x-gpucloud-priority": "x-gpucloud-priority"}


def edge_problem(scope: Scope) -> tuple[str, str] | None:
    """(message, param) for the first thing the policy refuses in a request, or None."""
    path = str(scope.get("path", ""))
    if len(path) > MAX_PATH or _CONTROL.search(path):
        return f"The request path is longer than {MAX_PATH} characters or {REFUSED}.", "path"
    raw = scope.get("query_string", b"").decode("latin-1")
    if raw:
        try:
            pairs = parse_qsl(raw, keep_blank_values=True, errors="strict", max_num_fields=200)
        except (ValueError, UnicodeDecodeError):
            return "The query string could not be parsed (bad percent-encoding or too many fields).", "query"
        for name, value in pairs:
            if _CONTROL.search(name) or _CONTROL.search(value) or len(value) > MAX_QUERY_VALUE:
                param = name if not _CONTROL.search(name) else "query"
                return f"Query parameter '{param}' is over {MAX_QUERY_VALUE} characters or {REFUSED}.", param
    for header, value in scope.get("headers", []):
        label = _CHECKED_HEADERS.get(header)
        if label is not None and _CONTROL.search(value.decode("latin-1")):
            return f"Header {label} {REFUSED}.", label
    return None
