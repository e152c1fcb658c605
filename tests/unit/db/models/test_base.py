"""`UTCDateTime`: every time goes in and comes out aware UTC; a naive time is refused; and
`column_values` leaves unset columns to the database's defaults."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.exc import StatementError
from sqlalchemy.sql import Executable

from gpucloud.db import ApiKey, Database
from gpucloud.db.models import DEFAULT_ORG_ID, utcnow
from gpucloud.keys.secrets import digest


def _key(key_id: str, **fields: object) -> ApiKey:
    values: dict[str, object] = {
        "id": key_id,
        "name": "k",
        "prefix": "gc_x",
        "digest": digest(key_id),
        "role": "user",
        "default_priority": "normal",
        "max_priority": "normal",
        "created_at": utcnow(),
        "org_id": DEFAULT_ORG_ID,
    }
    return ApiKey(**(values | fields))


async def _execute(db: Database, statement: Executable) -> None:
    async with db.transaction() as connection:
        await connection.execute(statement)


def test_utcnow_is_aware_utc() -> None:
    assert utcnow().tzinfo is UTC


async def test_an_offset_time_is_stored_as_the_same_instant_in_utc(db: Database) -> None:
    plus_five = timezone(timedelta(hours=5))
    expires = datetime(2030, 1, 1, 12, 0, tzinfo=plus_five)
    async with db.transaction() as connection:
        await connection.execute(insert(ApiKey).values(_key("key_a", expires_at=expires).column_values()))
    async with db.read() as connection:
        query = select(ApiKey.expires_at).where(ApiKey.id == "key_a")
        stored = (await connection.execute(query)).scalar_one()
    assert stored == expires
    assert stored.tzinfo == UTC
    assert stored.hour == 7


async def test_a_naive_time_is_refused(db: Database) -> None:
    naive = _key("key_b", created_at=datetime(2030, 1, 1))
    with pytest.raises(StatementError, match="naive datetime"):
        await _execute(db, insert(ApiKey).values(naive.column_values()))
    with pytest.raises(StatementError):
        await _execute(db, update(ApiKey).values(expires_at=datetime(2030, 1, 1)))


def test_column_values_leaves_out_unset_columns() -> None:
    values = _key("key_c").column_values()
    assert values["id"] == "key_c"
    assert "expires_at" not in values
    assert "revoked_at" not in values
