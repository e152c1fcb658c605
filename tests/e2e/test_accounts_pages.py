"""People and organisations in the dashboard, end to end: a real `gpucloud serve`, the built app,
headless Chromium.

An owner signs in with email and password, switches organisations, invites someone (the link shown
once); the invitee accepts it in a fresh browser and is signed in; the owner sees the new member,
makes them an admin, and the new admin is refused (by the server, whose message the page shows)
when touching the owner; demoted to viewer, they see members read-only and no audit log; the owner
finds these actions in the audit log with its filters. Signing out revokes the token. The single
sign-on button shows only on a server with OIDC configured.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect

from tests.e2e.test_dashboard import _context, _nav_titles, _open, _shoot, _watch, console
from tests.integration.oidc_provider import OidcProvider
from tests.integration.test_oidc_sso import oidc_env
from tests.support import SECRETS, Server, make_server

OWNER = ("owner@example.com", "owner-password-1")
NEWBIE = ("newbie@example.com", "newbie-password-1")
SECRETS.update({OWNER[1], NEWBIE[1]})
OWNER_PAGES = ["API keys", "Usage", "Members", "Organisation", "Audit log"]
MEMBER_PAGES = ["API keys", "Usage", "Members", "Organisation"]
VIEWER_PAGES = ["Usage", "Members", "Organisation"]


def _api(server: Server, method: str, path: str, body: dict[str, object] | None = None) -> dict[str, object]:
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    r = httpx.request(method, server.base_url + path, json=body, headers=headers, timeout=10)
    assert r.is_success, r.text
    data: dict[str, object] = r.json()
    return data


# A busy machine (parallel builds and tests) can take a minute to start a server, and seconds to
# hash a password (argon2id): waits are generous, never asserted on.
START_TIMEOUT_S = 180.0
WAIT_MS = 30_000


@pytest.fixture(scope="module")
def accounts_server(built_app: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """This module's own server: its users and organisations stay out of the other e2e tests."""
    server = make_server(tmp_path_factory.mktemp("e2e-accounts"))
    server.start(timeout_s=START_TIMEOUT_S)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def orgs(accounts_server: Server) -> dict[str, str]:
    """Acme (the owner owns it) and Beta (the owner only views it), made through the API."""
    owner = _api(accounts_server, "POST", "/api/users", {"email": OWNER[0], "password": OWNER[1]})
    ids: dict[str, str] = {"owner": str(owner["id"])}
    for name, role in (("Acme", "owner"), ("Beta", "viewer")):
        org_id = str(_api(accounts_server, "POST", "/api/orgs", {"name": name})["id"])
        _api(accounts_server, "POST", f"/api/orgs/{org_id}/members", {"user_id": ids["owner"], "role": role})
        ids[name] = org_id
    return ids


