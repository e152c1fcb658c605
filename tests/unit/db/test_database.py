"""`Database` on real SQLite files: writes commit or roll back whole, reads see commits, the
SQLite connection settings hold, and failed statements hide their parameters."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from gpucloud.db import Database

SECRET_VALUE = "a-prompt-that-must-not-reach-a-log"


@pytest.fixture
async def scratch(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/d.db", busy_timeout_ms=1234)
    async with database.transaction() as connection:
        await connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)"))
    yield database
    await database.close()


async def _values(database: Database) -> list[str]:
    async with database.read() as connection:
        return [r[0] for r in await connection.execute(text("SELECT v FROM t ORDER BY id"))]


async def _insert_then_fail(database: Database) -> None:
    async with database.transaction() as connection:
        await connection.execute(text("INSERT INTO t (id, v) VALUES (2, 'b')"))
        raise RuntimeError("abandon")


async def test_a_transaction_commits_on_success_and_rolls_back_on_error(scratch: Database) -> None:
    assert scratch.is_sqlite
    async with scratch.transaction() as connection:
        await connection.execute(text("INSERT INTO t (id, v) VALUES (1, 'a')"))
    with pytest.raises(RuntimeError):
        await _insert_then_fail(scratch)
    assert await _values(scratch) == ["a"]


async def test_sync_writes_commit_in_one_transaction(scratch: Database) -> None:
    def write(connection: Connection) -> int:
        connection.execute(text("INSERT INTO t (id, v) VALUES (5, 'x')"))
        connection.execute(text("INSERT INTO t (id, v) VALUES (5, 'y')"))
        return 1

    with pytest.raises(IntegrityError):
        await scratch.run_sync_write(write)
    assert await _values(scratch) == []  # the first insert went with the failing second


async def test_failed_statements_hide_their_parameters(scratch: Database) -> None:
    async with scratch.transaction() as connection:
        await connection.execute(text("INSERT INTO t (id, v) VALUES (1, 'a')"))
    with pytest.raises(IntegrityError) as failed:
        async with scratch.transaction() as connection:
            await connection.execute(text("INSERT INTO t (id, v) VALUES (1, :v)"), {"v": SECRET_VALUE})
    assert SECRET_VALUE not in str(failed.value)


async def test_sqlite_connections_use_wal_foreign_keys_and_the_busy_timeout(scratch: Database) -> None:
    async with scratch.read() as connection:
        assert (await connection.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
        assert (await connection.execute(text("PRAGMA foreign_keys"))).scalar() == 1
        assert (await connection.execute(text("PRAGMA busy_timeout"))).scalar() == 1234
    await scratch.ping()
