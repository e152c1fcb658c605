"""Results too large for a job's row, kept in object storage instead.

An embeddings result can run to many mebibytes of vectors; the job row (what `GET /v1/jobs/{id}`,
an idempotent repeat and a batch's output file read) keeps at most about a mebibyte of them. A larger
one is written to the object store (`results/<job>/<attempt>`) by the finalizer *before* it commits
the ending, and the row names the object (`kept_at`) in place of the vectors. Readers load it back
with `KeptResults.load`; pruning old results deletes the objects with them.

Writing first means a crash between the write and the commit leaves, at worst, an object no row
names (the outcome is applied again and writes the same key); never a row naming nothing. If the
store cannot be reached the row keeps the usage only (`EMBEDDINGS_OMITTED`): the client waiting on
the job still gets its vectors from the job's FINAL event, which never depends on the store.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import msgspec
import orjson

from gpucloud.errors import Unavailable
from gpucloud.queue.messages import Outcome, OutcomeStatus
from gpucloud.storage.protocol import ObjectMissing, ObjectStore, StorageError, chunks_of, read_all

log = logging.getLogger(__name__)

# A stored result keeps embedding vectors (base64 float32) in the row only up to this many
# characters, about 750 KiB of floats.
MAX_ROW_CHARS = 1 << 20
KEPT_AT = "kept_at"  # the stored result's key naming the object that holds its choices
EMBEDDINGS_OMITTED = "embeddings_omitted"  # the stored result's flag for vectors not kept at all


def result_chars(outcome: Outcome) -> int:
    return sum(len(c.embedding_base64 or "") for c in outcome.choices)


def too_large(outcome: Outcome) -> bool:
    return outcome.status is OutcomeStatus.COMPLETED and result_chars(outcome) > MAX_ROW_CHARS


def object_key(job_id: str, attempt: int) -> str:
    return f"results/{job_id}/{attempt}"


class KeptResults:
    """The object store seen as the home of results too large for their rows."""

    def __init__(self, store: ObjectStore) -> None:
        self._store = store

    async def keep(self, outcomes: Sequence[Outcome]) -> None:
        """Write each too-large completed result to the store and mark its outcome (`kept_at`),
        so that the fence stores the object's key in the row instead of the vectors."""
        for outcome in outcomes:
            if outcome.kept_at or not too_large(outcome):
                continue
            key = object_key(outcome.job_id, outcome.attempt)
            try:
                await self._store.put(key, chunks_of(msgspec.json.encode(outcome.choices)))
            except StorageError as exc:
                log.warning(
                    "finalizer: object storage refused a large result; its row keeps usage only: %s",
                    type(exc).__name__,
                    extra={"job_id": outcome.job_id},
                )
                continue
            outcome.kept_at = key

    async def load(self, result: dict[str, Any]) -> dict[str, Any]:
        """The stored result with its choices back in place when they were kept in the store."""
        key = result.get(KEPT_AT)
        if not isinstance(key, str):
            return result
        try:
            choices = orjson.loads(await read_all(self._store, key))
        except ObjectMissing:  # pruned meanwhile, or its write was lost: as if never kept
            return {**result, EMBEDDINGS_OMITTED: True}
        except StorageError:
            raise Unavailable(
                "The result is in object storage, which cannot be reached now; retry later.",
                retry_after_s=5,
                code="storage_unavailable",
            ) from None
        return {k: v for k, v in result.items() if k != KEPT_AT} | {"choices": choices}

    async def forget(self, keys: Sequence[str]) -> None:
        """Delete the objects (a StorageError leaves the rest, and their rows, for a later pass)."""
        for key in keys:
            await self._store.delete(key)
