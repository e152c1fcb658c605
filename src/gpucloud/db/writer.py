"""`GroupWriter`: the hot path's writes, committed together (group commit).

Every write on the request path (a job's row, the finalizer's batch of endings) is an *operation*:
a plain function of a synchronous SQLAlchemy `Connection` that runs Core statements. The writer
runs the operations that are waiting in one transaction and commits once:

* an operation that arrives while the writer is idle starts a commit at once — nothing waits for
  company, so a lone request pays no added delay;
* operations that arrive while a commit is in flight wait for it to end and then go together in
  the next one (classic group commit: the batch grows with the load, the commits per second don't);
* a caller's `await` returns only after the transaction holding its operation committed, so a
  client is never answered about a write that could still be lost;
* when a batch fails, each of its operations runs again alone, in a transaction of its own, so the
  one that failed gets its own exception and the others commit — never a row lost or doubled,
  since an operation either committed with its batch or runs once more by itself.

Where the transaction runs depends on the driver (`Database.run_sync_write`): on SQLite a dedicated
thread owns a plain `sqlite3` connection, so a batch costs one thread hop instead of one per
statement (aiosqlite's); on PostgreSQL asyncpg runs the same function through SQLAlchemy's
`run_sync` on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection

log = logging.getLogger(__name__)
T = TypeVar("T")
Operation = Callable[[Connection], T]
# Runs a function in one committed transaction (the database's own way) and returns its result.
TransactionRunner = Callable[[Callable[[Connection], Any]], Awaitable[Any]]


@dataclass(slots=True)
class _Pending(Generic[T]):
    operation: Operation[T]
    done: asyncio.Future[T]


class GroupWriter:
    """Batches operations into shared transactions (see module docstring)."""

    def __init__(self, run: TransactionRunner, *, max_batch: int = 512) -> None:
        self._run = run
        self._max_batch = max_batch
        self.observe: Callable[[int], None] = lambda _size: None  # operations per committed batch
        self._pending: list[_Pending[Any]] = []
        self._flushing: asyncio.Task[None] | None = None
        self.commits = 0  # transactions committed (a benchmark reads operations per commit)
        self.operations = 0

    async def write(self, operation: Operation[T]) -> T:
        """Run `operation` in the next transaction; returns its result once that one committed."""
        done: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(operation, done))
        if self._flushing is None:
            self._flushing = asyncio.create_task(self._flush(), name="group-commit")
        return await done

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                await self._commit(batch)
        finally:
            self._flushing = None

    async def _commit(self, batch: list[_Pending[Any]]) -> None:
        try:
            results = await self._run(lambda connection: [p.operation(connection) for p in batch])
        except BaseException as exc:
            if len(batch) == 1 or isinstance(exc, asyncio.CancelledError):
                _settle_error(batch, exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                return
            log.warning("group commit of %d operations failed (%s); running them one by one", len(batch), exc)
            for pending in batch:
                await self._commit([pending])
            return
        self.commits += 1
        self.operations += len(batch)
        self.observe(len(batch))
        for pending, result in zip(batch, results, strict=True):
            if not pending.done.done():
                pending.done.set_result(result)

    async def close(self) -> None:
        """Let the writes already handed in commit."""
        if self._flushing is not None:
            await asyncio.shield(self._flushing)


def _settle_error(batch: list[_Pending[Any]], exc: BaseException) -> None:
    for pending in batch:
        if not pending.done.done():
            pending.done.set_exception(exc)
