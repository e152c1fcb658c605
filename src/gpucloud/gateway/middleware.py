"""Pure-ASGI middleware: a request id on every request and response, and the body-size bound.

Pure ASGI (not `BaseHTTPMiddleware`) so that streamed responses pass through untouched and the
per-request cost stays a few attribute writes.
"""

from __future__ import annotations

import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# A caller's own request id is kept when it is short and plain, so it can be logged safely.
_CALLER_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"Request body is larger than {limit} bytes.")
        self.limit = limit


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        await self.app(scope, self._bounded(scope, receive), send_with_id)

    def _bounded(self, scope: Scope, receive: Receive) -> Receive:
        limit = self.max_body_bytes
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                declared_too_large = True
                break
        else:
            declared_too_large = False
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


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            candidate: str = value.decode("latin-1")
            if _CALLER_ID.match(candidate):
                return candidate
            break
    return f"req_{uuid.uuid4().hex}"
