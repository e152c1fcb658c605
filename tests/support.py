"""Test support: real `gpucloud serve` processes on free ports, and scratch databases.

Nothing here imitates the project's code: servers are the real CLI in subprocesses, databases are
real SQLite files and real PostgreSQL databases created for the test session.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from openai import APIStatusError

# Every secret the tests hand to a server, and every log file the servers write: at the end of the
# session all those logs (written at DEBUG) are scanned for all those secrets (conftest.py).
SECRETS: set[str] = set()
LOG_FILES: set[Path] = set()
# PostgreSQL here trusts local connections and ignores the password, so the tests put one in every
# database URL they give a server: it must never appear in a log line.
PG_PASSWORD = "gctest-pw-" + secrets.token_hex(8)
SECRETS.add(PG_PASSWORD)

PG_ADMIN_DSN = os.environ.get("GPUCLOUD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("GPUCLOUD_TEST_REDIS", "redis://127.0.0.1:6379/0")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Processes that did not exit within their time after SIGTERM (each with where it was stuck).
UNCLEAN_STOPS: list[str] = []


def terminate(process: subprocess.Popen[bytes], log_path: Path, timeout_s: float) -> None:
    """SIGTERM, then, after `timeout_s`, SIGABRT: the process's fault handler (PYTHONFAULTHANDLER,
    set by `make_server`) writes every thread's stack to its log and it dies; SIGKILL if even that
    fails. A process that needed more than SIGTERM is named in `UNCLEAN_STOPS`."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout_s)
        return
    except subprocess.TimeoutExpired:
        pass
    with log_path.open("a") as log:
        log.write(f"\n--- no exit {timeout_s:.0f} s after SIGTERM: SIGABRT for the stacks\n")
    process.send_signal(signal.SIGABRT)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    text = log_path.read_text(errors="replace") if log_path.exists() else ""
    UNCLEAN_STOPS.append(f"{log_path}:\n{text[text.rfind('--- no exit') :][-3000:]}")


def admin_secret() -> str:
    secret = "gc-test-admin-" + secrets.token_hex(16)
    SECRETS.add(secret)
    return secret


async def _pg_exec(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def create_pg_database_async() -> str:
    """A fresh PostgreSQL database; returns its SQLAlchemy URL."""
    name = f"gctest_{uuid.uuid4().hex[:12]}"
    await _pg_exec(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    if "@" in base and ":" not in base.split("//", 1)[1].split("@", 1)[0]:
        user, host = base.split("//", 1)[1].split("@", 1)
        base = f"postgresql+asyncpg://{user}:{PG_PASSWORD}@{host}"
    return f"{base}/{name}"


async def drop_pg_database_async(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    await _pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def create_pg_database() -> str:
    return asyncio.run(create_pg_database_async())


def drop_pg_database(url: str) -> None:
    asyncio.run(drop_pg_database_async(url))


@dataclass
class Worker:
    """A running `gpucloud worker` process (cluster mode)."""

    args: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        LOG_FILES.add(self.log_path)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gpucloud", "worker", *self.args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        return self

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def signal(self, sig: int) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)

    def stop(self, timeout_s: float = 20) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        terminate(self.process, self.log_path, timeout_s)


@dataclass
class Server:
    """A running `gpucloud serve`; `logs` is everything it wrote."""

    base_url: str
    admin_key: str
    data_dir: Path
    log_path: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    extra_args: list[str] = field(default_factory=list)
    workers: list[Worker] = field(default_factory=list)

    def add_worker(self, *args: str, name: str | None = None) -> Worker:
        """Start a `gpucloud worker` on this server's queue (cluster mode only)."""
        name = name or f"worker-{len(self.workers)}"
        worker = Worker(list(args), self.env, self.log_path.parent / f"{name}.log").start()
        self.workers.append(worker)
        return worker

    @property
    def v1(self) -> str:
        return f"{self.base_url}/v1"

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_model(self, model: str, timeout_s: float = 120.0) -> None:
        """Wait until `model` is listed (a worker announced it)."""
        deadline = time.monotonic() + timeout_s
        headers = {"Authorization": f"Bearer {self.admin_key}"}
        while time.monotonic() < deadline:
            r = httpx.get(f"{self.v1}/models", headers=headers, timeout=5)
            if r.status_code == 200 and model in [m["id"] for m in r.json()["data"]]:
                return
            time.sleep(0.1)
        raise RuntimeError(f"model {model} never appeared")

    def start(self, timeout_s: float = 120.0) -> None:
        port = self.base_url.rsplit(":", 1)[1]
        LOG_FILES.add(self.log_path)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gpucloud",
                "serve",
                "--port",
                port,
                "--data-dir",
                str(self.data_dir),
                *self.extra_args,
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gpucloud serve exited early:\n{self.logs()[-4000:]}")
            try:
                if httpx.get(f"{self.base_url}/ready", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gpucloud serve did not become ready:\n{self.logs()[-4000:]}")

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        if self.process is None or self.process.poll() is not None:
            return
        terminate(self.process, self.log_path, 20)


def make_server(
    tmp: Path,
    *,
    database_url: str | None = None,
    redis_url: str | None = None,
    env: dict[str, str] | None = None,
    extra_args: list[str] | None = None,
) -> Server:
    admin = admin_secret()
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("GPUCLOUD_")}
    full_env.update({"GPUCLOUD_ADMIN_KEY": admin, "GPUCLOUD_LOG_LEVEL": "DEBUG", "PYTHONUNBUFFERED": "1"})
    full_env["PYTHONFAULTHANDLER"] = "1"  # a process stuck at its stop shows its stacks (`terminate`)
    # Many tests present wrong keys on purpose, all from 127.0.0.1: the failed-auth throttle is
    # tested on its own (tests/integration/test_edge_auth.py) and out of the others' way here.
    full_env["GPUCLOUD_AUTH_THROTTLE__MAX_FAILURES"] = "100000"
    if database_url:
        full_env["GPUCLOUD_DATABASE_URL"] = database_url
    if redis_url:
        full_env["GPUCLOUD_REDIS_URL"] = redis_url
        full_env["GPUCLOUD_REDIS_PREFIX"] = f"gctest-{uuid.uuid4().hex[:10]}"  # isolates test clusters
    full_env.update(env or {})
    tmp.mkdir(parents=True, exist_ok=True)
    return Server(
        base_url=f"http://127.0.0.1:{port}",
        admin_key=admin,
        data_dir=tmp / "data",
        log_path=tmp / "server.log",
        env=full_env,
        extra_args=extra_args or [],
    )


def error_body(exc: APIStatusError) -> dict[str, Any]:
    """The `error` object of a refused request (the SDK keeps the envelope's inner object)."""
    assert isinstance(exc.body, dict), exc.body
    return exc.body
