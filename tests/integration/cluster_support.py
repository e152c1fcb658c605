"""Helpers for the cluster-mode delivery tests: real gateways and workers, the database, a TCP proxy.

Everything here drives real processes (`gpucloud serve`, `gpucloud worker`), real Redis and real
PostgreSQL; nothing imitates the project's code. The proxy stands between a gateway (and its
workers) and Redis so that a test can cut Redis off without stopping the shared server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import asyncpg
import httpx2
import openai
import pytest
from redis import Redis
from redis.exceptions import ResponseError

from gpucloud.queue.names import RedisNames
from tests.support import (
    REDIS_URL,
    Server,
    Worker,
    create_pg_database_async,
    drop_pg_database_async,
    free_port,
    make_server,
)

# Short leases make reclaim quick: a lost job is delivered again within about 2 s.
LEASE_TIMEOUT_S = 1.5
BASE_ENV = {"GPUCLOUD_QUEUE__LEASE_TIMEOUT_S": str(LEASE_TIMEOUT_S)}


def openai_client(base_url: str, api_key: str, *, timeout: float = 30) -> openai.AsyncOpenAI:
    """The SDK without its retries, so that a test sees every failure, and with idle pooled
    connections dropped after 2 s: the gateway (uvicorn) closes idle keep-alive connections after
    5 s, the client's default too, and a request sent on one just as the server closes it fails with
    a connection error that says nothing about the product."""
    limits = httpx2.Limits(max_connections=1000, max_keepalive_connections=100, keepalive_expiry=2.0)
    http = openai.DefaultAsyncHttpxClient(limits=limits, timeout=timeout)
    return openai.AsyncOpenAI(
        base_url=base_url, api_key=api_key, max_retries=0, timeout=timeout, http_client=http
    )


def pg_dsn(database_url: str) -> str:
    """The asyncpg DSN of a SQLAlchemy URL."""
    return database_url.replace("postgresql+asyncpg://", "postgresql://")


def job_id_of(response_id: str) -> str:
    """`chatcmpl-<hex>` / `cmpl-<hex>` → `job_<hex>` (the gateway derives one from the other)."""
    return "job_" + response_id.split("-", 1)[1]


@dataclass
class Cluster:
    """One gateway (or several sharing a database and a Redis prefix) and its database."""

    server: Server
    database_url: str
    tmp: Path
    gateways: list[Server] = field(default_factory=list)

    async def rows(self, sql: str, *args: object) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(pg_dsn(self.database_url))
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    async def job(self, job_id: str) -> asyncpg.Record | None:
        rows = await self.rows("SELECT * FROM jobs WHERE id = $1", job_id)
        return rows[0] if rows else None

    async def usage(self, job_id: str) -> list[asyncpg.Record]:
        return await self.rows("SELECT * FROM usage_records WHERE job_id = $1", job_id)

    async def wait_for(
        self, sql: str, *args: object, timeout_s: float = 10.0, until: Callable[[list[Any]], bool] = bool
    ) -> list[asyncpg.Record]:
        """Poll `sql` until `until(rows)` holds; the last rows either way."""
        deadline = time.monotonic() + timeout_s
        while True:
            rows = await self.rows(sql, *args)
            if until(rows) or time.monotonic() > deadline:
                return rows
            await asyncio.sleep(0.05)

    def add_gateway(self, name: str) -> Server:
        """Another gateway process on the same database, Redis prefix and admin key."""
        tmp = self.tmp / name
        tmp.mkdir(parents=True, exist_ok=True)
        gateway = Server(
            base_url=f"http://127.0.0.1:{free_port()}",
            admin_key=self.server.admin_key,
            data_dir=tmp / "data",
            log_path=tmp / "server.log",
            env=dict(self.server.env),
        )
        gateway.start()
        self.gateways.append(gateway)
        return gateway

    def redis(self) -> Redis:
        """A blocking client of this cluster's Redis (for a test's own thread)."""
        return Redis.from_url(self.server.env["GPUCLOUD_REDIS_URL"], decode_responses=True)

    def held_jobs(self, client: Redis, model: str, worker_id: str) -> list[str]:
        """Ids of the jobs whose queue deliveries `worker_id` holds now (pending for it in Redis).

        Blocking on purpose: asked right after a SIGKILL, the answer must come before the lease
        expires and another worker takes the deliveries, whatever an event loop is busy with."""
        names = RedisNames(self.server.env["GPUCLOUD_REDIS_PREFIX"])
        held: list[str] = []
        for key in names.model_jobs(model):
            try:
                pending = client.xpending_range(
                    key, names.WORKERS_GROUP, min="-", max="+", count=1000, consumername=worker_id
                )
            except ResponseError:  # no job of this class was ever queued: no stream, no group
                continue
            for entry in cast(list[dict[str, Any]], pending):
                found = client.xrange(key, entry["message_id"], entry["message_id"])
                entries = cast(list[tuple[str, dict[str, str]]], found)
                held += [json.loads(fields["job"])["job_id"] for _, fields in entries]
        return held

    def worker(
        self,
        model: str,
        *engine_options: str,
        worker_id: str,
        slots: int = 4,
        env: dict[str, str] | None = None,
    ) -> Worker:
        """Start a `gpucloud worker` for `model` with the simulated engine's `KEY=VALUE` options."""
        args = ["--model", model, "--slots", str(slots), "--worker-id", worker_id]
        for option in engine_options:
            args += ["--engine-option", option]
        if env is None:
            return self.server.add_worker(*args, name=worker_id)
        worker = Worker(args, {**self.server.env, **env}, self.tmp / f"{worker_id}.log").start()
        self.server.workers.append(worker)
        return worker


