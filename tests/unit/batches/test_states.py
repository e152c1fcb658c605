"""Batch statuses: which are active or cancellable, the column and event of each, and how a
batch whose lines are all done ends."""

from __future__ import annotations

from gpucloud.batches.states import CANCELLABLE, EVENTS, STAMPS, BatchStatus, final_status
from gpucloud.db.models.offline import Batch


def test_active_statuses_are_the_ones_before_an_end() -> None:
    ends = {BatchStatus.COMPLETED, BatchStatus.FAILED, BatchStatus.EXPIRED, BatchStatus.CANCELLED}
    for status in BatchStatus:
        assert status.active is (status not in ends)
    assert set(EVENTS) == ends  # every end, and only an end, is announced
    assert all(status.active for status in CANCELLABLE)


def test_every_stamp_is_a_column_of_the_batch_table() -> None:
    columns = set(Batch.__table__.columns.keys())
    assert set(STAMPS.values()) <= columns
    assert BatchStatus.VALIDATING not in STAMPS  # created_at records it


def test_a_cancelling_batch_ends_cancelled_whatever_expired() -> None:
    assert final_status(BatchStatus.CANCELLING, 0) is BatchStatus.CANCELLED
    assert final_status(BatchStatus.CANCELLING, 3) is BatchStatus.CANCELLED


def test_a_batch_with_expired_lines_ends_expired_otherwise_completed() -> None:
    assert final_status(BatchStatus.IN_PROGRESS, 0) is BatchStatus.COMPLETED
    assert final_status(BatchStatus.FINALIZING, 0) is BatchStatus.COMPLETED
    assert final_status(BatchStatus.IN_PROGRESS, 1) is BatchStatus.EXPIRED
