"""The one place where errors become HTTP: status, OpenAI envelope, `Retry-After`.

Every non-2xx body is `{"error": {"message", "type", "param", "code"}}` (docs/architecture.md §5). Validation
errors are 400 with `param` naming the field; anything unexpected is a 500 whose body says only
that it happened and which request id to quote — never a trace or a path.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from gpucloud import errors
from gpucloud.gateway.middleware import BodyTooLarge

log = logging.getLogger(__name__)

_STATUS: list[tuple[type[errors.GpucloudError], int]] = [
    (errors.AuthenticationFailed, 401),
    (errors.PermissionDenied, 403),
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.Overloaded, 429),
    (errors.RateLimited, 429),
    (errors.QuotaExceeded, 429),
    (errors.Unavailable, 503),
    (errors.InvalidRequest, 400),
    (errors.EngineFailed, 500),
]


def status_of(exc: errors.GpucloudError) -> int:
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def envelope(
    message: str, error_type: str, *, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def error_response(exc: errors.GpucloudError) -> Response:
    headers: dict[str, str] = dict(exc.headers)
    if isinstance(exc, errors.QuotaExceeded):
        headers["x-should-retry"] = "false"  # the official SDKs honour it: no retry can succeed
    if isinstance(exc, errors.RetryableError):
        headers["retry-after"] = str(math.ceil(exc.retry_after_s))
    body = envelope(exc.message, exc.error_type, param=exc.param, code=exc.code)
    return Response(
        orjson.dumps(body), status_code=status_of(exc), media_type="application/json", headers=headers
    )


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


# The tags pydantic puts in an error's location for the member of a union that failed.
_UNION_TAGS = frozenset({"str", "int", "float", "bool", "dict", "list", "none", "bytes"})


def param_of(loc: tuple[Any, ...]) -> str | None:
    """`("body", "messages", 0, "content")` → `"messages[0].content"`."""
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif "[" in str(part) or "-" in str(part) or part in _UNION_TAGS or str(part)[:1].isupper():
            # pydantic union tags ("list[str]", "str", a model's class name): not in the path
            continue
        else:
            text += f".{part}" if text else str(part)
    return text or None


async def _on_domain(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.GpucloudError)
    if isinstance(exc, errors.RetryableError) or exc.code == "insufficient_quota":
        metrics = getattr(request.app.state, "metrics", None)
        if metrics is not None:  # refusals by reason: queue_full, rate limits, no worker, queue down
            metrics.rejections.labels(reason=exc.code or type(exc).__name__).inc()
    return error_response(exc)


async def _on_validation(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "Invalid request."}
    loc = tuple(first.get("loc", ()))
    if first.get("type") == "json_invalid":
        message, param = "We could not parse the JSON body of your request.", None
    elif first.get("type") == "missing" and loc == ("body",):
        message, param = "The request needs a JSON body.", None
    elif first.get("type") == "extra_forbidden":
        # A field the request models lack: OpenAI's parameters this platform does not implement
        # (and misspellings) are refused by name, as an engine's missing capability is.
        param = param_of(loc)
        message = f"Unsupported parameter: '{param}' is not supported."
        return _json(
            400, envelope(message, "invalid_request_error", param=param, code="unsupported_parameter")
        )
    else:
        param = param_of(loc)
        detail = str(first.get("msg", "is invalid"))
        message = f"Invalid value for '{param}': {detail}." if param else f"{detail}."
    return _json(400, envelope(message, "invalid_request_error", param=param, code="invalid_value"))


async def _on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if isinstance(exc.__cause__, BodyTooLarge):
        # FastAPI turns any error while it reads the body into "400 error parsing the body".
        return await _on_too_large(request, exc.__cause__)
    if exc.status_code == 404:
        body = envelope("Not found: no such route.", "invalid_request_error", code="not_found")
    elif exc.status_code == 405:
        body = envelope(
            "Method not allowed for this route.", "invalid_request_error", code="method_not_allowed"
        )
    else:
        body = envelope(str(exc.detail), "invalid_request_error")
    return _json(exc.status_code, body, dict(exc.headers or {}))


async def _on_too_large(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, BodyTooLarge)
    return _json(413, envelope(str(exc), "invalid_request_error", code="request_too_large"))


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    request_id = getattr(request.state, "request_id", "")
    log.exception("unhandled error", extra={"request_id": request_id})
    message = f"The server had an error while processing your request (request id {request_id})."
    return _json(500, envelope(message, "server_error", code="internal_error"))


def install(app: FastAPI) -> None:
    app.add_exception_handler(errors.GpucloudError, _on_domain)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(BodyTooLarge, _on_too_large)
    app.add_exception_handler(Exception, _on_unexpected)
