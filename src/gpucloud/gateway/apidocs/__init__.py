"""Interactive API docs: `/openapi.json` (the schema) and `/docs` (Swagger UI), both public.

The schema holds no secret, so neither needs a key; `GPUCLOUD_API_DOCS=false` turns both off (then
they answer the API's own 404). Swagger UI is served from files shipped inside this package
(`swagger-ui/`, swagger-ui-dist, Apache-2.0, with its LICENSE and NOTICE): the page loads nothing
from another origin, and its Content-Security-Policy allows only this one. The page's script is a
file too (`init.js`), so no inline script is needed.

The served schema is FastAPI's, plus a `bearer` security scheme marked on every operation that the
permission table (`gateway.permissions`) does not make public, so "Authorize" in the UI sends the
key where it is needed. The marking walks the schema's own paths, so routes of nested routers are
covered as well as top-level ones.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response

from gpucloud.errors import NotFound
from gpucloud.gateway.permissions import ROUTES, Need

HERE = Path(__file__).resolve().parent
STATIC = {
    "swagger-ui-bundle.js": (HERE / "swagger-ui" / "swagger-ui-bundle.js", "text/javascript"),
    "swagger-ui.css": (HERE / "swagger-ui" / "swagger-ui.css", "text/css"),
    "init.js": (HERE / "init.js", "text/javascript"),
    "LICENSE": (HERE / "swagger-ui" / "LICENSE", "text/plain"),
    "NOTICE": (HERE / "swagger-ui" / "NOTICE", "text/plain"),
}
# The UI draws data: SVG icons and sets element styles from script; everything else is this origin.
CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
HEADERS = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer", "x-frame-options": "DENY"}
PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} — API docs</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-schema-url="/openapi.json"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script src="/docs/static/init.js"></script>
</body>
</html>
"""


def install(app: FastAPI, *, enabled: bool) -> None:
    """Make `app.openapi()` the documented schema of the API's routes (all included in `app`
    before this); serve it and the UI when `enabled`."""
    app.openapi = lambda: documented_schema(app)  # type: ignore[method-assign]
    if not enabled:
        return
    hidden: dict[str, Any] = {"methods": ["GET"], "include_in_schema": False}
    app.add_api_route("/openapi.json", _schema_endpoint(app), **hidden)
    app.add_api_route("/docs", _page_endpoint(app.title), **hidden)
    app.add_api_route("/docs/static/{name}", _static, **hidden)


def documented_schema(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema with the bearer scheme on each authenticated operation (cached on the app)."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})["bearer"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key (`gc_…`), or on `/api` routes a user's access token (sign in with "
        "`POST /api/auth/login`); worker endpoints take a worker token (`gcw_…`).",
    }
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            # The permission table says who may call it: all but public routes need a credential.
            if ROUTES.get((method.upper(), path), Need.ADMIN) is not Need.PUBLIC:
                operation["security"] = [{"bearer": []}]
    app.openapi_schema = schema
    return schema


def _schema_endpoint(app: FastAPI) -> Callable[[], Any]:
    async def openapi_json() -> Response:
        return JSONResponse(documented_schema(app), headers={"cache-control": "no-cache"})

    return openapi_json


def _page_endpoint(title: str) -> Callable[[], Any]:
    page = PAGE.format(title=title)

    async def docs_page() -> Response:
        headers = {**HEADERS, "content-security-policy": CSP, "cache-control": "no-cache"}
        return HTMLResponse(page, headers=headers)

    return docs_page


async def _static(name: str) -> Response:
    found = STATIC.get(name)
    if found is None:
        raise NotFound(f"No documentation file {name!r}.")
    path, media_type = found
    return FileResponse(path, media_type=media_type, headers={**HEADERS, "cache-control": "no-cache"})
