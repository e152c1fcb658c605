"""The Batch API's machinery: batches and their lines in the database (`BatchStore`), each line an
asynchronous job at the lowest priority (`submit`), fed a bounded number at a time by one leader
(`BatchFeeder`), answers read back from the job rows (`results`)."""

from gpucloud.batches.feeder import BatchFeeder
from gpucloud.batches.states import BatchStatus, LineState
from gpucloud.batches.store import BatchStore, Counts, NewBatch
from gpucloud.batches.submit import BATCH_KEY_PREFIX, batch_idempotency_key

__all__ = [
    "BATCH_KEY_PREFIX",
    "BatchFeeder",
    "BatchStatus",
    "BatchStore",
    "Counts",
    "LineState",
    "NewBatch",
    "batch_idempotency_key",
]
