"""Fixtures of the dashboard's end-to-end tests: a live `gpucloud serve`, the built app, and Debian's
Chromium driven by Playwright (`executable_path`; no `playwright install`, no downloaded browser).

The tests skip only when no Chromium is at `GPUCLOUD_CHROMIUM` (default /usr/bin/chromium) and
`scripts/browser.sh` could not install it; `make test` runs that script first, and so does CI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import Server, make_server

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("GPUCLOUD_CHROMIUM", "/usr/bin/chromium"))
DIST = REPO / "src" / "gpucloud" / "webapp" / "dist"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
# How long an `expect` waits: Playwright's 5 s is too short for Chromium, the gateway and pytest's other
# workers sharing two cores (Swagger UI alone took longer than that to render a 1 MB schema there).
EXPECT_MS = 30_000


def _chromium() -> Path | None:
    if not CHROMIUM.exists():
        subprocess.run(["bash", str(REPO / "scripts" / "browser.sh")], check=False, timeout=600)
    return CHROMIUM if CHROMIUM.exists() else None


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    found = _chromium()
    if found is None:
        pytest.skip(f"no Chromium at {CHROMIUM}, and scripts/browser.sh could not install it")
    return found


@pytest.fixture(scope="session")
def built_app() -> Path:
    """The dashboard's build; `make web` makes it when it is missing or older than web/."""
    if shutil.which("npm") is None and not (DIST / "index.html").exists():
        pytest.fail("the dashboard is not built and npm is missing: install Node.js 20, then run `make web`")
    subprocess.run(["make", "-s", "-C", str(REPO), "web"], check=True, timeout=600)
    assert (DIST / "index.html").exists()
    return DIST


@pytest.fixture(scope="session")
def dashboard_server(built_app: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # Slow enough that a reply visibly streams and can be stopped; prices so usage shows a cost.
    # The embedded worker reports one simulated 80 GB H100 for deployments to be placed on, and the
    # controller places them every 0.25 s.
    env = {
        "GPUCLOUD_LOCAL_WORKER__TOKENS_PER_S": "150",
        "GPUCLOUD_LOCAL_WORKER__SIMULATE_GPUS": "H100:80",
        "GPUCLOUD_CLUSTER__MONITOR_EVERY_S": "0.25",
        "GPUCLOUD_PRICES": '{"gpucloud-sim-1": {"input_per_million": 2.0, "output_per_million": 6.0}}',
    }
    server = make_server(tmp_path_factory.mktemp("e2e-server"), env=env)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True, scope="package")
def _patient_expect() -> Iterator[None]:
    from playwright.sync_api import expect

    expect.set_options(timeout=EXPECT_MS)
    yield
    expect.set_options(timeout=5_000)  # Playwright's default


# Package scope: Playwright's sync API runs an event loop on this thread until it stops, so it must
# stop when the last e2e test is done, before any asyncio test that runs after it in the session.
@pytest.fixture(scope="package")
def browser(chromium_path: Path) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(chromium_path), args=LAUNCH_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()
