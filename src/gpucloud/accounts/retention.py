"""`AuditRetention`: audit rows older than `audit_retention_days` are deleted, once a round.

This is the only path that deletes audit rows (no route does). One gateway does it at a time —
the holder of the `audit-retention` lease in the queue (docs/architecture.md §8) — though a
second doing it too would only delete nothing. `audit_retention_days = 0` keeps rows forever
and starts no task at all.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from gpucloud.accounts.audit import AuditLog
from gpucloud.db.models import utcnow
from gpucloud.periodic import periodic
from gpucloud.queue.protocol import Leadership

log = logging.getLogger(__name__)


class AuditRetention:
    def __init__(self, audit: AuditLog, queue: Leadership, holder: str, *, days: int, every_s: float) -> None:
        self._audit = audit
        self._queue = queue
        self._holder = holder
        self._days = days
        self._every_s = every_s
        self._loop = periodic("audit retention", self.step, every_s)

    def start(self) -> None:
        if self._days > 0:
            self._loop.start()

    async def close(self) -> None:
        await self._loop.close()

    async def step(self) -> int:
        """Delete what is past retention when this process leads; the number of rows deleted."""
        if self._days <= 0:
            return 0  # kept forever
        if not await self._queue.lead("audit-retention", self._holder, max(self._every_s * 3, 5.0)):
            return 0
        deleted = await self._audit.delete_before(utcnow() - timedelta(days=self._days))
        if deleted:
            log.info("audit retention: deleted %d rows older than %d days", deleted, self._days)
        return deleted
