"""Shared fixtures: a live server per backend (SQLite, PostgreSQL) for the whole session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import openai
import pytest

from tests.support import (
    LOG_FILES,
    REDIS_URL,
    SECRETS,
    UNCLEAN_STOPS,
    Server,
    create_pg_database,
    drop_pg_database,
    make_server,
)

if TYPE_CHECKING:
    from tests.integration.oidc_provider import OidcProvider

# embedded mode on SQLite and on PostgreSQL; cluster mode: Redis queue, PostgreSQL, and the model
# served by a separate `gpucloud worker` process.
BACKENDS = ["sqlite", "postgres", "cluster"]


@pytest.fixture(scope="session", params=BACKENDS)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A live `gpucloud serve` (embedded mode) on the backend named by the parameter."""
    backend: str = request.param
    database_url = create_pg_database() if backend in ("postgres", "cluster") else None
    redis_url = REDIS_URL if backend == "cluster" else None
    srv = make_server(
        tmp_path_factory.mktemp(f"server-{backend}"), database_url=database_url, redis_url=redis_url
    )
    srv.start()
    if backend == "cluster":
        srv.add_worker("--model", MODEL, "--slots", "64")
        srv.wait_for_model(MODEL)
    try:
        yield srv
    finally:
        srv.stop()
        if database_url:
            drop_pg_database(database_url)


@pytest.fixture(scope="session")
def admin_client(server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.v1, api_key=server.admin_key, max_retries=0)


def create_key(server: Server, **fields: object) -> dict[str, object]:
    body = {"name": "test key", **fields}
    r = httpx.post(
        f"{server.base_url}/api/keys",
        json=body,
        headers={"Authorization": f"Bearer {server.admin_key}"},
        timeout=10,
    )
    assert r.status_code == 201, r.text
    data: dict[str, object] = r.json()
    SECRETS.add(str(data["key"]))
    return data


@pytest.fixture
def user_key(server: Server) -> str:
    return str(create_key(server)["key"])


@pytest.fixture
def user_client(server: Server, user_key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.v1, api_key=user_key, max_retries=0)


MODEL = "gpucloud-sim-1"
_WORKER_LEAKS = pytest.StashKey[list[str]]()
_WORKER_UNCLEAN = pytest.StashKey[list[str]]()


def tmp_dir(tmp_path: Path) -> Path:
    return tmp_path


def _secret_leaks() -> list[str]:
    leaks = []
    for path in sorted(LOG_FILES):
        if not path.exists():
            continue
        text = path.read_text(errors="replace")
        leaks += [f"{path}: a secret starting {secret[:8]}…" for secret in SECRETS if secret in text]
    return leaks


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """Under pytest-xdist each worker scans its own servers' logs; the controller gathers them."""
    leaks = node.workeroutput.get("secret_leaks", [])
    node.config.stash.setdefault(_WORKER_LEAKS, []).extend(leaks)
    node.config.stash.setdefault(_WORKER_UNCLEAN, []).extend(node.workeroutput.get("unclean_stops", []))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """No secret handed to any server in this session appears in any log it wrote (at DEBUG)."""
    leaks = _secret_leaks()
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller reports for all of them
        workeroutput["secret_leaks"] = leaks
        workeroutput["unclean_stops"] = UNCLEAN_STOPS
        return
    gathered: list[str] = session.config.stash.get(_WORKER_LEAKS, [])
    leaks += gathered
    # Said, not failed: a process SIGKILLed after SIGTERM cost its test 20 s; its stacks show why.
    unclean = UNCLEAN_STOPS + session.config.stash.get(_WORKER_UNCLEAN, [])
    if unclean:
        print("\nProcesses that did not exit on SIGTERM (SIGKILLed):\n" + "\n".join(unclean))
    if leaks:
        print("\nSECRET LEAK in server logs:\n  " + "\n  ".join(leaks))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcProvider]:
    """An OpenID Connect provider on loopback for the single sign-on tests (one per module)."""
    from tests.integration.oidc_provider import OidcProvider

    idp = OidcProvider().start()
    try:
        yield idp
    finally:
        idp.stop()