def _password_sign_in(page: Page, server: Server, email: str, password: str) -> None:
    page.goto(server.base_url + "/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("navigation", name="Pages")).to_be_visible()


@pytest.fixture(scope="module")
def owner_page(browser: Browser, accounts_server: Server, orgs: dict[str, str]) -> Iterator[Page]:
    ctx = _browser(browser)
    page = _watch(ctx.new_page())
    _password_sign_in(page, accounts_server, *OWNER)
    yield page
    ctx.close()


@pytest.fixture(scope="module")
def newbie() -> Iterator[dict[str, object]]:
    """The invitee's browser (a fresh context, made by the invitation test)."""
    held: dict[str, object] = {}
    yield held
    ctx = held.get("ctx")
    if isinstance(ctx, BrowserContext):
        ctx.close()


def _browser(browser: Browser) -> BrowserContext:
    ctx = _context(browser)
    ctx.set_default_timeout(WAIT_MS)
    return ctx


def _go(page: Page, title: str) -> None:
    """Open a page once the app is signed in (after a reload it first checks the session)."""
    expect(page.get_by_role("banner")).to_be_visible()
    _open(page, title)


def _choose_org(page: Page, name: str) -> None:
    page.get_by_label("Organisation").select_option(label=name)


def _member_row(page: Page, email: str) -> Locator:
    return page.get_by_test_id(f"member-{email}")


def test_a_wrong_password_is_refused(browser: Browser, accounts_server: Server, orgs: dict[str, str]) -> None:
    ctx = _browser(browser)
    page = _watch(ctx.new_page())
    page.goto(accounts_server.base_url + "/")
    expect(page.get_by_role("button", name="Sign in with SSO")).to_have_count(0)  # not configured here
    page.get_by_label("Email").fill(OWNER[0])
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("Sign-in failed")
    assert page.evaluate("localStorage.getItem('gpucloud.accessToken')") is None
    ctx.close()


def test_the_owner_sees_the_organisation_pages_and_switches(owner_page: Page) -> None:
    page = owner_page
    expect(page.get_by_role("banner")).to_contain_text(OWNER[0])
    switcher = page.get_by_label("Organisation")
    expect(switcher.locator("option")).to_have_text(["Acme", "Beta"])
    _choose_org(page, "Acme")
    expect(page.get_by_role("navigation", name="Pages").get_by_role("link")).to_have_count(len(OWNER_PAGES))
    assert _nav_titles(page) == OWNER_PAGES
    _go(page, "Organisation")
    expect(page.get_by_role("heading", name="Acme")).to_be_visible()
    expect(page.get_by_text("Only a platform admin changes these.")).to_be_visible()
    _choose_org(page, "Beta")
    expect(page.get_by_role("heading", name="Beta")).to_be_visible()
    _go(page, "Members")
    expect(page.get_by_text("Read-only: owners and admins change members.")).to_be_visible()
    expect(page.get_by_label("Email to invite")).to_have_count(0)
    expect(page.get_by_role("navigation", name="Pages").get_by_role("link")).to_have_count(len(VIEWER_PAGES))
    _choose_org(page, "Acme")
    expect(page.get_by_label("Email to invite")).to_be_visible()


def test_an_invitation_is_accepted_in_a_fresh_browser(
    browser: Browser, owner_page: Page, accounts_server: Server, newbie: dict[str, object]
) -> None:
    page = owner_page
    _go(page, "Members")
    page.get_by_label("Email to invite").fill(NEWBIE[0])
    page.get_by_label("Role", exact=True).select_option("member")
    page.get_by_role("button", name="Invite", exact=True).click()
    link = page.get_by_role("textbox", name="Invitation link").input_value()
    assert link.startswith(accounts_server.base_url + "/?invite=")
    SECRETS.add(link.split("=", 1)[1])
    _shoot(page, "members-invited")
    page.get_by_role("button", name="Done").click()
    expect(page.get_by_role("table", name="Invitations")).to_contain_text(NEWBIE[0])

    ctx = _browser(browser)
    newbie["ctx"] = ctx
    other = _watch(ctx.new_page())
    other.goto(link)
    other.get_by_label("New password").fill(NEWBIE[1])
    other.get_by_label("Repeat the password").fill(NEWBIE[1])
    other.get_by_role("button", name="Accept and sign in").click()
    expect(other.get_by_role("navigation", name="Pages")).to_be_visible()
    expect(other.get_by_role("banner")).to_contain_text(NEWBIE[0])
    assert "invite" not in other.url
    newbie["page"] = other
    links = other.get_by_role("navigation", name="Pages").get_by_role("link")
    expect(links).to_have_count(len(MEMBER_PAGES))  # once its role in the organisation is known
    assert _nav_titles(other) == MEMBER_PAGES
    # A member makes its own key in the organisation (a user key; the secret shown once).
    _go(other, "API keys")
    other.get_by_role("button", name="Create a key").click()
    expect(other.get_by_label("Role", exact=True)).to_have_count(0)  # members make user keys only
    other.get_by_label("Name").fill("newbie's key")
    other.get_by_role("button", name="Create key").click()
    secret = other.get_by_test_id("new-secret")
    expect(secret).to_have_value(re.compile(r"^gc_"))
    SECRETS.add(secret.input_value())
    other.get_by_role("button", name="I have stored it").click()
    expect(other.get_by_role("table")).to_contain_text("newbie's key")
    expect(other.get_by_role("button", name="Edit limits")).to_have_count(0)  # a platform admin's call

    page.reload()
    expect(_member_row(page, NEWBIE[0]).get_by_label(f"Role of {NEWBIE[0]}")).to_have_value("member")
    expect(page.get_by_role("table", name="Invitations")).to_contain_text("accepted")


def test_roles_change_and_the_server_has_the_last_word(owner_page: Page, newbie: dict[str, object]) -> None:
    page = owner_page
    other = newbie["page"]
    assert isinstance(other, Page)
    page.get_by_label(f"Role of {NEWBIE[0]}").select_option("admin")
    expect(page.get_by_label(f"Role of {NEWBIE[0]}")).to_have_value("admin")

    other.reload()
    _go(other, "Members")
    # An admin manages members, but only an owner touches the owner role: the server refuses.
    other.get_by_label(f"Role of {OWNER[0]}").select_option("member")
    expect(other.get_by_role("alert")).to_contain_text("Only an owner can grant or change the owner role.")
    expect(other.get_by_label(f"Role of {OWNER[0]}")).to_have_value("owner")

    page.get_by_label(f"Role of {NEWBIE[0]}").select_option("viewer")
    expect(page.get_by_label(f"Role of {NEWBIE[0]}")).to_have_value("viewer")
    other.reload()
    expect(other.get_by_text("Read-only: owners and admins change members.")).to_be_visible()
    expect(other.get_by_role("navigation", name="Pages").get_by_role("link")).to_have_count(len(VIEWER_PAGES))
    assert _nav_titles(other) == VIEWER_PAGES
    _shoot(other, "members-viewer")


def test_the_audit_log_shows_the_actions_with_filters(owner_page: Page, orgs: dict[str, str]) -> None:
    page = owner_page
    _go(page, "Audit log")
    table = page.get_by_role("table", name="Audit entries")
    expect(table).to_contain_text("POST /api/orgs/{org_id}/invitations")
    expect(table).to_contain_text("PATCH /api/orgs/{org_id}/members/{user_id}")
    expect(table).to_contain_text("failure")  # the new admin's refused change
    _shoot(page, "audit")

    page.get_by_label("Action").fill("PATCH /api/orgs/{org_id}/members/{user_id}")
    page.get_by_label("Result").select_option("failure")
    page.get_by_role("button", name="Filter").click()
    rows = table.locator("tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("403")

    page.get_by_role("button", name="Clear").click()
    page.get_by_label("Actor").fill(orgs["owner"])
    page.get_by_label("Action").fill("POST /api/orgs/{org_id}/invitations")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(orgs["owner"])

    page.get_by_role("button", name="Clear").click()
    page.get_by_label("From").fill("2000-01-01T00:00")
    page.get_by_label("Until").fill("2000-01-02T00:00")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_text("No audit entries match.")).to_be_visible()


def test_signing_out_revokes_the_token(owner_page: Page, accounts_server: Server) -> None:
    page = owner_page
    token = page.evaluate("JSON.parse(localStorage.getItem('gpucloud.accessToken')).token")
    SECRETS.add(token)
    me = f"{accounts_server.base_url}/api/auth/me"
    assert httpx.get(me, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    with page.expect_response(lambda r: r.url.endswith("/api/auth/logout")) as revoked:
        page.get_by_role("button", name="Sign out").click()
    assert revoked.value.status == 200
    expect(page.get_by_label("Email")).to_be_visible()
    assert page.evaluate("localStorage.getItem('gpucloud.accessToken')") is None
    assert httpx.get(me, headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_no_secret_reached_the_console() -> None:
    leaked = [line for line in console if any(secret in line for secret in SECRETS)]
    assert not leaked


@pytest.fixture(scope="module")
def sso_server(
    built_app: Path, provider: OidcProvider, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server signing people in with the test OpenID Connect provider."""
    server = make_server(tmp_path_factory.mktemp("e2e-sso"), env=oidc_env(provider))
    server.start(timeout_s=START_TIMEOUT_S)
    try:
        yield server
    finally:
        server.stop()


def test_single_sign_on_in_the_browser(browser: Browser, sso_server: Server, provider: OidcProvider) -> None:
    ctx = _browser(browser)
    page = _watch(ctx.new_page())
    page.goto(sso_server.base_url + "/")
    _shoot(page, "login-sso")
    page.get_by_role("button", name="Sign in with SSO (Test IdP)").click()
    # Provider, callback, then back at the app with a one-time code it exchanges and drops.
    expect(page.get_by_role("banner")).to_contain_text(provider.email)
    assert "sso_code" not in page.url
    token = page.evaluate("JSON.parse(localStorage.getItem('gpucloud.accessToken')).token")
    SECRETS.add(token)

    page.get_by_role("button", name="Sign out").click()
    provider.email = "eve@elsewhere.org"  # a domain the server does not allow
    page.get_by_role("button", name="Sign in with SSO (Test IdP)").click()
    expect(page.get_by_role("alert")).to_contain_text("Accounts with this email domain may not sign in here.")
    assert "sso_error" not in page.url
    assert page.evaluate("localStorage.getItem('gpucloud.accessToken')") is None
    ctx.close()
