"""The dashboard end to end: a real `gpucloud serve`, the built app, headless Chromium.

One admin session walks every page (screenshots at laptop and phone widths go to
tests/e2e/artifacts/), creates a user key and sees its secret once, streams a reply in the
playground and stops another, finds the request in usage and jobs; the user key then sees no admin
page; the admin revokes it and the user's open dashboard signs itself out; a bad key is refused.
No secret may reach the browser's console.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, ViewportSize, expect

from tests.e2e.conftest import ARTIFACTS
from tests.support import SECRETS, Server

LAPTOP: ViewportSize = {"width": 1366, "height": 860}
PHONE: ViewportSize = {"width": 390, "height": 844}
ADMIN_PAGES = [
    "Overview",
    "Playground",
    "API keys",
    "Usage",
    "Deployments",
    "Workers & GPUs",
    "Jobs",
    "Batches",
    "Webhooks",
    "Members",
    "Organisation",
    "Audit log",
]
USER_PAGES = ["Playground", "Usage", "Jobs", "Batches", "Webhooks"]
TIMEOUT_MS = 15_000

console: list[str] = []


def _context(browser: Browser) -> BrowserContext:
    ctx = browser.new_context(viewport=LAPTOP)
    ctx.set_default_timeout(TIMEOUT_MS)
    ctx.grant_permissions(["clipboard-read", "clipboard-write"])
    return ctx


def _watch(page: Page) -> Page:
    def keep(msg: ConsoleMessage) -> None:
        console.append(msg.text)

    page.on("console", keep)
    page.on("pageerror", lambda err: console.append(f"pageerror: {err}"))
    return page


def _shoot(page: Page, name: str) -> None:
    """Screenshots of the current page at laptop and phone widths (a shown secret is masked)."""
    mask = [page.get_by_test_id("new-secret")]
    for width, size in (("laptop", LAPTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.wait_for_timeout(250)  # charts re-measure their container after a resize
        page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True, mask=mask)
        if width == "phone":  # nothing may widen the page past a phone's screen
            assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], name
    page.set_viewport_size(LAPTOP)


def _sign_in(page: Page, server: Server, key: str) -> None:
    page.goto(server.base_url + "/")
    page.get_by_label("API key").fill(key)
    page.get_by_label("API key").press("Enter")
    expect(page.get_by_role("navigation", name="Pages")).to_be_visible()


def _open(page: Page, title: str) -> None:
    nav = page.get_by_role("navigation", name="Pages")
    if not nav.is_visible():  # phone width: the menu folds the links away
        page.get_by_role("button", name="Menu").click()
    nav.get_by_role("link", name=title, exact=True).click()


def _nav_titles(page: Page) -> list[str]:
    links = page.get_by_role("navigation", name="Pages").get_by_role("link")
    return [t.strip() for t in links.all_inner_texts()]


@pytest.fixture(scope="module")
def admin_page(browser: Browser, dashboard_server: Server) -> Iterator[Page]:
    ctx = _context(browser)
    page = _watch(ctx.new_page())
    _sign_in(page, dashboard_server, dashboard_server.admin_key)
    yield page
    ctx.close()


state: dict[str, str] = {}


def test_the_app_is_public_and_the_api_is_not(dashboard_server: Server) -> None:
    base = dashboard_server.base_url
    page = httpx.get(f"{base}/usage")
    assert page.status_code == 200
    assert '<div id="root">' in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "default-src 'self'" in csp
    assert page.headers["cache-control"] == "no-cache"
    script = re.search(r'src="(/assets/[^"]+\.js)"', page.text)
    assert script is not None
    asset = httpx.get(base + script.group(1))
    assert asset.status_code == 200
    assert "immutable" in asset.headers["cache-control"]
    for path in ("/api/keys", "/api/stats", "/v1/models", "/metrics", "/api/deployments"):
        assert httpx.get(base + path).status_code == 401, path
    assert httpx.get(f"{base}/v1/nope").json()["error"]["code"] == "not_found"
    assert httpx.get(f"{base}/openapi.json").json()["openapi"].startswith("3.1")  # public, not the app


def test_a_bad_key_is_refused(browser: Browser, dashboard_server: Server) -> None:
    ctx = _context(browser)
    page = _watch(ctx.new_page())
    page.goto(dashboard_server.base_url + "/")
    page.get_by_label("API key").fill("gc_this-is-not-a-key")
    page.get_by_role("button", name="Sign in with key").click()
    expect(page.get_by_role("alert")).to_contain_text("This API key was not accepted")
    assert page.evaluate("localStorage.getItem('gpucloud.apiKey')") is None
    _shoot(page, "login-refused")
    ctx.close()


def test_admin_sees_every_page(admin_page: Page) -> None:
    assert _nav_titles(admin_page) == ADMIN_PAGES
    expect(admin_page.get_by_text("Requests / s").first).to_be_visible()
    expect(admin_page.locator(".stat-value").first).not_to_have_text("")


def test_playground_streams_a_reply(admin_page: Page) -> None:
    _open(admin_page, "Playground")
    expect(admin_page.get_by_label("Model")).to_have_value("gpucloud-sim-1")
    admin_page.get_by_label("Max tokens").fill("24")
    admin_page.get_by_label("Message").fill("Tell me about GPUs")
    admin_page.get_by_label("Message").press("Enter")
    expect(admin_page.get_by_role("button", name="Send")).to_be_enabled()
    reply = admin_page.get_by_test_id("reply")
    expect(reply).not_to_contain_text("The reply appears here")
    assert len(reply.inner_text().strip()) > 0
    expect(admin_page.get_by_test_id("ttft")).not_to_have_text("—")
    expect(admin_page.get_by_text(re.compile(r"\d+ in, \d+ out"))).to_be_visible()
    snippet = admin_page.get_by_test_id("snippet").inner_text()
    assert "$GPUCLOUD_KEY" in snippet
    assert admin_page.evaluate("localStorage.getItem('gpucloud.apiKey')") not in snippet
    _shoot(admin_page, "playground")


def test_playground_stop_button_ends_the_stream(admin_page: Page) -> None:
    _open(admin_page, "Playground")
    admin_page.get_by_label("Max tokens").fill("3000")
    admin_page.get_by_label("Message").fill("A very long story please")
    admin_page.get_by_role("button", name="Send").click()
    expect(admin_page.get_by_test_id("ttft")).not_to_have_text("—")
    admin_page.get_by_role("button", name="Stop").click()
    expect(admin_page.get_by_text("stopped by you")).to_be_visible()


def test_create_a_key_and_see_its_secret_once(admin_page: Page) -> None:
    _open(admin_page, "API keys")
    admin_page.get_by_role("button", name="Create a key").click()
    form = admin_page.get_by_role("form", name="Create an API key")
    form.get_by_role("button", name="Create key").click()
    expect(form.get_by_text("Give the key a name")).to_be_visible()  # validated before it is sent
    form.get_by_label("Name").fill("e2e user")
    form.get_by_label("Requests per minute").fill("600")
    form.get_by_label("Name").press("Enter")
    secret_box = admin_page.get_by_test_id("new-secret")
    expect(secret_box).to_be_visible()
    secret = secret_box.input_value()
    assert secret.startswith("gc_")
    SECRETS.add(secret)  # the session's log scan (tests/conftest.py) looks for it in the server's log
    state["user_key"] = secret
    expect(admin_page.get_by_text("shown only this once")).to_be_visible()
    _shoot(admin_page, "keys-secret")
    admin_page.get_by_role("button", name="I have stored it").click()
    admin_page.reload()
    expect(admin_page.get_by_role("cell", name="e2e user")).to_be_visible()
    assert secret not in admin_page.content()
    _shoot(admin_page, "keys")


def test_the_request_appears_in_usage_and_jobs(admin_page: Page) -> None:
    _open(admin_page, "Usage")
    table = admin_page.get_by_test_id("usage-table")
    expect(table).to_contain_text("gpucloud-sim-1")
    cost = admin_page.locator(".stat").filter(has_text="Cost")
    expect(cost).to_contain_text(re.compile(r"\$0\.0*[1-9]|\$[1-9]"))  # priced: not free
    _shoot(admin_page, "usage")
    _open(admin_page, "Jobs")
    expect(admin_page.get_by_test_id("jobs-table")).to_contain_text("completed")
    expect(admin_page.get_by_test_id("jobs-table")).to_contain_text("cancelled")
    _shoot(admin_page, "jobs")


def test_fleet_and_deployment_pages_render(admin_page: Page) -> None:
    _open(admin_page, "Workers & GPUs")
    expect(admin_page.get_by_role("heading", name="Workers & GPUs")).to_be_visible()
    expect(admin_page.get_by_text(re.compile("No worker has registered|Heartbeat")).first).to_be_visible()
    _shoot(admin_page, "workers")
    _open(admin_page, "Deployments")
    expect(admin_page.get_by_role("heading", name="Deployments", exact=True)).to_be_visible()
    admin_page.get_by_role("button", name="Create a deployment").click()
    expect(admin_page.get_by_label("Model name")).to_be_focused()
    _shoot(admin_page, "deployments")


def test_overview_charts_fill_in_by_themselves(admin_page: Page) -> None:
    _open(admin_page, "Overview")
    expect(admin_page.get_by_text("Collecting points")).to_have_count(0)  # two polls, 3 s apart
    assert admin_page.locator(".chart svg.recharts-surface").count() >= 6
    _shoot(admin_page, "overview")


def test_a_user_key_sees_no_admin_page_and_is_signed_out_when_revoked(
    browser: Browser, dashboard_server: Server, admin_page: Page
) -> None:
    ctx = _context(browser)
    page = _watch(ctx.new_page())
    _sign_in(page, dashboard_server, state["user_key"])
    assert _nav_titles(page) == USER_PAGES
    expect(page).to_have_url(re.compile(r"/playground$"))
    _shoot(page, "user-playground")
    page.goto(dashboard_server.base_url + "/keys")
    expect(page.get_by_text("This page needs an admin API key.")).to_be_visible()
    _open(page, "Usage")
    expect(page.get_by_text("This key's usage")).to_be_visible()
    _shoot(page, "user-usage")

    _open(admin_page, "API keys")
    row = admin_page.get_by_role("row").filter(has_text="e2e user")
    row.get_by_role("button", name="Revoke").click()
    row.get_by_role("button", name="Yes, revoke").click()
    expect(row.get_by_text("revoked")).to_be_visible()

    page.reload()
    expect(page.get_by_label("API key")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("no longer accepted")
    ctx.close()


def test_no_secret_reached_the_console(dashboard_server: Server) -> None:
    text = "\n".join(console)
    for secret in [dashboard_server.admin_key, state.get("user_key", "")]:
        assert not secret or secret not in text
    assert not [line for line in console if line.startswith("pageerror")], console


def test_screenshots_were_saved() -> None:
    shots = sorted(p.name for p in Path(ARTIFACTS).glob("*.png"))
    pages = ("overview", "playground", "keys", "usage", "deployments", "workers", "jobs", "user-playground")
    for name in pages:
        assert f"{name}-laptop.png" in shots
        assert f"{name}-phone.png" in shots
