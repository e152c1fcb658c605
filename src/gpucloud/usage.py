"""Usage totals read from the ledger (`usage_records`), grouped by key, model, organisation (the
key's owner, joined from `api_keys`) and UTC day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import func, select

from gpucloud.db import ApiKey, Database, UsageRecord


@dataclass(frozen=True, slots=True)
class UsageFilter:
    key_id: str | None = None
    model: str | None = None
    start: date | None = None  # inclusive, UTC day
    end: date | None = None  # inclusive, UTC day
    granularity: str = "day"  # "day" or "hour"
    by_key: bool = True  # False: totals across keys (per model and period)
    by_model: bool = True
    org_id: str | None = None  # only keys of this organisation
    by_org: bool = False
    owner_user_id: str | None = None  # only keys this member made for themselves


@dataclass(frozen=True, slots=True)
class UsageTotal:
    key_id: str | None
    model: str | None
    period: str  # "YYYY-MM-DD" or "YYYY-MM-DDTHH", UTC
    requests: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_usd: float
    org_id: str | None = None


class UsageService:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def spent(self, key_id: str, since: date | None) -> tuple[int, int]:
        """Tokens and micro-dollars the key (or, for `org:<id>`, all the organisation's keys) spent
        from UTC day `since` on (None: ever)."""
        u = UsageRecord
        query = select(func.coalesce(func.sum(u.total_tokens), 0), func.coalesce(func.sum(u.cost_micros), 0))
        if key_id.startswith("org:"):
            query = query.join(ApiKey, ApiKey.id == u.key_id).where(ApiKey.org_id == key_id[4:])
        else:
            query = query.where(u.key_id == key_id)
        if since is not None:
            query = query.where(u.day >= since.isoformat())
        async with self._db.session() as session:
            tokens, micros = (await session.execute(query)).one()
        return int(tokens), int(micros)

    async def totals(self, where: UsageFilter) -> list[UsageTotal]:
        """Ledger totals grouped by period (and key and model unless told not to), oldest first."""
        u = UsageRecord
        period = u.hour if where.granularity == "hour" else u.day
        groups = [
            period,
            *([u.key_id] if where.by_key else []),
            *([u.model] if where.by_model else []),
            *([ApiKey.org_id] if where.by_org else []),
        ]
        query = select(
            *groups,
            func.count(u.id),
            func.coalesce(func.sum(u.prompt_tokens), 0),
            func.coalesce(func.sum(u.completion_tokens), 0),
            func.coalesce(func.sum(u.total_tokens), 0),
            func.coalesce(func.sum(u.cost_micros), 0),
        ).group_by(*groups)
        if where.by_org or where.org_id is not None or where.owner_user_id is not None:
            query = query.join(ApiKey, ApiKey.id == u.key_id)
        if where.owner_user_id is not None:
            query = query.where(ApiKey.owner_user_id == where.owner_user_id)
        if where.org_id is not None:
            query = query.where(ApiKey.org_id == where.org_id)
        if where.key_id is not None:
            query = query.where(u.key_id == where.key_id)
        if where.model is not None:
            query = query.where(u.model == where.model)
        if where.start is not None:
            query = query.where(u.day >= where.start.isoformat())
        if where.end is not None:
            query = query.where(u.day <= where.end.isoformat())
        async with self._db.session() as session:
            rows = (await session.execute(query.order_by(*groups))).all()
        return [self._total(where, tuple(r)) for r in rows]

    @staticmethod
    def _total(where: UsageFilter, row: tuple[object, ...]) -> UsageTotal:
        values = list(row)
        period = str(values.pop(0))
        key_id = str(values.pop(0)) if where.by_key else None
        model = str(values.pop(0)) if where.by_model else None
        org_id = str(values.pop(0)) if where.by_org else None
        # Decimal: PostgreSQL sums BIGINTs as NUMERIC, which may print as "1.0E+5".
        requests, prompt, completion, total, micros = (int(Decimal(str(v))) for v in values)
        return UsageTotal(
            key_id=key_id,
            model=model,
            period=period,
            requests=requests,
            prompt_tokens=prompt,
            completion_tokens=completion,
            total_tokens=total,
            cost_usd=micros / 1_000_000,
            org_id=org_id,
        )
