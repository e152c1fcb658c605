"""The Batch object: OpenAI's fields, times as Unix seconds (None until reached), counts as given."""

from __future__ import annotations

from datetime import UTC, datetime

from gpucloud.batches.store import Counts
from gpucloud.batches.views import batch_view
from gpucloud.db.models import Batch

CREATED = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_the_view_has_openais_fields_and_unreached_times_are_none() -> None:
    row = Batch(
        id="batch_1",
        key_id="key_1",
        endpoint="/v1/chat/completions",
        input_file_id="file-in",
        completion_window="24h",
        status="in_progress",
        meta={"team": "a"},
        created_at=CREATED,
        in_progress_at=CREATED.replace(second=6),
        expires_at=CREATED.replace(day=3),
    )
    view = batch_view(row, Counts(total=5, completed=2, failed=1, unfinished=2))
    assert set(view) == {
        "id", "object", "endpoint", "errors", "input_file_id", "completion_window", "status",
        "output_file_id", "error_file_id", "created_at", "in_progress_at", "expires_at",
        "finalizing_at", "completed_at", "failed_at", "expired_at", "cancelling_at", "cancelled_at",
        "request_counts", "metadata",
    }  # fmt: skip
    assert (view["object"], view["status"], view["metadata"]) == ("batch", "in_progress", {"team": "a"})
    assert view["created_at"] == int(CREATED.timestamp())
    assert view["in_progress_at"] == int(CREATED.timestamp()) + 1
    assert view["expires_at"] == int(CREATED.timestamp()) + 86400
    assert view["completed_at"] is None
    assert view["output_file_id"] is None
    assert view["request_counts"] == {"total": 5, "completed": 2, "failed": 1}
    assert "key_id" not in view
