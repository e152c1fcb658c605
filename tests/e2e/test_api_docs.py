"""`/docs` in Chromium: Swagger UI renders the gateway's own schema from files served by the gateway,
with no request to any other origin and no CSP violation, and "Authorize" + "Try it out" calls the
live API with the key typed in. A screenshot goes to tests/e2e/artifacts/api-docs.png.

The dashboard's build is not needed here: the page is the package's, not the app's.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, expect

from tests.e2e.conftest import ARTIFACTS
from tests.support import Server, make_server

TIMEOUT_MS = 20_000


@pytest.fixture(scope="module")
def docs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = make_server(tmp_path_factory.mktemp("api-docs"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _open(browser: Browser, server: Server, requests: list[str], console: list[str]) -> Page:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(TIMEOUT_MS)
    page = ctx.new_page()

    def seen(request: Request) -> None:
        requests.append(request.url)

    def said(msg: ConsoleMessage) -> None:
        if msg.type in ("error", "warning"):
            console.append(msg.text)

    page.on("request", seen)
    page.on("console", said)
    page.on("pageerror", lambda err: console.append(f"pageerror: {err}"))
    page.goto(server.base_url + "/docs")
    return page


def test_docs_render_from_this_origin_only(browser: Browser, docs_server: Server) -> None:
    requests: list[str] = []
    console: list[str] = []
    page = _open(browser, docs_server, requests, console)
    chat = page.locator(".opblock-summary-path", has_text="/v1/chat/completions")
    expect(chat.first).to_be_visible()
    expect(page.locator(".opblock-summary-path", has_text="/api/deployments").first).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "api-docs.png"), full_page=False)
    origin = urlsplit(docs_server.base_url).netloc
    outside = [url for url in requests if not url.startswith("data:") and urlsplit(url).netloc != origin]
    assert outside == [], outside
    assert any(url.endswith("/openapi.json") for url in requests)
    assert not [line for line in console if "Content Security Policy" in line or "Refused" in line], console
    page.context.close()


def test_try_it_out_calls_the_api_with_the_key(browser: Browser, docs_server: Server) -> None:
    requests: list[str] = []
    console: list[str] = []
    page = _open(browser, docs_server, requests, console)
    page.get_by_role("button", name="Authorize").first.click()
    page.locator(".modal-ux input[type=text], .modal-ux input[type=password]").first.fill(
        docs_server.admin_key
    )
    page.locator(".modal-ux button.modal-btn.authorize").click()
    page.locator(".modal-ux button.modal-btn.btn-done").click()
    block = page.locator(".opblock-get", has=page.locator(".opblock-summary-path", has_text="/v1/models"))
    block.first.locator(".opblock-summary").click()
    block.first.get_by_role("button", name="Try it out").click()
    block.first.get_by_role("button", name="Execute").click()
    live = block.first.locator(".live-responses-table")
    expect(live).to_contain_text("gpucloud-sim-1")
    expect(live.locator("tr.response .response-col_status")).to_have_text("200")
    page.context.close()
