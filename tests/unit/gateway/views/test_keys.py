"""The key views (gateway/views/keys.py) describe exactly what the real key routes answer."""

from __future__ import annotations

from gpucloud.gateway.views.keys import ApiKeyCreated, ApiKeyDetail, ApiKeyList, ApiKeyView
from tests.unit.gateway.conftest import LiveApp


async def test_key_responses_match_their_views(live: LiveApp) -> None:
    created = await live.client.post("/api/keys", json={"name": "view", "rpm_limit": 3}, headers=live.admin)
    ApiKeyCreated.model_validate(created.json())
    key_id, secret = created.json()["id"], created.json()["key"]
    ApiKeyList.model_validate((await live.client.get("/api/keys", headers=live.admin)).json())
    ApiKeyDetail.model_validate((await live.client.get(f"/api/keys/{key_id}", headers=live.admin)).json())
    ApiKeyView.model_validate(
        (await live.client.get("/api/me", headers={"Authorization": f"Bearer {secret}"})).json()
    )
    ApiKeyView.model_validate((await live.client.delete(f"/api/keys/{key_id}", headers=live.admin)).json())
