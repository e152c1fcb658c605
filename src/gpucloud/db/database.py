"""`Database`: the async engine and the ways to use it — `session()` (ORM) and `read()` (Core) to
read, `transaction()` (a Core connection inside a transaction) to write, and `writer` (group commit,
see `db.writer`) for the writes on the request path.

On SQLite, writes are serialised in-process and begin with `BEGIN IMMEDIATE`: a deferred
transaction that reads and then writes can fail with "database is locked" without waiting for the
busy timeout, because SQLite cannot upgrade its lock while another writer holds one. Reads run in
autocommit mode (each statement its own snapshot), which WAL lets run beside the writer; an
explicit BEGIN/ROLLBACK around each read cost 0.8 ms here. Writes use Core statements on a
connection: the ORM unit of work costs about 0.9 ms more per transaction, on the hot path of every
request. On PostgreSQL both paths are plain pooled transactions.

The group-commit writer's transactions run, on SQLite, in one dedicated thread on a plain `sqlite3`
connection (one thread hop per batch of statements), under the same in-process write lock as
`transaction()`, so the two never wait on SQLite's busy handler; on PostgreSQL, through
`AsyncConnection.run_sync` on the loop. Every engine hides statement parameters from its error
messages, so a failed statement never carries a prompt or a digest into a log line.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

from gpucloud.db.writer import GroupWriter

T = TypeVar("T")


class Database:
    def __init__(self, url: str, *, busy_timeout_ms: int = 30000, pool_size: int = 10) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self._busy_timeout_ms = busy_timeout_ms
        self._write_lock = asyncio.Lock()
        if self.is_sqlite:
            # Writers take turns (the write lock), so two connections suffice; readers run side by side,
            # and a pool that fits the concurrency avoids opening a connection (and its thread) per read.
            self._engine = self._sqlite_engine(url, "BEGIN IMMEDIATE", pool_size=2, overflow=2)
            self._read_engine = self._sqlite_engine(url, None, pool_size=24, overflow=8)
            self._sync_writer: Engine | None = self._sqlite_sync_writer(url)
            self._writer_thread: ThreadPoolExecutor | None = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="sqlite-writer"
            )
        else:
            self._engine = create_async_engine(
                url, pool_size=pool_size, max_overflow=pool_size * 2, hide_parameters=True
            )
            self._read_engine = self._engine
            self._sync_writer, self._writer_thread = None, None
        self._reads = async_sessionmaker(self._read_engine, expire_on_commit=False)
        self.writer = GroupWriter(self.run_sync_write)

    def _sqlite_engine(self, url: str, begin: str | None, *, pool_size: int, overflow: int) -> AsyncEngine:
        engine = create_async_engine(url, pool_size=pool_size, max_overflow=overflow, hide_parameters=True)
        self._configure_sqlite(engine.sync_engine, begin)
        return engine

    def _sqlite_sync_writer(self, url: str) -> Engine:
        """The writer thread's engine: one plain sqlite3 connection, used by that thread only."""
        sync_url = url.replace("sqlite+aiosqlite:", "sqlite:", 1)
        engine = create_engine(
            sync_url,
            poolclass=StaticPool,
            connect_args={"check_same_thread": False},
            hide_parameters=True,
        )
        self._configure_sqlite(engine, "BEGIN IMMEDIATE")
        return engine

    def _configure_sqlite(self, engine: Engine, begin: str | None) -> None:
        busy = self._busy_timeout_ms

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
            # Take transaction control from the driver so that `begin` below decides how to begin.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={int(busy)}")
            cursor.execute("PRAGMA synchronous=NORMAL")  # durable in WAL at checkpoint; fast commits
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        if begin is not None:

            @event.listens_for(engine, "begin")
            def _on_begin(connection: Any) -> None:
                connection.exec_driver_sql(begin)

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only: never write through it (on SQLite its connections run in
        autocommit mode, so a statement would commit at once; writes go through `transaction()`)."""
        async with self._reads() as session:
            yield session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A Core connection for reads on the hot path (no ORM objects built)."""
        async with self._read_engine.connect() as connection:
            yield connection

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A connection inside a write transaction, committed on success (Core statements)."""
        if self.is_sqlite:
            async with self._write_lock, self._engine.begin() as connection:
                yield connection
        else:
            async with self._engine.begin() as connection:
                yield connection

    async def run_sync_write(self, operation: Callable[[Connection], T]) -> T:
        """Run `operation` (synchronous Core statements) in one transaction and commit it."""
        if self._sync_writer is None or self._writer_thread is None:
            async with self._engine.begin() as connection:
                return await connection.run_sync(operation)
        writer = self._sync_writer
        async with self._write_lock:
            return await asyncio.get_running_loop().run_in_executor(
                self._writer_thread, _in_transaction, writer, operation
            )

    async def ping(self) -> None:
        async with self._read_engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        await self.writer.close()
        if self._sync_writer is not None and self._writer_thread is not None:
            await asyncio.get_running_loop().run_in_executor(self._writer_thread, self._sync_writer.dispose)
            self._writer_thread.shutdown(wait=True)
        await self._engine.dispose()
        if self._read_engine is not self._engine:
            await self._read_engine.dispose()


def _in_transaction(engine: Engine, operation: Callable[[Connection], T]) -> T:
    with engine.begin() as connection:
        return operation(connection)
