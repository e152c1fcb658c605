"""One real gateway app in process for the gateway's unit tests: `create_app` with its lifespan
run (SQLite in a temporary directory, the in-process queue, the embedded simulated worker), called
through `httpx.ASGITransport`, so route modules are tested without a server process."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from gpucloud.gateway.app import create_app
from gpucloud.settings import Settings

MODEL = "gpucloud-sim-1"


@dataclass
class LiveApp:
    app: FastAPI
    client: httpx.AsyncClient
    admin_key: str

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_key}"}

    async def new_key(self, **fields: object) -> tuple[str, str]:
        """A fresh API key: (its id, its secret), once the model is served (`served`)."""
        await self.served()
        r = await self.client.post("/api/keys", json={"name": "unit test"} | fields, headers=self.admin)
        assert r.status_code == 201, r.text
        return str(r.json()["id"]), str(r.json()["key"])

    async def served(self, model: str = MODEL) -> None:
        """Wait until `model` is served. The session's app runs its background tasks (the local
        worker's announcements among them) only while an async test runs: after a stretch of
        other tests its worker's presence may have lapsed until it announces again (every 2 s)."""
        registry = self.app.state.runtime.registry
        deadline = time.monotonic() + 30
        while True:
            await registry.refresh()
            if registry.slots(model) > 0 or time.monotonic() > deadline:
                return
            await asyncio.sleep(0.05)


@pytest.fixture(scope="session")
async def live(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LiveApp]:
    admin_key = "gc-test-admin-unit-" + "k" * 24
    settings = Settings.model_validate(
        {
            "data_dir": tmp_path_factory.mktemp("gateway-unit"),
            "admin_key": admin_key,
            "api_docs": False,
            "auth_throttle": {"max_failures": 100000},
        }
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield LiveApp(app, client, admin_key)
