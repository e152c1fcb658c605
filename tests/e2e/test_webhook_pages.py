"""The Webhooks page in Chromium against a live server, with a real receiver on loopback that
fails the first delivery: a key of an organisation adds the organisation's endpoint in the page
(its secret shown once), another key of the organisation finishes a job, the page lists the
delivery as pending with the receiver's 503, Redeliver sends it again at once — the same message,
signed with the secret the page showed — and the page shows it succeeded.

The server's first retry waits `BACKOFF_S`, far longer than the test, so the second request the
receiver gets is the redelivery. Screenshots go to tests/e2e/artifacts/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import MODEL, create_key
from tests.e2e.test_dashboard import _context, _open, _shoot, _sign_in, _watch, console
from tests.integration.accounts_support import create_org
from tests.support import SECRETS, Server, make_server
from tests.webhook_support import Receiver, receiver, verify

BACKOFF_S = 3600
START_TIMEOUT_S = 180.0  # a loaded machine may take long to start a server: waits are generous


@pytest.fixture(scope="module")
def hooks_server(built_app: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """This module's own server: loopback receivers allowed (only 127.0.0.1), a quick sender, and
    no automatic retry within the test."""
    env = {
        "GPUCLOUD_WEBHOOKS__ALLOW_NETWORKS": '["127.0.0.1/32"]',
        "GPUCLOUD_WEBHOOKS__EVERY_S": "0.2",
        "GPUCLOUD_WEBHOOKS__BACKOFF_S": str(BACKOFF_S),
    }
    server = make_server(tmp_path_factory.mktemp("e2e-webhooks"), env=env)
    server.start(timeout_s=START_TIMEOUT_S)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def hooks() -> Iterator[Receiver]:
    with receiver() as r:
        yield r


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    ctx = _context(browser)
    yield _watch(ctx.new_page())
    ctx.close()


def _job(server: Server, key: str) -> str:
    body = {"endpoint": "chat.completions", "model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    r = httpx.post(f"{server.v1}/jobs", headers={"Authorization": f"Bearer {key}"}, json=body, timeout=30)
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def test_a_failed_delivery_is_listed_and_redelivered_from_the_page(
    page: Page, hooks_server: Server, hooks: Receiver
) -> None:
    org = create_org(hooks_server, "e2e-hooks")
    maker, colleague = (str(create_key(hooks_server, org_id=org)["key"]) for _ in range(2))
    hooks.failures["/hooks"] = 1
    _sign_in(page, hooks_server, maker)
    _open(page, "Webhooks")

    form = page.get_by_role("form", name="New webhook")
    form.get_by_label("URL").fill(hooks.url("/hooks"))
    form.get_by_label("batch.completed").uncheck()
    form.get_by_label("job.completed").check()
    form.get_by_role("button", name="Add endpoint").click()
    shown = page.get_by_label("Webhook signing secret")
    expect(shown).to_be_visible()
    secret = shown.input_value()
    assert secret.startswith("whsec_")
    SECRETS.add(secret)  # the session's log scan checks no server log holds it
    table = page.get_by_test_id("webhooks-table")
    endpoint = table.locator("tbody tr", has_text=hooks.url("/hooks"))
    expect(endpoint).to_contain_text("job.completed")
    expect(endpoint).to_contain_text("the organisation")

    job_id = _job(hooks_server, colleague)  # another key of the organisation: it is told too
    [first] = hooks.wait("/hooks", 1, timeout_s=60)
    assert verify(secret, first)["data"]["id"] == job_id

    endpoint.get_by_role("button", name="Deliveries").click()
    delivery = page.get_by_test_id("deliveries-table").locator("tbody tr").first
    tries, answer = delivery.locator("td").nth(2), delivery.locator("td").nth(3)
    expect(delivery).to_contain_text("job.completed")
    expect(answer).to_have_text("503")  # the receiver's answer, as the page polls it
    expect(tries).to_have_text("1")
    expect(delivery.locator(".badge")).to_have_text("pending")
    _shoot(page, "webhooks")

    delivery.get_by_role("button", name="Redeliver").click()
    second = hooks.wait("/hooks", 2, timeout_s=60)[1]
    assert second.headers["webhook-id"] == first.headers["webhook-id"]  # the same message again
    assert verify(secret, second)["data"]["id"] == job_id
    expect(delivery.locator(".badge")).to_have_text("succeeded")
    expect(answer).to_have_text("200")
    expect(tries).to_have_text("2")
    assert not [line for line in console if secret in line]
