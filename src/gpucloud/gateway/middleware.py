"""Pure-ASGI middleware: a request id on every request and response, the edge's input policy
(`gateway.inputs`), the body-size bound, and one log line plus metrics per request once its
response body has ended.

Pure ASGI (not `BaseHTTPMiddleware`) so that streamed responses pass through untouched and the
per-request cost stays a few attribute writes.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gpucloud.gateway.inputs import edge_problem
from gpucloud.logs import looks_like_secret
from gpucloud.observability.context import bind_request
from gpucloud.observability.metrics import Metrics, model_label
from gpucloud.observability.tracing import Tracer

# A caller's own request id is kept when it is short and plain (it is logged, and stored with the
# job in a 100-character column) and does not look like a secret; otherwise one is generated.
_CALLER_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,100}$")
access_log = logging.getLogger("gpucloud.access")
UPLOAD_PATHS = frozenset({"/v1/files"})


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"Request body is larger than {limit} bytes.")
        self.limit = limit


@dataclass(slots=True)
class RequestFacts:
    """What the handlers learn about a request, for its log line (never a secret)."""

    key_id: str | None = None
    model: str | None = None
    endpoint: str | None = None
    stream: bool | None = None
    job_id: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class RequestContextMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        metrics: Metrics,
        tracer: Tracer,
        max_upload_bytes: int | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        # File uploads (POST /v1/files) carry whole files: their own, larger bound.
        self.max_upload_bytes = max_upload_bytes or max_body_bytes
        self.metrics = metrics
        self.tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        bind_request(request_id)
        facts = RequestFacts()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["facts"] = facts
        header = (b"x-request-id", request_id.encode())
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        with self.tracer.span(
            f"{scope.get('method', '')} {scope.get('path', '')}", request_id=request_id
        ) as span:
            try:
                problem = edge_problem(scope)
                if problem is None:
                    await self.app(scope, self._bounded(scope, receive), send_with_id)
                else:
                    await _refuse(send_with_id, *problem)
            finally:
                self._finish(scope, status, time.perf_counter() - started, facts)
                if span is not None:
                    span.set_attribute("http.response.status_code", status)
                    for key, value in asdict(facts).items():
                        if value is not None:
                            span.set_attribute(f"gpucloud.{key}", value)

    def _finish(self, scope: Scope, status: int, seconds: float, facts: RequestFacts) -> None:
        route = getattr(scope.get("route"), "path", None) or "unmatched"
        method = str(scope.get("method", ""))
        self.metrics.series(self.metrics.http_requests, route, method, str(status)).inc()
        self.metrics.series(self.metrics.http_seconds, route).observe(seconds)
        if facts.model is not None:
            self.metrics.series(
                self.metrics.inference_requests,
                model_label(facts.model, _serves(scope)),
                facts.endpoint or "",
                str(bool(facts.stream)).lower(),
                str(status),
            ).inc()
        if not access_log.isEnabledFor(logging.INFO):
            return  # the line's fields cost more than the check
        extra = {k: v for k, v in asdict(facts).items() if v is not None}
        access_log.info(
            "%s %s %d %.1fms",
            method,
            scope.get("path", ""),
            status,
            seconds * 1000,
            extra={
                "method": method,
                "route": route,
                "status": status,
                "latency_ms": round(seconds * 1000, 2),
                **extra,
            },
        )

    def _bounded(self, scope: Scope, receive: Receive) -> Receive:
        limit = self.max_upload_bytes if scope.get("path") in UPLOAD_PATHS else self.max_body_bytes
        declared_too_large = any(
            name == b"content-length" and value.isdigit() and int(value) > limit
            for name, value in scope.get("headers", [])
        )
        seen = 0

        async def receive_bounded() -> Message:
            nonlocal seen
            if declared_too_large:
                raise BodyTooLarge(limit)  # refuse before reading a byte of it
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        return receive_bounded


def _serves(scope: Scope) -> Callable[[str], bool] | None:
    """The model registry's `serves`, once the app's runtime is up (None before)."""
    runtime = getattr(getattr(scope.get("app"), "state", None), "runtime", None)
    registry = getattr(runtime, "registry", None)
    return None if registry is None else registry.serves


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            candidate: str = value.decode("latin-1")
            if _CALLER_ID.match(candidate) and not looks_like_secret(candidate):
                return candidate
            break
    return f"req_{uuid.uuid4().hex}"


async def _refuse(send: Send, message: str, param: str) -> None:
    """A 400 for a request the edge's input policy refuses (`gateway.inputs`), before any route."""
    error = {"message": message, "type": "invalid_request_error", "param": param, "code": "invalid_value"}
    body = orjson.dumps({"error": error})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 400, "headers": headers})
    await send({"type": "http.response.body", "body": body})
