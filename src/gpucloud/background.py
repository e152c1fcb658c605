"""`Background`: one named asyncio task that a long-lived part starts once and cancels on close.

The finalizer, reconciler, registry, monitors and reply router each own one; this keeps their
start/close the same (idempotent, cancellation awaited) without each writing it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)
# How long a cancelled task may take to stop before shutdown goes on without it (less than a
# shutdown step's own bound, `close_within`, so that the task's stack is the one logged).
STOP_TIMEOUT_S = 3.0
# How often the cancellation is repeated while the task has not ended.
_RECANCEL_S = 0.1


class Background:
    def __init__(self, name: str, run: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._name = name
        self._run = run
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the task unless it runs already."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self._name)

    async def close(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Cancel the task and wait until it has stopped, for at most `timeout_s`.

        The cancellation is repeated until the task ends: a client library may turn one that
        reaches it mid-call into its own error (redis-py can make it a ConnectionError), which a
        retry loop then catches and goes on; the next one reaches the loop's own sleep. A task
        that outlives them all is logged with where it is stuck and left behind, so that the
        process still shuts down."""
        task, self._task = self._task, None
        if task is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not task.done() and loop.time() < deadline:
            task.cancel()
            await asyncio.wait({task}, timeout=min(_RECANCEL_S, max(0.0, deadline - loop.time())))
        if not task.done():
            log.warning(
                "%s did not stop within %.0f s of its cancellation; left behind, stuck at:\n%s",
                self._name,
                timeout_s,
                stack_of(task),
            )
            return
        with contextlib.suppress(asyncio.CancelledError):
            await task


def stack_of(task: asyncio.Task[Any]) -> str:
    """Where `task` is suspended now, outermost frame first, following each coroutine into the one
    it awaits (`Task.print_stack` shows only the outermost)."""
    lines = []
    awaited: Any = task.get_coro()
    while (frame := getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)) is not None:
        lines.append(f'  File "{frame.f_code.co_filename}", line {frame.f_lineno}, in {frame.f_code.co_name}')
        awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
    return "\n".join(lines)


async def close_within(name: str, close: Callable[[], Awaitable[None]], timeout_s: float) -> None:
    """Run one step of a shutdown for at most `timeout_s`. A step that hangs (a connection that
    never answers) is logged with where it hangs and abandoned, and one that fails is logged: in
    both cases the steps after it still run, so SIGTERM ends the process in bounded time."""
    task = asyncio.ensure_future(close())
    done, _ = await asyncio.wait({task}, timeout=timeout_s)
    if not done:
        log.warning(
            "shutdown: %s did not close within %.0f s; going on without it, stuck at:\n%s",
            name,
            timeout_s,
            stack_of(task),
        )
        task.cancel()
        return
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("shutdown: closing %s failed", name, exc_info=error)
