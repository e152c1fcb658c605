"""Worker registration, heartbeats, health with hysteresis, drain and the fleet views, with real
processes: one gateway (Redis queue, PostgreSQL) and `gpucloud worker --server … --token …`
processes with simulated GPUs. Health timings are shortened through the environment."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
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

MODEL = "gpucloud-sim-workers"
INTERVAL_S, UNHEALTHY_S, OFFLINE_S, MONITOR_S = 0.5, 1.5, 3.0, 0.25
ENV = {
    "GPUCLOUD_CLUSTER__HEARTBEAT_INTERVAL_S": str(INTERVAL_S),
    "GPUCLOUD_CLUSTER__UNHEALTHY_AFTER_S": str(UNHEALTHY_S),
    "GPUCLOUD_CLUSTER__OFFLINE_AFTER_S": str(OFFLINE_S),
    "GPUCLOUD_CLUSTER__RECOVER_BEATS": "2",
    "GPUCLOUD_CLUSTER__MONITOR_EVERY_S": str(MONITOR_S),
}
GPUS = {"w0": "H100:80", "w1": "A10:24x2", "w2": "L4:24"}


def admin(server: Server) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.admin_key}"}


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def new_token(server: Server, name: str = "fleet") -> dict[str, Any]:
    r = httpx.post(f"{server.base_url}/api/workers/tokens", json={"name": name}, headers=admin(server))
    assert r.status_code == 201, r.text
    SECRETS.add(r.json()["token"])
    data: dict[str, Any] = r.json()
    return data


def start_worker(server: Server, token: str, worker_id: str, *extra: str) -> Worker:
    args = ["--model", MODEL, "--slots", "4", "--engine-option", "tokens_per_s=200", "--grace", "2"]
    args += ["--server", server.base_url, "--token", token, "--worker-id", worker_id, *extra]
    return server.add_worker(*args, name=f"{worker_id}-{len(server.workers)}")


def workers(server: Server) -> dict[str, dict[str, Any]]:
    r = httpx.get(f"{server.base_url}/api/workers", headers=admin(server), timeout=5)
    assert r.status_code == 200, r.text
    return {w["id"]: w for w in r.json()["data"]}


def wait_until(check: Any, timeout_s: float = 15.0, every_s: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(every_s)
    raise AssertionError("condition not met in time")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    database_url = create_pg_database()
    server = make_server(
        tmp_path_factory.mktemp("workers"), database_url=database_url, redis_url=REDIS_URL, env=ENV
    )
    server.start()
    token = new_token(server)["token"]
    for worker_id, spec in GPUS.items():
        start_worker(server, token, worker_id, "--simulate-gpus", spec, "--label", f"zone={worker_id}")
    try:
        wait_until(lambda: len(workers(server)) == 3)
        yield server, token
    finally:
        server.stop()
        drop_pg_database(database_url)


def test_workers_register_with_their_gpus(fleet: tuple[Server, str]) -> None:
    server, _ = fleet
    seen = wait_until(
        lambda: (w := workers(server)) and all(x["state"] == "healthy" for x in w.values()) and w
    )
    assert sorted(seen) == ["w0", "w1", "w2"]
    w1 = seen["w1"]
    assert w1["labels"] == {"zone": "w1"}
    assert w1["models"] == [MODEL]
    assert w1["slots"] == 4
    assert [g["name"] for g in w1["gpus"]] == ["A10", "A10"]
    assert w1["gpus"][0]["memory_total_bytes"] == 24_000_000_000
    assert {"utilization", "temperature_c", "power_w", "memory_used_bytes"} <= set(w1["gpus"][0])
    assert w1["last_heartbeat_age_s"] < 2
    # The fleet view is read apart from the list: on a loaded machine a heartbeat may be late
    # between the two reads, so wait for it to count all three too.
    cluster = wait_until(
        lambda: (
            (c := httpx.get(f"{server.base_url}/api/cluster", headers=admin(server)).json())
            and c["workers"]["healthy"] == 3
            and c
        )
    )
    assert cluster["workers"]["healthy"] == 3
    assert cluster["workers"]["total"] == 3
    assert cluster["gpus"]["count"] == 4
    assert cluster["gpus"]["memory_total_bytes"] == (80 + 24 * 2 + 24) * 1_000_000_000
    assert cluster["slots"] == 12
    assert cluster["models"] == [MODEL]
    assert cluster["queue_depth"][MODEL] == 0


def test_heartbeats_carry_the_engines_own_load(fleet: tuple[Server, str]) -> None:
    """A fixed engine's `load_metrics` (an engine server's running/waiting requests; the simulated
    engine's running requests) reaches the control plane with every beat."""
    server, _ = fleet
    server.wait_for_model(MODEL)
    idle = wait_until(lambda: workers(server)["w0"]["engine_load"].get(MODEL))
    assert set(idle) == {"running_requests"}
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 400}
    stop = threading.Event()

    def keep_busy() -> None:  # requests back to back, so some are always running
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                r = client.post(f"{server.v1}/chat/completions", json=body, headers=admin(server))
                assert r.status_code == 200, r.text

    def running() -> float:
        return float(
            sum(w["engine_load"].get(MODEL, {}).get("running_requests", 0) for w in workers(server).values())
        )

    with ThreadPoolExecutor(max_workers=4) as pool:
        busy = [pool.submit(keep_busy) for _ in range(4)]
        try:
            assert wait_until(lambda: running() > 0, timeout_s=15)
        finally:
            stop.set()
        for future in busy:
            future.result()


