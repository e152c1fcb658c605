"""The group-commit writer on a real SQLite and a real PostgreSQL database: a lone write commits
at once, writes that arrive during a commit share the next transaction, and a failing write fails
alone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from gpucloud.db import Database
from tests.support import create_pg_database_async, drop_pg_database_async


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    url = f"sqlite+aiosqlite:///{tmp_path}/w.db" if request.param == "sqlite" else None
    url = url or await create_pg_database_async()
    database = Database(url)
    await database.writer.write(
        lambda c: c.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)"))
    )
    yield database
    await database.close()
    if request.param == "postgres":
        await drop_pg_database_async(url)


def _insert(row_id: int, value: str | None = "x") -> Callable[[Connection], int]:
    def write(connection: Connection) -> int:
        connection.execute(text("INSERT INTO t (id, v) VALUES (:id, :v)"), {"id": row_id, "v": value})
        return row_id

    return write


async def _rows(db: Database) -> list[int]:
    async with db.read() as connection:
        return [r[0] for r in await connection.execute(text("SELECT id FROM t ORDER BY id"))]


async def test_a_lone_write_commits_in_its_own_transaction(db: Database) -> None:
    sizes: list[int] = []
    db.writer.observe = sizes.append
    assert await db.writer.write(_insert(1)) == 1
    assert await _rows(db) == [1]
    assert sizes == [1]


async def test_writes_arriving_together_share_transactions(db: Database) -> None:
    sizes: list[int] = []
    db.writer.observe = sizes.append
    results = await asyncio.gather(*(db.writer.write(_insert(i)) for i in range(100)))
    assert results == list(range(100))
    assert await _rows(db) == list(range(100))
    assert sum(sizes) == 100
    assert len(sizes) < 100  # the first commits alone; the rest waited for it and went together


async def test_a_failing_write_fails_alone_and_the_others_commit(db: Database) -> None:
    await db.writer.write(_insert(7))
    writes = [db.writer.write(_insert(i)) for i in (1, 2)]
    writes.append(db.writer.write(_insert(7)))  # a duplicate key
    writes.append(db.writer.write(_insert(3, None)))  # NOT NULL violated
    writes += [db.writer.write(_insert(i)) for i in (4, 5)]
    results = await asyncio.gather(*writes, return_exceptions=True)
    assert results[:2] == [1, 2]
    assert isinstance(results[2], IntegrityError)
    assert isinstance(results[3], IntegrityError)
    assert results[4:] == [4, 5]
    assert await _rows(db) == [1, 2, 4, 5, 7]  # each committed once, nothing of the failed ones
