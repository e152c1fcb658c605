"""Usage totals from the ledger on a real database: grouped by period, key, model and
organisation as asked, filtered by day bounds (inclusive), and spending per key or organisation."""

from __future__ import annotations

from datetime import date

from sqlalchemy import insert

from gpucloud.accounts.orgs import OrgService
from gpucloud.db import Database, UsageRecord
from gpucloud.db.models import utcnow
from gpucloud.keycache import LocalKeyChanges
from gpucloud.keys import KeyService, NewKey
from gpucloud.usage import UsageFilter, UsageService, UsageTotal


async def _ledger(db: Database) -> tuple[str, str, str]:
    org = await OrgService(db, LocalKeyChanges()).create("team")
    keys = KeyService(db)
    a = (await keys.create(NewKey(name="a", org_id=org.id)))[0].id
    b = (await keys.create(NewKey(name="b")))[0].id
    rows = [
        (a, "m1", "2030-01-01", "2030-01-01T10", 10, 5, 1_000),
        (a, "m1", "2030-01-01", "2030-01-01T11", 20, 5, 2_000),
        (a, "m2", "2030-01-02", "2030-01-02T00", 1, 1, 0),
        (b, "m1", "2030-01-02", "2030-01-02T00", 100, 50, 500_000),
    ]
    values = [
        {
            "job_id": f"job_{n}",
            "key_id": key,
            "model": model,
            "status": "completed",
            "prompt_tokens": p,
            "completion_tokens": c,
            "total_tokens": p + c,
            "cost_micros": micros,
            "latency_ms": 1.0,
            "created_at": utcnow(),
            "day": day,
            "hour": hour,
        }
        for n, (key, model, day, hour, p, c, micros) in enumerate(rows)
    ]
    async with db.transaction() as connection:
        await connection.execute(insert(UsageRecord), values)
    return a, b, org.id


async def test_totals_group_by_day_key_and_model(db: Database) -> None:
    a, b, _ = await _ledger(db)
    totals = await UsageService(db).totals(UsageFilter())
    assert [t.period for t in totals] == ["2030-01-01", "2030-01-02", "2030-01-02"]  # oldest first
    assert sorted(totals, key=lambda t: (t.period, t.total_tokens)) == [
        UsageTotal(a, "m1", "2030-01-01", 2, 30, 10, 40, 0.003),
        UsageTotal(a, "m2", "2030-01-02", 1, 1, 1, 2, 0.0),
        UsageTotal(b, "m1", "2030-01-02", 1, 100, 50, 150, 0.5),
    ]


async def test_totals_across_keys_by_hour_and_by_organisation(db: Database) -> None:
    _, _, org_id = await _ledger(db)
    usage = UsageService(db)
    hourly = await usage.totals(UsageFilter(granularity="hour", by_key=False, by_model=False))
    assert [(t.period, t.requests, t.total_tokens) for t in hourly] == [
        ("2030-01-01T10", 1, 15),
        ("2030-01-01T11", 1, 25),
        ("2030-01-02T00", 2, 152),
    ]
    by_org = await usage.totals(UsageFilter(by_key=False, by_model=False, by_org=True, org_id=org_id))
    assert [(t.period, t.org_id, t.total_tokens, t.key_id, t.model) for t in by_org] == [
        ("2030-01-01", org_id, 40, None, None),
        ("2030-01-02", org_id, 2, None, None),
    ]


async def test_filters_and_inclusive_day_bounds(db: Database) -> None:
    _, b, _ = await _ledger(db)
    usage = UsageService(db)
    assert [t.key_id for t in await usage.totals(UsageFilter(key_id=b))] == [b]
    assert [t.model for t in await usage.totals(UsageFilter(model="m2"))] == ["m2"]
    second_day = await usage.totals(UsageFilter(start=date(2030, 1, 2), end=date(2030, 1, 2)))
    assert {t.period for t in second_day} == {"2030-01-02"}
    assert await usage.totals(UsageFilter(end=date(2029, 12, 31))) == []


async def test_spending_per_key_and_per_organisation(db: Database) -> None:
    a, b, org_id = await _ledger(db)
    usage = UsageService(db)
    assert await usage.spent(a, None) == (42, 3_000)
    assert await usage.spent(a, date(2030, 1, 2)) == (2, 0)
    assert await usage.spent(f"org:{org_id}", None) == (42, 3_000)
    assert await usage.spent(b, None) == (150, 500_000)
    assert await usage.spent("key_none", None) == (0, 0)
