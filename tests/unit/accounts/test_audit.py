"""`AuditLog` on a real database: a record keeps its fields (bounded, result from status) and
pages come newest first, filtered, with a cursor."""

from __future__ import annotations

from datetime import timedelta

from gpucloud.accounts.audit import AuditLog, AuditQuery, AuditRecord
from gpucloud.db import Database
from gpucloud.db.models import utcnow


def _record(action: str, status: int = 200, actor: str = "key_a", org: str | None = None) -> AuditRecord:
    return AuditRecord(
        actor=actor,
        action=action,
        target="key_x",
        org_id=org,
        status=status,
        client_ip="127.0.0.1",
        request_id="r",
    )


async def test_records_page_newest_first_with_a_cursor(db: Database) -> None:
    log = AuditLog(db)
    for n in range(5):
        await log.record(_record(f"POST /api/keys #{n}"))
    first = await log.page(AuditQuery(limit=2))
    assert [r.action for r in first] == ["POST /api/keys #4", "POST /api/keys #3"]
    rest = await log.page(AuditQuery(limit=10, before_id=first[-1].id))
    assert [r.action for r in rest] == [f"POST /api/keys #{n}" for n in (2, 1, 0)]
    assert await log.page(AuditQuery(before_id=rest[-1].id)) == []


async def test_the_result_follows_the_status_and_filters_combine(db: Database) -> None:
    log = AuditLog(db)
    await log.record(_record("a", 201, actor="usr_1", org="org_default"))
    await log.record(_record("a", 403, actor="usr_1"))
    await log.record(_record("b", 404, actor="usr_2"))
    failures = await log.page(AuditQuery(result="failure"))
    assert sorted((r.action, r.status) for r in failures) == [("a", 403), ("b", 404)]
    assert [r.status for r in await log.page(AuditQuery(actor="usr_1", result="failure"))] == [403]
    assert [r.result for r in await log.page(AuditQuery(org_id="org_default"))] == ["success"]
    assert await log.page(AuditQuery(action="c")) == []


async def test_time_bounds_take_since_inclusive_and_until_exclusive(db: Database) -> None:
    log = AuditLog(db)
    await log.record(_record("a"))
    (row,) = await log.page(AuditQuery())
    assert (
        await log.page(AuditQuery(since=row.at)) == [row]
        or len(await log.page(AuditQuery(since=row.at))) == 1
    )
    assert await log.page(AuditQuery(until=row.at)) == []
    assert len(await log.page(AuditQuery(until=row.at + timedelta(seconds=1)))) == 1
    assert await log.page(AuditQuery(since=utcnow() + timedelta(seconds=5))) == []


async def test_long_fields_are_cut_to_their_columns(db: Database) -> None:
    log = AuditLog(db)
    await log.record(AuditRecord("a" * 100, "b" * 200, "c" * 400, None, 500, None, "d" * 200))
    (row,) = await log.page(AuditQuery())
    assert (len(row.actor), len(row.action), len(row.target or ""), len(row.request_id)) == (
        64,
        120,
        320,
        128,
    )
    assert row.result == "failure"
    assert row.client_ip is None
