"""The Deployments and Workers & GPUs pages against a fleet that has something in it.

The embedded server's own worker registers as `local-<hostname>` with a simulated 80 GB H100
(conftest.py). As admin, through the pages only: a form error from the server shows beside the form;
a deployment created in the form goes to `ready` on the local worker and scales to 2 replicas; the
Workers page shows the GPU's memory bar at 16 GB of 80; the worker is drained and undrained; the
playground streams a reply from the new model; a deployment too big for any GPU is `unschedulable`
with the server's reason; both are deleted. Screenshots go to tests/e2e/artifacts/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.e2e.conftest import ARTIFACTS
from tests.e2e.test_dashboard import _context, _open, _shoot, _sign_in
from tests.support import Server

MODEL = "e2e-sim"
HUGE = "e2e-huge"
SETTLE_MS = 15_000  # placement every 0.25 s, a 1 s load, and the page's refresh

errors: list[str] = []


@pytest.fixture(scope="module")
def page(browser: Browser, dashboard_server: Server) -> Iterator[Page]:
    ctx = _context(browser)
    p = ctx.new_page()
    p.on("pageerror", lambda err: errors.append(str(err)))
    _sign_in(p, dashboard_server, dashboard_server.admin_key)
    yield p
    ctx.close()


def api(server: Server, method: str, path: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    return httpx.request(method, server.base_url + path, headers=headers, timeout=10)


def local_worker(server: Server) -> dict[str, Any]:
    workers = api(server, "GET", "/api/workers").json()["data"]
    return next(w for w in workers if w["id"].startswith("local-"))


def deployment_card(page: Page, name: str) -> Locator:
    return page.get_by_role("article", name=f"Deployment {name}")


def state_badge(card: Locator) -> Locator:
    return card.locator(".card-head .badge").first


def create_in_form(page: Page, **fields: str) -> Locator:
    """Opens the create form on the Deployments page, fills it in and submits it; returns the form."""
    _open(page, "Deployments")
    form = page.get_by_role("form", name="Create a deployment")
    if not form.is_visible():
        page.get_by_role("button", name="Create a deployment").click()
    form.get_by_label("Engine", exact=True).select_option(fields.pop("engine", "simulated"))
    for label, value in fields.items():
        form.get_by_label(label, exact=True).fill(value)
    form.get_by_role("button", name="Create deployment").click()
    return form


def test_the_server_refusing_the_form_is_shown_beside_it(page: Page) -> None:
    form = create_in_form(page, **{"Model name": "bad name", "GPU memory per GPU (GB)": "8"})
    alert = form.get_by_role("alert")
    expect(alert).to_contain_text("Could not create the deployment")
    expect(alert).to_contain_text("name must be 1-200 characters")
    expect(form.get_by_label("Model name", exact=True)).to_have_attribute("aria-invalid", "true")
    # A hub id the control plane cannot read: the server asks for the GPU memory, beside that field.
    form.get_by_label("Model name", exact=True).fill("hub-model")
    form.get_by_label("Engine", exact=True).select_option("transformers")
    form.get_by_label("Source", exact=True).fill("some-org/some-model")
    form.get_by_label("GPU memory per GPU (GB)", exact=True).fill("")
    form.get_by_role("button", name="Create deployment").click()
    expect(alert).to_contain_text("gpu_memory_gb is required")
    expect(form.get_by_label("GPU memory per GPU (GB)", exact=True)).to_have_attribute("aria-invalid", "true")
    form.get_by_role("button", name="Cancel").click()
    expect(deployment_card(page, "hub-model")).to_have_count(0)


def test_a_deployment_made_in_the_form_becomes_ready_on_the_local_worker(
    page: Page, dashboard_server: Server
) -> None:
    create_in_form(
        page,
        **{
            "Model name": MODEL,
            "Replicas": "1",
            "GPU memory per GPU (GB)": "8",
            "Engine options": "load_s=1",
        },
    )
    expect(page.get_by_role("form", name="Create a deployment")).to_have_count(0)  # closed: accepted
    card = deployment_card(page, MODEL)
    expect(card).to_be_visible()
    expect(card).to_contain_text("8 GB per GPU × 1 GPU")
    expect(card.locator("dt:text-is('Source') + dd")).to_have_text(
        "—"
    )  # nothing left from the cancelled form
    expect(state_badge(card)).to_have_text("ready", timeout=SETTLE_MS)
    expect(card).to_contain_text("1 of 1")
    replicas = card.get_by_role("table", name="Replicas").locator("tbody tr")
    expect(replicas).to_have_count(1)
    expect(replicas.first.locator("td").nth(1)).to_have_text("ready")
    expect(replicas.first.locator("td").nth(2)).to_have_text(re.compile(r"^local-"))
    expect(replicas.first.locator("td").nth(3)).to_have_text("GPU 0 · H100")
    view = api(dashboard_server, "GET", f"/api/deployments/{MODEL}").json()
    assert (view["state"], view["gpu_count"], view["gpu_memory_gb"]) == ("ready", 1, 8)
    assert view["engine_options"] == {"load_s": "1"}


def test_scaling_to_two_replicas_in_the_page(page: Page) -> None:
    card = deployment_card(page, MODEL)
    card.get_by_label("Replicas", exact=True).fill("2")
    card.get_by_role("button", name="Scale").click()
    expect(card).to_contain_text("2 of 2", timeout=SETTLE_MS)
    rows = card.get_by_role("table", name="Replicas").locator("tbody tr")
    expect(rows).to_have_count(2)
    for i in range(2):
        expect(rows.nth(i).locator("td").nth(1)).to_have_text("ready")
        expect(rows.nth(i).locator("td").nth(2)).to_have_text(re.compile(r"^local-"))
    expect(state_badge(card)).to_have_text("ready")
    _shoot(page, "deployments-ready")


def test_the_workers_page_shows_the_h100_and_its_memory_in_use(page: Page, dashboard_server: Server) -> None:
    worker_id = local_worker(dashboard_server)["id"]
    _open(page, "Workers & GPUs")
    card = page.get_by_role("article", name=f"Worker {worker_id}")
    expect(state_badge(card)).to_have_text("healthy")
    meter = card.get_by_role("meter", name="GPU 0: H100")
    expect(meter).to_have_attribute("aria-valuenow", str(16 * 10**9), timeout=SETTLE_MS)
    expect(meter).to_have_attribute("aria-valuemax", str(80 * 10**9))
    expect(card).to_contain_text("16.0 GB / 80.0 GB")
    expect(card.locator(".meter-fill")).to_have_attribute("style", re.compile(r"width: 20(\.0)?%"))
    expect(card).to_contain_text(MODEL)
    _shoot(page, "workers-gpu")


def test_draining_and_undraining_the_worker_in_the_page(page: Page, dashboard_server: Server) -> None:
    worker_id = local_worker(dashboard_server)["id"]
    card = page.get_by_role("article", name=f"Worker {worker_id}")
    card.get_by_role("button", name="Drain", exact=True).click()
    expect(card.get_by_role("button", name="Undrain")).to_be_visible()
    expect(card.locator(".card-head .badge", has_text="draining")).to_be_visible()
    assert local_worker(dashboard_server)["draining"] is True
    card.get_by_role("button", name="Undrain").click()
    expect(card.get_by_role("button", name="Drain", exact=True)).to_be_visible()
    expect(card.locator(".card-head .badge", has_text="draining")).to_have_count(0)
    assert local_worker(dashboard_server)["draining"] is False


def test_the_playground_streams_from_the_new_deployment(page: Page) -> None:
    _open(page, "Playground")
    model = page.get_by_label("Model")
    expect(model.locator("option", has_text=MODEL)).to_have_count(1)
    model.select_option(MODEL)
    page.get_by_label("Max tokens").fill("16")
    page.get_by_label("Message").fill("Hello, deployment")
    page.get_by_label("Message").press("Enter")
    reply = page.get_by_test_id("reply")
    expect(reply).not_to_contain_text("The reply appears here")
    expect(page.get_by_text(re.compile(r"\d+ in, \d+ out"))).to_be_visible()
    assert reply.inner_text().strip()
    assert f'"model": "{MODEL}"' in page.get_by_test_id("snippet").inner_text()


def test_a_deployment_too_big_for_any_gpu_says_why(page: Page) -> None:
    create_in_form(page, **{"Model name": HUGE, "GPU memory per GPU (GB)": "200"})
    card = deployment_card(page, HUGE)
    expect(state_badge(card)).to_have_text("unschedulable", timeout=SETTLE_MS)
    reason = card.locator(".reason")
    expect(reason).to_contain_text("needs 1 GPU with 200.0 GB free")
    expect(reason).to_contain_text("the largest has 80.0 GB total")
    expect(reason).to_contain_text("H100")
    _shoot(page, "deployments-unschedulable")


def test_the_new_screenshots_were_saved() -> None:
    for name in ("deployments-ready", "deployments-unschedulable", "workers-gpu"):
        for width in ("laptop", "phone"):
            assert (ARTIFACTS / f"{name}-{width}.png").stat().st_size > 0


def test_deleting_in_the_page_asks_first(page: Page, dashboard_server: Server) -> None:
    for name in (HUGE, MODEL):
        card = deployment_card(page, name)
        card.get_by_role("button", name="Delete", exact=True).click()
        card.get_by_role("button", name="Cancel").click()  # asked, not done
        expect(card).to_be_visible()
        card.get_by_role("button", name="Delete", exact=True).click()
        expect(card.get_by_text(f'Delete "{name}"?')).to_be_visible()
        card.get_by_role("button", name="Yes, delete").click()
        expect(card).to_have_count(0)
        assert api(dashboard_server, "GET", f"/api/deployments/{name}").status_code == 404
    page.reload()
    expect(page.get_by_role("heading", name="Deployments", exact=True)).to_be_visible()
    expect(page.get_by_role("article")).to_have_count(0)
    assert not errors, errors
