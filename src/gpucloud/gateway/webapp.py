"""The operator dashboard (`web/`, built into `gpucloud/webapp/dist`) served at `/`.

The dashboard is a static single-page app: it holds no secret, so its files need no key, and it
talks to the server only through the public HTTP API, whose routes keep their own deny-by-default
dependencies. It is one routing entry placed after every API route that matches only `GET`/`HEAD`
outside the API's prefixes, so it never shadows `/v1`, `/api`, `/metrics`, `/health`, `/ready`,
`/docs` or `/openapi.json`: there an unknown path or a wrong method still gets the API's own 404
or 405 envelope. It is not part of the OpenAPI schema.

- a file of the build is served as is; Vite's content-hashed files under `/assets/` are cached for
  a year (`immutable`), everything else is revalidated on each load (`no-cache`);
- any other path is a page of the app (`/keys`, `/usage`, …) and gets `index.html` (SPA fallback),
  except a missing `/assets/…` file, which is a plain 404 rather than HTML in place of a script;
- HTML carries a strict Content-Security-Policy (same origin only, no inline script or style);
- without a build, the app's paths answer 404 with a plain message saying how to build it.
"""

from __future__ import annotations

from pathlib import Path

from starlette.datastructures import URLPath
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import Receive, Scope, Send

import gpucloud

DIST = Path(gpucloud.__file__).resolve().parent / "webapp" / "dist"

# Paths that belong to the API (and to documentation it might serve): never the app's.
RESERVED = ("/v1", "/api", "/metrics", "/health", "/ready", "/docs", "/redoc", "/openapi.json")

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
_HARDENING = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}
IMMUTABLE = "public, max-age=31536000, immutable"
NOT_BUILT = (
    "gpucloud: the dashboard is not built.\n\n"
    "Build it from a checkout with `make web` (npm ci and npm run build in web/), or run\n"
    "`make run`, which builds it when it is missing. The API is served as usual under /v1 and /api.\n"
)


def is_reserved(path: str) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in RESERVED)


class WebApp(BaseRoute):
    """The routing entry that serves the built dashboard (see the module docstring)."""

    path = "/{page:path}"  # for the access log's and metrics' route label

    def __init__(self, dist: Path = DIST) -> None:
        self.dist = dist

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http" or scope.get("method") not in ("GET", "HEAD"):
            return Match.NONE, {}
        path: str = scope.get("path", "/")
        if is_reserved(path):
            return Match.NONE, {}
        return Match.FULL, {"route": self}

    def url_path_for(self, name: str, /, **path_params: object) -> URLPath:
        raise NoMatchFound(name, {k: str(v) for k, v in path_params.items()})

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = self.respond(str(scope.get("path", "/")))
        await response(scope, receive, send)

    def respond(self, path: str) -> Response:
        index = self.dist / "index.html"
        if not index.is_file():
            return PlainTextResponse(NOT_BUILT, status_code=404, headers={"cache-control": "no-store"})
        found = self._file(path)
        if found is not None and found != index:
            immutable = found.parent == (self.dist / "assets").resolve()
            headers = {**_HARDENING, "cache-control": IMMUTABLE if immutable else "no-cache"}
            if found.suffix == ".html":
                headers["content-security-policy"] = CSP
            return FileResponse(found, headers=headers)
        if path.startswith("/assets/"):
            # A stale page asking for a file of an older build: a plain 404, never HTML as script.
            return PlainTextResponse("Not found.", status_code=404, headers={"cache-control": "no-store"})
        return FileResponse(
            index,
            media_type="text/html",
            headers={**_HARDENING, "cache-control": "no-cache", "content-security-policy": CSP},
        )

    def _file(self, path: str) -> Path | None:
        """The build's file at `path`, or None; never anything outside the build directory."""
        relative = path.lstrip("/")
        if not relative or "\x00" in relative:
            return None
        root = self.dist.resolve()
        try:
            candidate = (root / relative).resolve()
        except (OSError, ValueError):
            return None
        if not candidate.is_relative_to(root) or not candidate.is_file():
            return None
        return candidate


def mount(routes: list[BaseRoute], dist: Path = DIST) -> None:
    """Add the dashboard after the API's routes (it matches only what they leave)."""
    routes.append(WebApp(dist))
