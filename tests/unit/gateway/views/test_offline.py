"""The files, batches and webhook views (gateway/views/offline.py) describe what the routes answer."""

from __future__ import annotations

from gpucloud.gateway.views.offline import (
    BatchList,
    BatchObject,
    FileDeleted,
    FileList,
    FileObject,
    WebhookDeliveryList,
    WebhookEndpointList,
    WebhookEndpointView,
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
