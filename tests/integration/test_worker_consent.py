"""Finding 1 of the security review: an admin key must not be a shell on every worker.

An embedded `gpucloud serve` (its worker is a fleet member), and in cluster mode a
`gpucloud worker --allow-command /bin/sh`, each allowing only `/bin/sh` as a custom engine
command: a deployment whose command is any other program, or that attaches to a URL, fails with
a reason saying the worker does not allow it; an allowed command's output stays in the worker's
log and never reaches the API.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support import (
    REDIS_URL,
    SECRETS,
    Server,
    Worker,
    create_pg_database,
    drop_pg_database,
    make_server,
)

# What the child prints; its command holds the arithmetic, not the result, so the marker can only
# come from the child's output (a deployment's options are shown to admins as given).
MARKER = "child-said-42x"


@pytest.fixture(scope="module")
def laptop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("consent")
    env = {
        "GPUCLOUD_LOCAL_WORKER__ALLOW_COMMANDS": json.dumps(["/bin/sh"]),
        "GPUCLOUD_CLUSTER__MONITOR_EVERY_S": "0.25",
    }
    server = make_server(tmp, env=env)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def deploy_and_wait_failed(
    server: Server, name: str, options: dict[str, str], timeout_s: float = 20
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    body = {"name": name, "engine": "openai", "engine_options": options, "gpu_count": 0}
    r = httpx.post(f"{server.base_url}/api/deployments", json=body, headers=headers)
    assert r.status_code == 201, r.text
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        d = httpx.get(f"{server.base_url}/api/deployments/{name}", headers=headers).json()
        states = d["replica_states"]
        if states and states[0]["state"] == "failed" and states[0]["reason"]:
            return dict(states[0])
        time.sleep(0.2)
    raise AssertionError(f"{name} never failed: {d}")


def test_a_custom_command_the_worker_does_not_allow_is_refused(laptop: Server) -> None:
    state = deploy_and_wait_failed(laptop, "shell", {"command": '/usr/bin/env sh -c "id; hostname"'})
    assert "does not allow custom engine server commands" in state["reason"]
    assert "--allow-command" in state["reason"]
    assert "uid=" not in state["reason"]


def test_a_url_is_refused_without_allow_url(laptop: Server) -> None:
    state = deploy_and_wait_failed(laptop, "attach", {"url": "http://127.0.0.1:9"})
    assert "does not allow attaching" in state["reason"]
    assert "--allow-url" in state["reason"]


def test_an_allowed_commands_output_stays_in_the_workers_log(laptop: Server) -> None:
    command = '/bin/sh -c "echo child-said-$((6*7))x; id; exit 3"'
    state = deploy_and_wait_failed(laptop, "talker", {"command": command})
    assert "exited with status 3" in state["reason"]
    assert "worker's log" in state["reason"]
    assert MARKER not in state["reason"]
    assert "uid=" not in state["reason"]
    headers = {"Authorization": f"Bearer {laptop.admin_key}"}
    for path in ("/api/deployments", "/api/deployments/talker", "/api/workers"):
        assert MARKER not in httpx.get(f"{laptop.base_url}{path}", headers=headers).text
    assert MARKER in laptop.logs()  # where the reason says to look


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Worker]]:
    """A gateway (PostgreSQL, Redis, no local worker) and one `gpucloud worker --server` whose
    owner allows `/bin/sh` and nothing else."""
    url = create_pg_database()
    env = {"GPUCLOUD_CLUSTER__MONITOR_EVERY_S": "0.25", "GPUCLOUD_CLUSTER__HEARTBEAT_INTERVAL_S": "0.5"}
    server = make_server(
        tmp_path_factory.mktemp("consent-cluster"), database_url=url, redis_url=REDIS_URL, env=env
    )
    server.start()
    try:
        headers = {"Authorization": f"Bearer {server.admin_key}"}
        r = httpx.post(f"{server.base_url}/api/workers/tokens", json={"name": "owner"}, headers=headers)
        token = r.json()["token"]
        SECRETS.add(token)
        args = [
            "--server",
            server.base_url,
            "--token",
            token,
            "--worker-id",
            "owned",
            "--allow-command",
            "/bin/sh",
        ]
        worker = server.add_worker(*args, name="owned")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            fleet = httpx.get(f"{server.base_url}/api/workers", headers=headers).json()["data"]
            if any(w["id"] == "owned" and w["state"] == "healthy" for w in fleet):
                break
            time.sleep(0.2)
        yield server, worker
    finally:
        server.stop()
        drop_pg_database(url)


def test_a_worker_process_refuses_what_its_flags_do_not_allow(cluster: tuple[Server, Worker]) -> None:
    server, worker = cluster
    state = deploy_and_wait_failed(server, "c-shell", {"command": '/usr/bin/env sh -c "id"'}, timeout_s=60)
    assert state["worker_id"] == "owned"
    assert "does not allow custom engine server commands" in state["reason"]
    state = deploy_and_wait_failed(server, "c-url", {"url": "http://127.0.0.1:9"}, timeout_s=60)
    assert "--allow-url" in state["reason"]
    command = '/bin/sh -c "echo child-said-$((6*7))x; exit 3"'  # allowed by --allow-command /bin/sh
    state = deploy_and_wait_failed(server, "c-talker", {"command": command}, timeout_s=60)
    assert "exited with status 3" in state["reason"]
    assert MARKER not in state["reason"]
    assert MARKER in worker.logs()
