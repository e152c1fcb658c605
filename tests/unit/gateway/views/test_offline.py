"""The files, batches and webhook views (gateway/views/offline.py) describe what the routes answer."""

from __future__ import annotations

from datetime import UTC, datetime

from gpucloud.batches.store import Counts
from gpucloud.db.models import Batch
from gpucloud.gateway.views.offline import (
    BatchList,
    BatchObject,
    FileDeleted,
    FileList,
    FileObject,
    WebhookDeliveryList,
    WebhookEndpointList,
    WebhookEndpointView,
    batch_view,
)
from tests.unit.gateway.conftest import MODEL, LiveApp

LINE = (
    '{"custom_id": "a", "method": "POST", "url": "/v1/completions", '
    f'"body": {{"model": "{MODEL}", "prompt": "x", "max_tokens": 1}}}}\n'
).encode()


async def test_offline_responses_match_their_views(live: LiveApp) -> None:
    _, secret = await live.new_key()
    bearer = {"Authorization": f"Bearer {secret}"}
    get, post = live.client.get, live.client.post
    file = FileObject.model_validate(
        (
            await post(
                "/v1/files", files={"file": ("in.jsonl", LINE)}, data={"purpose": "batch"}, headers=bearer
            )
        ).json()
    )
    FileList.model_validate((await get("/v1/files", headers=bearer)).json())
    body = {"input_file_id": file.id, "endpoint": "/v1/completions", "completion_window": "24h"}
    batch = BatchObject.model_validate((await post("/v1/batches", json=body, headers=bearer)).json())
    BatchList.model_validate((await get("/v1/batches", headers=bearer)).json())
    BatchObject.model_validate((await get(f"/v1/batches/{batch.id}", headers=bearer)).json())
    hook = {"url": "https://93.184.216.34/hook", "events": ["batch.completed"]}
    endpoint = WebhookEndpointView.model_validate(
        (await post("/api/webhooks", json=hook, headers=bearer)).json()
    )
    WebhookEndpointList.model_validate((await get("/api/webhooks", headers=bearer)).json())
    WebhookDeliveryList.model_validate(
        (await get(f"/api/webhooks/{endpoint.id}/deliveries", headers=bearer)).json()
    )
    other = FileObject.model_validate(
        (
            await post(
                "/v1/files", files={"file": ("b.jsonl", LINE)}, data={"purpose": "user_data"}, headers=bearer
            )
        ).json()
    )
    FileDeleted.model_validate((await live.client.delete(f"/v1/files/{other.id}", headers=bearer)).json())


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
    view = batch_view(row, Counts(total=5, completed=2, failed=1, unfinished=2)).model_dump()
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
