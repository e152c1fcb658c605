"""`Database`: the async engine and the two ways to use it — `session()` (ORM) to read,
`transaction()` (a Core connection inside a transaction) to write.

On SQLite, writes are serialised in-process and begin with `BEGIN IMMEDIATE`: a deferred
transaction that reads and then writes can fail with "database is locked" without waiting for the
busy timeout, because SQLite cannot upgrade its lock while another writer holds one. Reads run in
autocommit mode (each statement its own snapshot), which WAL lets run beside the writer; an
explicit BEGIN/ROLLBACK around each read cost 0.8 ms here. Writes use Core statements on a
connection: the ORM unit of work costs about 0.9 ms more per transaction, on the hot path of every
request. On PostgreSQL both paths are plain pooled transactions.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry


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
        else:
            self._engine = create_async_engine(
                url, pool_size=pool_size, max_overflow=pool_size * 2, hide_parameters=True
            )
            self._read_engine = self._engine
        self._reads = async_sessionmaker(self._read_engine, expire_on_commit=False)

    def _sqlite_engine(self, url: str, begin: str | None, *, pool_size: int, overflow: int) -> AsyncEngine:
        engine = create_async_engine(url, pool_size=pool_size, max_overflow=overflow, hide_parameters=True)
        busy = self._busy_timeout_ms

        @event.listens_for(engine.sync_engine, "connect")
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

            @event.listens_for(engine.sync_engine, "begin")
            def _on_begin(connection: Any) -> None:
                connection.exec_driver_sql(begin)

        return engine

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session for reads; whatever it wrote would be rolled back."""
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

    async def ping(self) -> None:
        async with self._read_engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        await self._engine.dispose()
        if self._read_engine is not self._engine:
            await self._read_engine.dispose()
