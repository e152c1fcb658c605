"""A real Redis Cluster for tests: three masters on free loopback ports, no replicas.

Each node is a `redis-server --cluster-enabled yes` subprocess with its own ports (client and
cluster bus) and config file in a temporary directory, without persistence; `redis-cli --cluster
create` assigns the 16384 slots. The cluster is ready when every node reports `cluster_state:ok`.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import free_port

MASTERS = 3


@dataclass
class RedisClusterNodes:
    """The running nodes; `url` names one of them with the cluster scheme."""

    ports: list[int]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.ports[0]}/0"

    @property
    def plain_url(self) -> str:
        """The same node as a plain URL (for `GPUCLOUD_REDIS_CLUSTER=true`)."""
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def redis_cluster_available() -> bool:
    return shutil.which("redis-server") is not None and shutil.which("redis-cli") is not None


def _start_node(port: int, bus_port: int, directory: Path) -> subprocess.Popen[bytes]:
    log = (directory / f"redis-{port}.log").open("ab")
    command = [
        "redis-server",
        "--port", str(port),
        "--cluster-enabled", "yes",
        "--cluster-port", str(bus_port),
        "--cluster-config-file", str(directory / f"nodes-{port}.conf"),
        "--cluster-node-timeout", "5000",
        "--dir", str(directory),
        "--save", "",
        "--appendonly", "no",
        "--bind", "127.0.0.1",
        "--daemonize", "no",
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)


def _cli(port: int, *args: str) -> str:
    done = subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "-p", str(port), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done.stdout + done.stderr


def _wait(check: object, what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise RuntimeError(f"the Redis Cluster never became ready: {what}")
        time.sleep(0.1)


@contextmanager
def redis_cluster(directory: Path) -> Iterator[RedisClusterNodes]:
    """Start the nodes, create the cluster, wait for `cluster_state:ok` everywhere; kill at exit."""
    nodes = RedisClusterNodes([free_port() for _ in range(MASTERS)])
    try:
        for port in nodes.ports:
            nodes.processes.append(_start_node(port, free_port(), directory))
        for port in nodes.ports:
            _wait(lambda port=port: "PONG" in _cli(port, "ping"), f"node {port} answering")
        created = subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in nodes.ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert created.returncode == 0, created.stdout + created.stderr
        for port in nodes.ports:
            _wait(lambda port=port: "cluster_state:ok" in _cli(port, "cluster", "info"), f"node {port} ok")
        yield nodes
    finally:
        nodes.stop()
