"""`AuditLog`: the append-only record of state-changing management calls.

Rows are written by the gateway's audit middleware (`gateway.audit`), one per call, and read by
`GET /api/audit` newest first with a cursor (the last row id seen). Nothing updates a row; the
only deletion is `delete_before`, which the retention task (`accounts.retention`) runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select

from gpucloud.db import AuditEntry, Database
from gpucloud.db.models import utcnow


@dataclass(frozen=True, slots=True)
class AuditRecord:
    actor: str
    action: str
    target: str | None
    org_id: str | None
    status: int
    client_ip: str | None
    request_id: str


@dataclass(frozen=True, slots=True)
class AuditQuery:
    actor: str | None = None
    action: str | None = None
    target: str | None = None
    org_id: str | None = None
    result: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    before_id: int | None = None  # the cursor: rows older than this one
    limit: int = 100


class AuditLog:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(self, entry: AuditRecord) -> None:
        row = {
            "at": utcnow(),
            "actor": entry.actor[:64],
            "action": entry.action[:120],
            "target": entry.target[:320] if entry.target else None,
            "org_id": entry.org_id,
            "result": "success" if entry.status < 400 else "failure",
            "status": entry.status,
            "client_ip": entry.client_ip,
            "request_id": entry.request_id[:128],
        }
        async with self._db.transaction() as connection:
            await connection.execute(insert(AuditEntry).values(row))

    async def page(self, where: AuditQuery) -> list[AuditEntry]:
        """Up to `limit` rows matching `where`, newest first."""
        a = AuditEntry
        query = select(a).order_by(a.id.desc()).limit(where.limit)
        for column, value in (
            (a.actor, where.actor),
            (a.action, where.action),
            (a.target, where.target),
            (a.org_id, where.org_id),
            (a.result, where.result),
        ):
            if value is not None:
                query = query.where(column == value)
        if where.since is not None:
            query = query.where(a.at >= where.since)
        if where.until is not None:
            query = query.where(a.at < where.until)
        if where.before_id is not None:
            query = query.where(a.id < where.before_id)
        async with self._db.session() as session:
            return list((await session.execute(query)).scalars())

    async def delete_before(self, cutoff: datetime) -> int:
        """Delete rows written before `cutoff` (retention); the number deleted."""
        async with self._db.transaction() as connection:
            result = await connection.execute(delete(AuditEntry).where(AuditEntry.at < cutoff))
        return int(result.rowcount or 0)