def test_gpu_gauges_are_exported_by_the_metrics_leader(fleet: tuple[Server, str]) -> None:
    server, _ = fleet

    def scraped() -> str | None:
        text = httpx.get(f"{server.base_url}/metrics", headers=admin(server)).text
        return text if 'gpucloud_workers{state="healthy"} 3.0' in text else None

    text = wait_until(scraped, timeout_s=20, every_s=0.5)  # the leader refreshes every 5 s
    assert 'gpucloud_gpu_memory_total_bytes{gpu="1",worker="w1"} 2.4e+10' in text
    for name in ("utilization_ratio", "temperature_celsius", "power_watts", "memory_used_bytes"):
        assert f'gpucloud_gpu_{name}{{gpu="0",worker="w0"}}' in text


def test_worker_endpoints_take_only_worker_tokens(fleet: tuple[Server, str]) -> None:
    server, token = fleet
    base = server.base_url
    body = {"worker_id": "intruder", "hostname": "h", "cpu_count": 1, "memory_total_bytes": 0,
            "memory_available_bytes": 0, "slots": 1}  # fmt: skip
    mistyped = token[:-1] + ("x" if token[-1] != "x" else "y")  # never the token itself
    for headers in ({}, bearer(server.admin_key), bearer("gcw_" + "A" * 49), bearer(mistyped)):
        r = httpx.post(f"{base}/api/workers/register", json=body, headers=headers)
        assert r.status_code == 401, r.text
        r = httpx.post(f"{base}/api/workers/w0/heartbeat", json={}, headers=headers)
        assert r.status_code == 401, r.text
    for method, path in (("GET", "/v1/models"), ("GET", "/api/keys"), ("GET", "/api/usage"),
                         ("GET", "/api/workers"), ("POST", "/api/workers/w0/drain")):  # fmt: skip
        r = httpx.request(method, f"{base}{path}", headers=bearer(token))
        assert r.status_code == 401, (path, r.text)
        assert r.json()["error"]["code"] == "invalid_api_key"
    assert "intruder" not in workers(server)


def test_registration_is_validated(fleet: tuple[Server, str]) -> None:
    server, token = fleet
    gpu = {"index": 0, "uuid": "GPU-x", "name": "X", "memory_total_bytes": 1, "memory_used_bytes": 0,
           "utilization": None, "temperature_c": None, "power_w": None}  # fmt: skip
    base = {"worker_id": "v", "hostname": "h", "cpu_count": 1, "memory_total_bytes": 0,
            "memory_available_bytes": 0, "slots": 1}  # fmt: skip
    bad = [
        {**base, "extra": 1},
        {**base, "gpus": [{**gpu, "index": i} for i in range(65)]},
        {**base, "labels": {"k" * 64: "v"}},
        {**base, "labels": {"k": "v" * 256}},
        {**base, "worker_id": "a b"},
        {**base, "gpus": [{**gpu, "utilization": 1.5}]},
    ]
    for body in bad:
        r = httpx.post(f"{server.base_url}/api/workers/register", json=body, headers=bearer(token))
        assert r.status_code == 400, (body, r.text)
    r = httpx.post(f"{server.base_url}/api/workers/nobody/heartbeat", json={}, headers=bearer(token))
    assert r.status_code == 404


def test_a_killed_worker_goes_unhealthy_then_offline_and_recovers(fleet: tuple[Server, str]) -> None:
    server, token = fleet
    victim = next(w for w in server.workers if "--worker-id" in w.args and "w2" in w.args)
    wait_until(lambda: workers(server)["w2"]["state"] == "healthy")
    assert victim.process is not None
    victim.process.send_signal(signal.SIGKILL)
    victim.process.wait()
    killed = time.monotonic()
    seen: dict[str, float] = {}

    def offline() -> bool:
        state = str(workers(server)["w2"]["state"])
        seen.setdefault(state, time.monotonic() - killed)
        return state == "offline"

    wait_until(offline, timeout_s=OFFLINE_S + 5)
    assert "unhealthy" in seen, seen
    # The last beat came up to one interval before the kill; the monitor looks every MONITOR_S.
    assert UNHEALTHY_S - INTERVAL_S - 0.1 <= seen["unhealthy"] <= UNHEALTHY_S + MONITOR_S + 1.0, seen
    assert OFFLINE_S - INTERVAL_S - 0.1 <= seen["offline"] <= OFFLINE_S + MONITOR_S + 1.0, seen
    print(f"\nSIGKILL → unhealthy {seen['unhealthy']:.2f}s, offline {seen['offline']:.2f}s")

    restarted = time.monotonic()
    start_worker(server, token, "w2", "--simulate-gpus", GPUS["w2"])
    states: list[tuple[str, int]] = []

    def healthy() -> bool:
        w = workers(server)["w2"]
        states.append((w["state"], w["consecutive_beats"]))
        return bool(w["state"] == "healthy")

    wait_until(healthy, timeout_s=20, every_s=0.02)
    print(f"restart → healthy {time.monotonic() - restarted:.2f}s; observed {sorted(set(states))}")
    # Hysteresis: registration is one beat, and one beat is not enough.
    assert states[0] == ("offline", 0), states  # the monitor reset the run when it went silent
    assert all(state == "offline" for state, beats in states if beats < 2), states
    log = server.logs()
    assert "worker w2: healthy -> unhealthy (no heartbeat for" in log
    assert "worker w2: unhealthy -> offline (no heartbeat for" in log
    assert "worker w2: offline -> healthy (2 consecutive heartbeats)" in log


