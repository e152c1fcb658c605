"""`BatchFeeder`: moves every active batch forward. Every gateway runs one; only the holder of
the `batch-feeder` lease acts, so each line is submitted by one process at a time.

One round, per batch: validate a new batch's input file and record its lines; read the answers of
lines whose jobs ended (from the job rows); top the batch up to `batches.in_flight` lines on the
queue, and to no more than its part of `batches.max_share` of the model's worker slots (see
`_room`); when the window has passed or the batch is cancelled, answer the lines not yet queued
and cancel those on the queue; when no line is left, write the output and error files and end the
batch (its outbox event in the same transaction). Rounds follow each other at once while they
make progress, else every `batches.every_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from gpucloud.background import Background
from gpucloud.batches.results import collect, file_lines
from gpucloud.batches.states import CANCELLED_CODE, EXPIRED_CODE, BatchStatus, LineState, final_status
from gpucloud.batches.store import BatchStore, Counts, LineResult
from gpucloud.batches.submit import Later, Queued, submit_line
from gpucloud.db import Database
from gpucloud.db.models import Batch, BatchLine, utcnow
from gpucloud.errors import GpucloudError
from gpucloud.files import FileService, NewFile
from gpucloud.gateway.inference import Inference
from gpucloud.jobs.kept import KeptResults
from gpucloud.keys import KeyService, Principal
from gpucloud.queue.protocol import JobQueue, Outcome, OutcomeStatus, QueueError, QueueUnavailable
from gpucloud.settings import BatchSettings, RequestLimits
from gpucloud.storage import StorageError
from gpucloud.storage.protocol import ObjectMissing

log = logging.getLogger(__name__)
_BUSY_PAUSE_S = 0.05


class BatchFeeder:
    def __init__(
        self,
        *,
        db: Database,
        store: BatchStore,
        files: FileService,
        inference: Inference,
        queue: JobQueue,
        keys: KeyService,
        limits: RequestLimits,
        settings: BatchSettings,
        holder: str,
        slots: Callable[[str], int],
        kept: KeptResults,
    ) -> None:
        self._db, self._store, self._files, self._kept = db, store, files, kept
        self._inference, self._queue, self._keys = inference, queue, keys
        self._limits, self._settings, self._holder = limits, settings, holder
        self._slots = slots  # a model's worker slots now (the registry's view)
        self._running = 1  # batches in progress in this round: they share the batch slots
        self._cancelled: set[str] = set()  # jobs this process already asked to stop
        self._loop = Background("batch-feeder", self._run)
        self.leading = False

    async def start(self) -> None:
        self._loop.start()

    async def close(self) -> None:
        await self._loop.close()

    async def _run(self) -> None:
        while True:
            busy = False
            try:
                busy = await self.step()
            except QueueError as exc:
                log.warning("batch feeder: queue unavailable: %s", exc)
                self.leading = False
            except (SQLAlchemyError, StorageError) as exc:
                log.warning("batch feeder: storage unavailable: %s", type(exc).__name__)
            except Exception:
                # A fault in one round must not stop every batch for good: logged, tried again.
                log.exception("batch feeder: round failed")
            await asyncio.sleep(_BUSY_PAUSE_S if busy else self._settings.every_s)

    async def step(self) -> bool:
        """One round over the active batches; whether it moved any of them."""
        ttl = max(self._settings.every_s * 3, 5.0)
        self.leading = await self._queue.lead("batch-feeder", self._holder, ttl)
        if not self.leading:
            return False
        busy = False
        active = await self._store.active()
        self._running = max(1, sum(b.status == BatchStatus.IN_PROGRESS.value for b in active))
        for batch in active:
            busy = await self.advance(batch) or busy
        return busy

    async def advance(self, batch: Batch) -> bool:
        status = BatchStatus(batch.status)
        if status is BatchStatus.VALIDATING:
            await self._validate(batch)
            return True
        ended = _ended(batch, status)
        answers = await collect(self._db, self._kept, batch.id, ended)
        await self._store.record(batch.id, [], answers)
        busy = bool(answers)
        if ended is not None:
            await self._store.end_pending(batch.id, ended)
            await self._cancel_in_flight(batch)
        elif status is BatchStatus.IN_PROGRESS:
            busy = await self._top_up(batch) or busy
        if not await self._store.unfinished(batch.id):
            await self._finish(batch, status, (await self._store.counts([batch.id]))[batch.id])
            busy = True
        return busy

    async def _validate(self, batch: Batch) -> None:
        try:
            row = await self._files.owned(batch.input_file_id, batch.key_id, "input_file_id")
            requests = await self._files.requests(row)
        except GpucloudError as exc:
            await self._fail(batch, exc.code or "invalid_file", exc.message, None)
            return
        except ObjectMissing:
            await self._fail(batch, "file_missing", "The input file's content is no longer stored.", None)
            return
        # A line may name another endpoint than the batch's (chat and embeddings in one batch):
        # each line runs at its own url, already checked to be one the Batch API serves.
        await self._store.start(batch, requests)

    async def _fail(self, batch: Batch, code: str, message: str, line: int | None) -> None:
        item = {"code": code, "message": message, "param": "input_file_id", "line": line}
        errors = {"object": "list", "data": [item]}
        await self._store.end(
            batch, BatchStatus.FAILED, {"errors": errors}, {"id": batch.id, "errors": errors}
        )

    async def _top_up(self, batch: Batch) -> bool:
        pending = await self._store.lines(batch.id, LineState.PENDING, self._settings.in_flight)
        if not pending:
            return False
        room = self._room(str(pending[0].request.get("model", ""))) - await self._store.in_flight(batch.id)
        pending = pending[: max(0, room)]
        if not pending:
            return False
        principal = await self._principal(batch.key_id)
        if principal is None:
            error = {"code": "invalid_api_key", "message": "The batch's API key was revoked or has expired."}
            await self._store.end_pending(batch.id, error)
            return True
        # Submitted together (each waits on the database and the queue, not on the CPU), recorded
        # together after; a crash before the record leaves the lines pending, and submitting them
        # again finds their jobs by idempotency key.
        outcomes = await asyncio.gather(*(self._submit(batch, line, principal) for line in pending))
        queued = [
            (line.line, o.job_id) for line, o in zip(pending, outcomes, strict=True) if isinstance(o, Queued)
        ]
        answers = [
            (line.line, o) for line, o in zip(pending, outcomes, strict=True) if isinstance(o, LineResult)
        ]
        await self._store.record(batch.id, queued, answers)
        return True

    async def _submit(
        self, batch: Batch, line: BatchLine, principal: Principal
    ) -> Queued | LineResult | None:
        """The line's job or answer; None when it must wait for another round (queue full, limits)."""
        try:
            return await submit_line(self._inference, self._limits, batch, line, principal)
        except Later as exc:
            log.debug("batch feeder: %s line %d waits: %s", batch.id, line.line, exc)
            return None

    def _room(self, model: str) -> int:
        """Lines one batch may have on the queue: `in_flight`, and no more than its part of
        `max_share` of the model's slots, so that interactive requests find a free slot instead
        of waiting behind a batch (at least one line each, so a batch always moves)."""
        share = int(self._settings.max_share * self._slots(model) / self._running)
        return max(1, min(self._settings.in_flight, share))

    async def _principal(self, key_id: str) -> Principal | None:
        # With its organisation's limits: a batch line counts against them like any request.
        return await self._keys.usable_principal(key_id)

    async def _cancel_in_flight(self, batch: Batch) -> None:
        """Stop the batch's jobs: a queued one ends now, a running one at its worker's next check."""
        for line in await self._store.lines(batch.id, LineState.SUBMITTED):
            if line.job_id is None or line.job_id in self._cancelled:
                continue
            with contextlib.suppress(QueueUnavailable):
                await self._queue.cancel(line.job_id)
                await self._queue.report(
                    Outcome(
                        job_id=line.job_id,
                        attempt=0,  # the fence accepts it only for a job no worker has started
                        status=OutcomeStatus.CANCELLED,
                        reply_to="",
                        model=str(line.request.get("model", "")),
                        error="the batch ended before the request ran",
                        error_code="cancelled",
                        at=time.time(),
                    )
                )
                self._cancelled.add(line.job_id)

    async def _finish(self, batch: Batch, status: BatchStatus, counts: Counts) -> None:
        """Write the output and error files, then end the batch (a crash in between: done again)."""
        if status is BatchStatus.IN_PROGRESS:
            await self._store.move(batch.id, [BatchStatus.IN_PROGRESS], BatchStatus.FINALIZING)
        stem = batch.id.removeprefix("batch_")
        changes: dict[str, Any] = {"output_file_id": None, "error_file_id": None}
        for succeeded, column, suffix in ((True, "output_file_id", "out"), (False, "error_file_id", "err")):
            if (counts.completed if succeeded else counts.total - counts.completed) == 0:
                continue
            new = NewFile(
                batch.key_id, "batch_output", f"{batch.id}_{suffix}.jsonl", id=f"file-{stem}-{suffix}"
            )
            written = await self._files.write(new, file_lines(self._db, batch.id, succeeded=succeeded))
            changes[column] = written.id
        target = final_status(status, counts.expired)
        data = {"id": batch.id, "request_counts": counts.view(), **changes}
        if await self._store.end(batch, target, changes, data):
            log.info("batch %s ended: %s", batch.id, target.value, extra={"batch_id": batch.id})
            # The files hold the answers now (a crash before this leaves them in the rows: harmless).
            await self._store.release_payloads(batch.id)
        self._cancelled.clear()


def _ended(batch: Batch, status: BatchStatus) -> dict[str, Any] | None:
    """The error that answers the batch's unfinished lines, once it is cancelled or expired."""
    if status is BatchStatus.CANCELLING:
        return {"code": CANCELLED_CODE, "message": "The batch was cancelled before this request ran."}
    if status is BatchStatus.IN_PROGRESS and batch.expires_at <= utcnow():
        return {"code": EXPIRED_CODE, "message": "The batch expired before this request ran."}
    return None
