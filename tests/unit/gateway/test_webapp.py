"""The dashboard's static serving (`gateway/webapp.py`): SPA fallback, caching, CSP, and that it
never shadows an API path, inside the real `create_app` (no runtime needed for these paths)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from gpucloud.gateway import webapp
from gpucloud.gateway.app import create_app
from gpucloud.settings import Settings

INDEX = (
    '<!doctype html><html><head><script type="module" src="/assets/index-abc123.js"></script></head></html>'
)


def _dist(tmp_path: Path) -> Path:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text(INDEX)
    (dist / "assets" / "index-abc123.js").write_text("console.log('app')")
    (dist / "robots.txt").write_text("User-agent: *\n")
    (tmp_path / "secret.txt").write_text("outside the build")
    return dist


def _app(dist: Path, *, api_docs: bool = False) -> FastAPI:
    app = create_app(Settings(api_docs=api_docs))
    # The real app mounts the packaged build; point that same route at the test build instead.
    for route in app.router.routes:
        if isinstance(route, webapp.WebApp):
            route.dist = dist
    return app


async def _get(app: FastAPI, path: str, method: str = "GET") -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.request(method, path)


async def test_pages_get_index_with_csp_and_no_cache(tmp_path: Path) -> None:
    app = _app(_dist(tmp_path))
    for path in ("/", "/keys", "/usage/deeper/page", "/apix"):
        r = await _get(app, path)
        assert r.status_code == 200, path
        assert r.text == INDEX
        assert r.headers["content-type"].startswith("text/html")
        assert r.headers["cache-control"] == "no-cache"
        csp = r.headers["content-security-policy"]
        assert "default-src 'self'" in csp
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-request-id"]  # inside the request middleware like any route


async def test_hashed_assets_are_cached_for_long(tmp_path: Path) -> None:
    app = _app(_dist(tmp_path))
    r = await _get(app, "/assets/index-abc123.js")
    assert r.status_code == 200
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "javascript" in r.headers["content-type"]
    head = await _get(app, "/assets/index-abc123.js", "HEAD")
    assert head.status_code == 200
    assert head.content == b""
    other = await _get(app, "/robots.txt")
    assert other.headers["cache-control"] == "no-cache"


async def test_missing_asset_is_a_plain_404_not_html(tmp_path: Path) -> None:
    r = await _get(_app(_dist(tmp_path)), "/assets/index-old.js")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/plain")


async def test_no_path_escapes_the_build(tmp_path: Path) -> None:
    app = _app(_dist(tmp_path))
    for path in ("/../secret.txt", "/%2e%2e/secret.txt", "/assets/../../secret.txt"):
        r = await _get(app, path)
        assert "outside the build" not in r.text, path


@pytest.mark.parametrize(
    "path", ["/v1/nope", "/v1", "/api/nope", "/api", "/metrics/x", "/docs", "/openapi.json", "/redoc"]
)
async def test_api_paths_are_never_shadowed(tmp_path: Path, path: str) -> None:
    r = await _get(_app(_dist(tmp_path)), path)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


async def test_the_api_docs_are_not_shadowed_when_on(tmp_path: Path) -> None:
    app = _app(_dist(tmp_path), api_docs=True)
    docs = await _get(app, "/docs")
    assert docs.status_code == 200
    assert "/docs/static/swagger-ui-bundle.js" in docs.text
    schema = await _get(app, "/openapi.json")
    assert schema.json()["openapi"].startswith("3.1")


async def test_wrong_method_on_api_route_stays_405(tmp_path: Path) -> None:
    app = _app(_dist(tmp_path))
    r = await _get(app, "/v1/chat/completions")
    assert r.status_code == 405
    assert r.json()["error"]["code"] == "method_not_allowed"
    post = await _get(app, "/keys", "POST")  # the app answers GET/HEAD only
    assert post.status_code == 404
    assert post.json()["error"]["code"] == "not_found"


async def test_not_built_says_how_to_build(tmp_path: Path) -> None:
    r = await _get(_app(tmp_path / "missing"), "/")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/plain")
    assert "make web" in r.text


def test_the_app_is_not_in_the_api_schema() -> None:
    schema = create_app(Settings()).openapi()
    assert all(not path.startswith("/{") for path in schema["paths"])
    assert "/" not in schema["paths"]
