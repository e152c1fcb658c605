"""Usage totals read from the ledger (`usage_records`), grouped by key, model and UTC day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select

from gpucloud.db import Database, UsageRecord


@dataclass(frozen=True, slots=True)
class UsageFilter:
    key_id: str | None = None
    model: str | None = None
    start: date | None = None  # inclusive, UTC day
    end: date | None = None  # inclusive, UTC day


@dataclass(frozen=True, slots=True)
class UsageTotal:
    key_id: str
    model: str
    day: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_usd: float


class UsageService:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def spent(self, key_id: str, since: date | None) -> tuple[int, int]:
        """Tokens and micro-dollars the key spent from UTC day `since` on (None: ever)."""
        u = UsageRecord
        query = select(
            func.coalesce(func.sum(u.total_tokens), 0), func.coalesce(func.sum(u.cost_micros), 0)
        ).where(u.key_id == key_id)
        if since is not None:
            query = query.where(u.day >= since.isoformat())
        async with self._db.session() as session:
            tokens, micros = (await session.execute(query)).one()
        return int(tokens), int(micros)

    async def totals(self, where: UsageFilter) -> list[UsageTotal]:
        u = UsageRecord
        query = select(
            u.key_id,
            u.model,
            u.day,
            func.count(u.id),
            func.coalesce(func.sum(u.prompt_tokens), 0),
            func.coalesce(func.sum(u.completion_tokens), 0),
            func.coalesce(func.sum(u.total_tokens), 0),
            func.coalesce(func.sum(u.cost_micros), 0),
        ).group_by(u.key_id, u.model, u.day)
        if where.key_id is not None:
            query = query.where(u.key_id == where.key_id)
        if where.model is not None:
            query = query.where(u.model == where.model)
        if where.start is not None:
            query = query.where(u.day >= where.start.isoformat())
        if where.end is not None:
            query = query.where(u.day <= where.end.isoformat())
        query = query.order_by(u.day, u.key_id, u.model)
        async with self._db.session() as session:
            rows = (await session.execute(query)).all()
        return [
            UsageTotal(
                key_id=r[0],
                model=r[1],
                day=r[2],
                requests=int(r[3]),
                prompt_tokens=int(r[4]),
                completion_tokens=int(r[5]),
                total_tokens=int(r[6]),
                cost_usd=int(r[7]) / 1_000_000,
            )
            for r in rows
        ]
