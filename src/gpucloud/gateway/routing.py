"""`FastRoute`: the route class of the inference routes, which parses JSON bodies with orjson.

FastAPI parses a JSON body with the standard library's `json` before pydantic validates it; orjson
parses the same bytes several times faster, and its decode error is a `json.JSONDecodeError`, so
FastAPI's handling of a malformed body (a 400 naming the body) is unchanged. The body is validated
once, by the route's pydantic model; what leaves the gateway is built from that model.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response


class _OrjsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = orjson.loads(await self.body())
        return self._json


class FastRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def parse_with_orjson(request: Request) -> Response:
            return await handler(_OrjsonRequest(request.scope, request.receive))

        return parse_with_orjson