ClusterFactory = Callable[..., Awaitable[Cluster]]


@pytest.fixture(name="cluster_factory")
async def cluster_factory_fixture(tmp_path: Path) -> AsyncIterator[ClusterFactory]:
    """Builds clusters for one test and stops every process and drops every database afterwards."""
    made: list[Cluster] = []

    async def make(env: dict[str, str] | None = None, *, redis_url: str = REDIS_URL) -> Cluster:
        database_url = await create_pg_database_async()
        tmp = tmp_path / f"cluster-{len(made)}"
        server = make_server(
            tmp, database_url=database_url, redis_url=redis_url, env={**BASE_ENV, **(env or {})}
        )
        cluster = Cluster(server, database_url, tmp)
        made.append(cluster)
        server.start()
        return cluster

    yield make
    for cluster in reversed(made):
        for worker in cluster.server.workers:
            if worker.process is not None and worker.process.poll() is None:
                worker.process.send_signal(signal.SIGCONT)  # a stopped worker cannot drain
        for gateway in cluster.gateways:
            gateway.stop()
        cluster.server.stop()
        await drop_pg_database_async(cluster.database_url)


def kill(worker: Worker) -> None:
    """SIGKILL `worker` and reap it."""
    assert worker.process is not None
    worker.process.kill()
    worker.process.wait()


class TcpProxy:
    """Forwards 127.0.0.1:`port` to Redis; `stop` cuts every connection, `start` listens again.

    It runs its own event loop in a thread, so that it keeps forwarding while the test's loop is
    blocked (starting a server waits synchronously for readiness).
    """

    def __init__(self, target_host: str = "127.0.0.1", target_port: int = 6379) -> None:
        self.port = free_port()
        self._target = (target_host, target_port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="redis-proxy", daemon=True)
        self._thread.start()
        self._server: asyncio.Server | None = None
        self._transports: set[asyncio.WriteTransport] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self.reset = True  # how `stop` ends open connections: RST (True) or FIN

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(5)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._cut(), self._loop).result(5)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port, reuse_address=True)

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for transport in list(self._transports):
            if self.reset:
                transport.abort()  # an RST, as when a connection is torn down on the way
            else:
                transport.close()  # a FIN, as when the Redis server process exits
        self._transports.clear()
        if self._handlers:
            await asyncio.wait(self._handlers, timeout=2)

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)
        try:
            upstream_r, upstream_w = await asyncio.open_connection(*self._target)
        except OSError:
            client_w.transport.abort()
            return
        pair = (client_w.transport, upstream_w.transport)
        self._transports.update(pair)
        try:
            await asyncio.gather(_pipe(client_r, upstream_w), _pipe(upstream_r, client_w))
        finally:
            for transport in pair:
                self._transports.discard(transport)
                transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.transport.abort()
