"""`BatchStore`: batches and their lines in the database. Every step of a batch's progress is a
row change here, so a gateway that dies mid-batch loses nothing: whichever gateway leads next
reads where it stood. Status changes are guarded by the status they leave (`WHERE status IN …`),
so a step repeated after a crash, or racing a cancel, changes nothing twice; the end of a batch
writes its outbox event in the same transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, bindparam, case, exists, func, insert, null, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gpucloud import outbox
from gpucloud.batches.states import ACTIVE, CANCELLABLE, EVENTS, EXPIRED_CODE, STAMPS, BatchStatus, LineState
from gpucloud.db import Database
from gpucloud.db.models import Batch, BatchLine, utcnow
from gpucloud.errors import Conflict, NotFound
from gpucloud.files import BatchRequestLine
from gpucloud.keys import Principal

_INSERT_CHUNK = 1000


def new_batch_id() -> str:
    return f"batch_{uuid.uuid4().hex[:24]}"


@dataclass(frozen=True, slots=True)
class NewBatch:
    key_id: str
    endpoint: str
    input_file_id: str
    completion_window: str
    window_s: float
    metadata: dict[str, Any] | None


@dataclass(slots=True)
class Counts:
    total: int = 0
    completed: int = 0
    failed: int = 0
    unfinished: int = 0
    expired: int = 0

    def view(self) -> dict[str, int]:
        return {"total": self.total, "completed": self.completed, "failed": self.failed}


@dataclass(frozen=True, slots=True)
class LineResult:
    """A line's answer: its HTTP status and body (the OpenAI response) or an error object."""

    status_code: int | None
    body: dict[str, Any] | None = None
    error: dict[str, Any] | None = field(default=None)


class BatchStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, new: NewBatch) -> Batch:
        now = utcnow()
        row = Batch(
            id=new_batch_id(),
            key_id=new.key_id,
            endpoint=new.endpoint,
            input_file_id=new.input_file_id,
            completion_window=new.completion_window,
            status=BatchStatus.VALIDATING.value,
            meta=new.metadata,
            created_at=now,
            expires_at=now + timedelta(seconds=new.window_s),
        )
        values = {c.name: getattr(row, attr) for attr, c in Batch.__mapper__.columns.items()}
        async with self._db.transaction() as connection:
            await connection.execute(insert(Batch), values)
        return row

    async def load(self, batch_id: str) -> Batch | None:
        async with self._db.session() as session:
            return await session.get(Batch, batch_id)

    async def get(self, batch_id: str, principal: Principal) -> Batch:
        row = await self.load(batch_id)
        if row is None or (not principal.is_admin and row.key_id != principal.key_id):
            raise NotFound(f"No batch with id {batch_id!r}.", param="batch_id")
        return row

    async def page(self, principal: Principal, *, limit: int, after: str | None) -> list[Batch]:
        query = select(Batch).where(Batch.key_id == principal.key_id)
        if after is not None:
            cursor = await self.get(after, principal)
            query = query.where(
                (Batch.created_at < cursor.created_at)
                | ((Batch.created_at == cursor.created_at) & (Batch.id < cursor.id))
            )
        query = query.order_by(Batch.created_at.desc(), Batch.id.desc()).limit(limit)
        async with self._db.session() as session:
            return list((await session.execute(query)).scalars())

    async def active(self) -> list[Batch]:
        query = select(Batch).where(Batch.status.in_([s.value for s in ACTIVE])).order_by(Batch.created_at)
        async with self._db.session() as session:
            return list((await session.execute(query)).scalars())

    async def counts(self, batch_ids: Sequence[str]) -> dict[str, Counts]:
        """Request counts per batch, derived from the lines."""
        t = BatchLine.__table__.c
        done = t.state == LineState.DONE.value
        query = (
            select(
                t.batch_id,
                func.count(),
                func.sum(case((done & (t.status_code == 200), 1), else_=0)),
                func.sum(case((done, 1), else_=0)),
                func.sum(
                    case(
                        (done & (t.status_code.is_(None)) & (t.error["code"].as_string() == EXPIRED_CODE), 1),
                        else_=0,
                    )
                ),
            )
            .where(t.batch_id.in_(list(batch_ids)))
            .group_by(t.batch_id)
        )
        found = {batch_id: Counts() for batch_id in batch_ids}
        async with self._db.read() as connection:
            for batch_id, total, ok, finished, expired in await connection.execute(query):
                ok, finished = int(ok or 0), int(finished or 0)
                found[batch_id] = Counts(total, ok, finished - ok, total - finished, int(expired or 0))
        return found

    async def request_cancel(self, batch: Batch) -> Batch:
        moved = await self.move(batch.id, CANCELLABLE, BatchStatus.CANCELLING)
        if not moved and batch.status != BatchStatus.CANCELLING.value:
            raise Conflict(f"The batch has already ended ({batch.status}).", code="batch_ended")
        return await self.load(batch.id) or batch

    async def move(
        self,
        batch_id: str,
        sources: Sequence[BatchStatus],
        target: BatchStatus,
        changes: dict[str, Any] | None = None,
        connection: AsyncConnection | None = None,
    ) -> bool:
        """Move the batch to `target` if it is in one of `sources`; whether it moved."""
        values = {"status": target.value, STAMPS[target]: utcnow(), **(changes or {})}
        statement = (
            update(Batch)
            .where(Batch.id == batch_id, Batch.status.in_([s.value for s in sources]))
            .values(**values)
        )
        if connection is not None:
            return bool((await connection.execute(statement)).rowcount)
        async with self._db.transaction() as own:
            return bool((await own.execute(statement)).rowcount)

    async def end(
        self, batch: Batch, target: BatchStatus, changes: dict[str, Any], data: dict[str, Any]
    ) -> bool:
        """End the batch and write its event in one transaction (the event exists iff it ended)."""
        async with self._db.transaction() as connection:
            sources = [s for s in ACTIVE if s is not target]
            if not await self.move(batch.id, sources, target, changes, connection):
                return False
            await outbox.record(connection, batch.key_id, EVENTS[target], {**data, "status": target.value})
        return True

    async def start(self, batch: Batch, lines: Sequence[BatchRequestLine]) -> None:
        """Record the lines (all pending) and move the batch to in_progress, in one transaction."""
        async with self._db.transaction() as connection:
            count = await connection.execute(select(func.count()).where(BatchLine.batch_id == batch.id))
            if count.scalar_one() == 0:  # a repeat after a crash finds them written already
                rows = [
                    {
                        "batch_id": batch.id,
                        "line": number,
                        "custom_id": line.custom_id,
                        "url": line.url,
                        "request": line.body,
                        "state": LineState.PENDING.value,
                    }
                    for number, line in enumerate(lines, start=1)
                ]
                for start in range(0, len(rows), _INSERT_CHUNK):
                    await connection.execute(insert(BatchLine), rows[start : start + _INSERT_CHUNK])
            await self.move(batch.id, [BatchStatus.VALIDATING], BatchStatus.IN_PROGRESS, None, connection)

    async def lines(self, batch_id: str, state: LineState, limit: int | None = None) -> list[BatchLine]:
        query = (
            select(BatchLine)
            .where(BatchLine.batch_id == batch_id, BatchLine.state == state.value)
            .order_by(BatchLine.line)
        )
        if limit is not None:
            query = query.limit(limit)
        async with self._db.session() as session:
            return list((await session.execute(query)).scalars())

    async def in_flight(self, batch_id: str) -> int:
        query = select(func.count()).where(
            BatchLine.batch_id == batch_id, BatchLine.state == LineState.SUBMITTED.value
        )
        async with self._db.read() as connection:
            return int((await connection.execute(query)).scalar_one())

    async def unfinished(self, batch_id: str) -> bool:
        """Whether any line is still pending or on the queue (an indexed EXISTS, cheap per round)."""
        query = select(
            exists().where(BatchLine.batch_id == batch_id, BatchLine.state != LineState.DONE.value)
        )
        async with self._db.read() as connection:
            return bool((await connection.execute(query)).scalar())

    async def record(
        self, batch_id: str, queued: Sequence[tuple[int, str]], answers: Sequence[tuple[int, LineResult]]
    ) -> None:
        """In one transaction: lines now on the queue (line, job id), and lines answered (each
        answered once: a line already done keeps its first answer)."""
        if not queued and not answers:
            return
        t = BatchLine.__table__.c
        where = (t.batch_id == bindparam("b_batch"), t.line == bindparam("b_line"))
        async with self._db.transaction() as connection:
            if queued:
                await connection.execute(
                    update(BatchLine)
                    .where(*where, t.state == LineState.PENDING.value)
                    .values(state=LineState.SUBMITTED.value, job_id=bindparam("b_job")),
                    [{"b_batch": batch_id, "b_line": line, "b_job": job} for line, job in queued],
                )
            if answers:
                await connection.execute(
                    update(BatchLine)
                    .where(*where, t.state != LineState.DONE.value)
                    .values(
                        state=LineState.DONE.value,
                        status_code=bindparam("b_status"),
                        body=bindparam("b_body", type_=JSON()),
                        error=bindparam("b_error", type_=JSON()),
                    ),
                    [
                        {
                            "b_batch": batch_id,
                            "b_line": line,
                            "b_status": r.status_code,
                            "b_body": r.body,
                            "b_error": r.error,
                        }
                        for line, r in answers
                    ],
                )

    async def end_pending(self, batch_id: str, error: dict[str, Any]) -> None:
        """Answer every line not yet queued with `error` (the batch expired or was cancelled)."""
        async with self._db.transaction() as connection:
            await connection.execute(
                update(BatchLine)
                .where(BatchLine.batch_id == batch_id, BatchLine.state == LineState.PENDING.value)
                .values(state=LineState.DONE.value, error=error)
            )

    async def release_payloads(self, batch_id: str) -> None:
        """Drop what an ended batch's lines carried, requests and answers: its input, output and
        error files hold them, and keeping them here would store every batch twice (a batch of
        embeddings many times over). What the counts need (state, status code, error) stays."""
        async with self._db.transaction() as connection:
            await connection.execute(
                update(BatchLine).where(BatchLine.batch_id == batch_id).values(request={}, body=null())
            )


def unix(value: datetime | None) -> int | None:
    return int(value.timestamp()) if value is not None else None
