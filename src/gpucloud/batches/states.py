"""A batch's statuses (OpenAI's) and its lines' states, and the rule that ends a batch.

validating → in_progress → finalizing → completed; validating → failed (the input is unusable);
in_progress → expired (the window ended with lines unanswered; they end as `batch_expired`);
validating/in_progress → cancelling → cancelled. A batch's counts are derived from its lines.
"""

from __future__ import annotations

import enum


class BatchStatus(enum.StrEnum):
    VALIDATING = "validating"
    FAILED = "failed"
    IN_PROGRESS = "in_progress"
    FINALIZING = "finalizing"
    COMPLETED = "completed"
    EXPIRED = "expired"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"

    @property
    def active(self) -> bool:
        """The feeder still has work on it."""
        return self in ACTIVE


ACTIVE = (BatchStatus.VALIDATING, BatchStatus.IN_PROGRESS, BatchStatus.FINALIZING, BatchStatus.CANCELLING)
CANCELLABLE = (BatchStatus.VALIDATING, BatchStatus.IN_PROGRESS)
# The column that records when a batch reached each status.
STAMPS = {
    BatchStatus.IN_PROGRESS: "in_progress_at",
    BatchStatus.FINALIZING: "finalizing_at",
    BatchStatus.COMPLETED: "completed_at",
    BatchStatus.FAILED: "failed_at",
    BatchStatus.EXPIRED: "expired_at",
    BatchStatus.CANCELLING: "cancelling_at",
    BatchStatus.CANCELLED: "cancelled_at",
}
# The webhook event a batch's end announces.
EVENTS = {
    BatchStatus.COMPLETED: "batch.completed",
    BatchStatus.FAILED: "batch.failed",
    BatchStatus.EXPIRED: "batch.expired",
    BatchStatus.CANCELLED: "batch.cancelled",
}


class LineState(enum.StrEnum):
    PENDING = "pending"  # not yet on the queue
    SUBMITTED = "submitted"  # a job runs it (`job_id`)
    DONE = "done"  # answered: its output or error line is fixed


EXPIRED_CODE = "batch_expired"
CANCELLED_CODE = "batch_cancelled"
WINDOWS = ("24h",)


def final_status(current: BatchStatus, expired_lines: int) -> BatchStatus:
    """How a batch whose lines are all done ends."""
    if current is BatchStatus.CANCELLING:
        return BatchStatus.CANCELLED
    return BatchStatus.EXPIRED if expired_lines else BatchStatus.COMPLETED
