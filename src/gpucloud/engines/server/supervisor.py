"""`ServerProcess`: one engine server as a child process of the worker, kept alive.

`start` launches the command on a free 127.0.0.1 port and waits until the server's health path
answers 200 (or raises `EngineError` when it exits or the startup timeout passes; the tail of the
child's output is logged on the worker, never put in the error, which becomes an API-visible
replica reason). Then a watcher restarts the child whenever it dies, after a backoff that
doubles from `backoff_s` up to `max_backoff_s` (and starts again from `backoff_s` once a child
has stayed up `stable_s`), each time on a fresh free port: the old one may still be held.
`stop` ends the child's whole process group (servers such as vLLM run worker processes of their
own): SIGTERM, then SIGKILL after `grace_s`.

The child runs in its own session (so that a signal to the worker's terminal does not reach it
before the worker drains), dies with the worker on Linux (`PR_SET_PDEATHSIG`), and gets the
worker's environment without the `GPUCLOUD_*` variables: they hold the worker's credentials
(its token, the Redis and database URLs), which a third-party server has no business seeing.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Mapping

import httpx

from gpucloud.engines.protocol import EngineError
from gpucloud.engines.server.presets import HOST
from gpucloud.settings import child_environment

log = logging.getLogger(__name__)
child_log = logging.getLogger("gpucloud.engines.server.child")

_TAIL_LINES = 40
_POLL_S = 0.25
_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class ServerProcess:
    """A supervised engine server (see module docstring). `argv_for(port)` gives its command."""

    def __init__(
        self,
        argv_for: Callable[[int], list[str]],
        *,
        health_path: str = "/health",
        startup_timeout_s: float = 600.0,
        backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
        stable_s: float = 60.0,
        grace_s: float = 10.0,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self._argv_for = argv_for
        self._extra_env = dict(extra_env or {})  # e.g. CUDA_VISIBLE_DEVICES: the replica's GPUs
        self._health_path = health_path
        self._startup_timeout_s = startup_timeout_s
        self._backoff_s = backoff_s
        self._max_backoff_s = max_backoff_s
        self._stable_s = stable_s
        self._grace_s = grace_s
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
        self._ready = asyncio.Event()
        self._stopping = False
        self._port = 0
        self.restarts = 0  # launches after the first (for logs, metrics and tests)

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self._port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def tail(self) -> str:
        """The child's last lines of output (for errors: what it said before it failed)."""
        return "\n".join(self._tail)

    async def start(self) -> None:
        await self._launch()
        self._watcher = asyncio.create_task(self._watch(), name="engine-server-watch")

    async def wait_ready(self, timeout_s: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout_s)
        return self._ready.is_set()

    async def stop(self) -> None:
        self._stopping = True
        self._ready.clear()
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
        await self._end_child()

    async def _launch(self) -> None:
        """Start a child and wait for it to be ready; EngineError (with its output) otherwise."""
        self._port = free_port()
        argv = self._argv_for(self._port)
        self._tail.clear()
        log.info("starting engine server on %s: %s", self.base_url, argv[0])
        env = child_environment(self._extra_env)
        self._process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # only a prctl call before exec: safe in a threaded parent
        )
        self._reader = asyncio.create_task(self._read_output(self._process), name="engine-server-output")
        try:
            await self._until_healthy(self._process)
        except BaseException:
            await self._end_child()
            raise
        self._ready.set()
        log.info("engine server ready on %s (pid %d)", self.base_url, self._process.pid)

    async def _until_healthy(self, process: asyncio.subprocess.Process) -> None:
        deadline = time.monotonic() + self._startup_timeout_s
        url = self.base_url + self._health_path
        async with httpx.AsyncClient(timeout=2.0) as client:
            while True:
                if process.returncode is not None:
                    await asyncio.sleep(0.2)  # let the reader collect its last words
                    raise self._startup_error(f"exited with status {process.returncode} while starting")
                if time.monotonic() > deadline:
                    raise self._startup_error(f"was not ready within {self._startup_timeout_s:.0f}s")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(url)).status_code == 200:
                        return
                await asyncio.sleep(_POLL_S)

    def _startup_error(self, what: str) -> EngineError:
        """The error for a failed start. The child's output goes to this worker's log only: it is
        whatever the program printed (a custom command's could be anything, `id` included), and the
        error travels to the control plane as the replica's reason, which an API key can read."""
        log.warning("the engine server %s; its last output:\n%s", what, self.tail())
        return EngineError(f"the engine server {what} (its output is in the worker's log)")

    async def _read_output(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            line = raw.decode(errors="replace").rstrip()
            self._tail.append(line)
            child_log.debug("%s", line)

    async def _watch(self) -> None:
        """Restart the child whenever it exits, with exponential backoff."""
        backoff = self._backoff_s
        up_since = time.monotonic()
        while not self._stopping:
            assert self._process is not None
            status = await self._process.wait()
            if self._stopping:
                return
            self._ready.clear()
            _signal_group(self._process.pid, signal.SIGKILL)  # what it left behind (worker processes)
            if time.monotonic() - up_since >= self._stable_s:
                backoff = self._backoff_s
            log.warning(
                "engine server (pid %d) exited with status %s; restarting in %.1fs; last output:\n%s",
                self._process.pid,
                status,
                backoff,
                self.tail(),
            )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff_s)
            try:
                await self._launch()
            except EngineError as exc:
                log.error("engine server restart failed: %s", exc)
                continue
            self.restarts += 1
            up_since = time.monotonic()

    async def _end_child(self) -> None:
        process = self._process
        if process is not None and process.returncode is None:
            _signal_group(process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), self._grace_s)
            except TimeoutError:
                log.warning("engine server (pid %d) ignored SIGTERM; killing it", process.pid)
                _signal_group(process.pid, signal.SIGKILL)
                await process.wait()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
            self._reader = None


def _signal_group(pid: int, sig: signal.Signals) -> None:
    """Signal the child's process group (its own session: pgid == pid), else the child alone."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return
    except PermissionError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
