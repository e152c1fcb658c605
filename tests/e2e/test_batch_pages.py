"""The Batches and Webhooks pages in Chromium against a live server, as a user key: a JSONL file
uploaded in the page becomes a batch whose progress reaches 3 / 3, and its output file downloads
with one answer per line; on the Webhooks page a loopback URL is refused with the server's reason,
a public one is added and its signing secret shown once. Screenshots go to tests/e2e/artifacts/."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import MODEL, create_key
from tests.e2e.test_dashboard import _context, _open, _shoot, _sign_in
from tests.support import Server


@pytest.fixture(scope="module")
def page(browser: Browser, dashboard_server: Server) -> Iterator[Page]:
    ctx = _context(browser)
    p = ctx.new_page()
    _sign_in(p, dashboard_server, str(create_key(dashboard_server)["key"]))
    yield p
    ctx.close()


def test_a_batch_uploaded_in_the_page_completes_and_its_output_downloads(page: Page, tmp_path: Path) -> None:
    lines = [
        {
            "custom_id": f"line-{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": MODEL, "messages": [{"role": "user", "content": f"hi {i}"}], "max_tokens": 4},
        }
        for i in range(3)
    ]
    source = tmp_path / "requests.jsonl"
    source.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    _open(page, "Batches")
    form = page.get_by_role("form", name="New batch")
    form.get_by_label("Requests (JSONL)").set_input_files(str(source))
    form.get_by_role("button", name="Upload and start").click()
    row = page.get_by_test_id("batches-table").locator("tbody tr").first
    expect(row.locator(".badge")).to_have_text("completed", timeout=20_000)
    expect(row).to_contain_text("3 / 3")
    _shoot(page, "batches")
    with page.expect_download() as download:
        row.get_by_role("button", name="Output").click()
    saved = tmp_path / "output.jsonl"
    download.value.save_as(saved)
    answers = [json.loads(line) for line in saved.read_text().splitlines()]
    assert sorted(a["custom_id"] for a in answers) == ["line-0", "line-1", "line-2"]
    assert {a["response"]["status_code"] for a in answers} == {200}


def test_webhooks_page_refuses_a_loopback_url_and_shows_a_new_secret_once(page: Page) -> None:
    _open(page, "Webhooks")
    form = page.get_by_role("form", name="New webhook")
    form.get_by_label("URL").fill("http://127.0.0.1:9/hooks")
    form.get_by_role("button", name="Add endpoint").click()
    expect(form.get_by_role("alert")).to_contain_text("non-public address")
    # A public address is accepted (never called: this key has no batch that could expire).
    form.get_by_label("batch.completed").uncheck()
    form.get_by_label("batch.expired").check()
    form.get_by_label("URL").fill("https://93.184.216.34/hooks")
    form.get_by_role("button", name="Add endpoint").click()
    secret = page.get_by_label("Webhook signing secret")
    expect(secret).to_be_visible()
    assert secret.input_value().startswith("whsec_")
    table = page.get_by_test_id("webhooks-table")
    expect(table).to_contain_text("https://93.184.216.34/hooks")
    expect(table).to_contain_text("batch.expired")
    table.get_by_role("button", name="Deliveries").click()
    expect(page.get_by_text("No deliveries yet")).to_be_visible()