def _complete(server: Server, n: int) -> list[str]:
    def one(_: int) -> str:
        r = httpx.post(
            f"{server.v1}/chat/completions",
            json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 20},
            headers=admin(server),
            timeout=30,
        )
        assert r.status_code == 200, r.text
        return "job_" + str(r.json()["id"]).split("-", 1)[1]

    with ThreadPoolExecutor(max_workers=12) as pool:
        return list(pool.map(one, range(n)))


def _workers_of(server: Server, job_ids: list[str]) -> set[str]:
    found = set()
    for job_id in job_ids:
        r = httpx.get(f"{server.v1}/jobs/{job_id}", headers=admin(server))
        found.add(r.json()["worker_id"])
    return found


def test_drain_stops_new_leases_and_undrain_resumes(fleet: tuple[Server, str]) -> None:
    server, _ = fleet
    server.wait_for_model(MODEL)
    r = httpx.post(f"{server.base_url}/api/workers/w0/drain", headers=admin(server))
    assert r.status_code == 200
    assert r.json()["draining"] is True
    time.sleep(INTERVAL_S * 3)  # the worker hears of it in its next heartbeat's answer
    assert "w0" not in _workers_of(server, _complete(server, 24))
    assert "w0: draining" in next(w for w in server.workers if "w0" in w.args).logs()
    r = httpx.post(f"{server.base_url}/api/workers/w0/undrain", headers=admin(server))
    assert r.status_code == 200
    assert r.json()["draining"] is False
    time.sleep(INTERVAL_S * 3)
    wait_until(lambda: "w0" in _workers_of(server, _complete(server, 24)), timeout_s=30, every_s=0)
    assert httpx.post(f"{server.base_url}/api/workers/nope/drain", headers=admin(server)).status_code == 404


def _cli(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gpucloud", "workers", "token", *args],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_tokens_and_a_revoked_token_ends_the_worker(fleet: tuple[Server, str], tmp_path: Path) -> None:
    server, _ = fleet
    created = _cli(server, "create", "--name", "cli-token")
    assert created.returncode == 0, created.stderr
    fields = dict(line.split(":", 1) for line in created.stdout.splitlines() if ":" in line)
    token_id, secret = fields["id"].strip(), fields["token"].strip()
    SECRETS.add(secret)
    assert secret.startswith("gcw_")
    assert len(secret) == 4 + 43 + 6
    listed = _cli(server, "list")
    assert token_id in listed.stdout
    assert secret not in listed.stdout
    assert "active" in listed.stdout
    api = httpx.get(f"{server.base_url}/api/workers/tokens", headers=admin(server)).json()["data"]
    assert token_id in [t["id"] for t in api]
    assert all("token" not in t and "digest" not in t for t in api)

    worker = start_worker(server, secret, "w-cli")
    wait_until(lambda: "w-cli" in workers(server))
    revoked = _cli(server, "revoke", token_id)
    assert revoked.returncode == 0
    assert "revoked" in revoked.stdout
    assert worker.process is not None
    assert worker.process.wait(timeout=15) == 2  # refused on the next heartbeat: drain, exit 2
    # The revoke marks the token and ends its workers' sessions: a heartbeat in flight may pass
    # the token check just before and meet its ended session after (409) instead of the 401.
    logs = worker.logs()
    assert "rejected the worker token" in logs or "This session of worker 'w-cli' has ended" in logs
    assert secret not in worker.logs()


def test_a_worker_with_a_bad_token_exits_at_once(fleet: tuple[Server, str]) -> None:
    server, _token = fleet
    gone = new_token(server, "short-lived")
    r = httpx.delete(f"{server.base_url}/api/workers/tokens/{gone['id']}", headers=admin(server))
    assert r.status_code == 200
    assert r.json()["revoked_at"]
    for secret in (gone["token"], server.admin_key):
        worker = start_worker(server, secret, "w-bad")
        assert worker.process is not None
        assert worker.process.wait(timeout=20) == 2
        assert "refused this worker" in worker.logs()
    assert "w-bad" not in workers(server)
