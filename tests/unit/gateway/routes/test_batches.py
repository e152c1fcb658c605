"""`/v1/batches` (gateway/routes/batches.py) on the real app: a batch is made from an uploaded
file, listed, fetched and cancelled; bad inputs are refused by name."""

from __future__ import annotations

from tests.unit.gateway.conftest import MODEL, LiveApp

LINE = (
    '{"custom_id": "a", "method": "POST", "url": "/v1/completions", '
    f'"body": {{"model": "{MODEL}", "prompt": "x", "max_tokens": 1}}}}\n'
).encode()


async def upload(live: LiveApp, bearer: dict[str, str], purpose: str) -> str:
    r = await live.client.post(
        "/v1/files", files={"file": ("in.jsonl", LINE)}, data={"purpose": purpose}, headers=bearer
    )
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


async def test_a_batch_is_made_listed_and_cancelled(live: LiveApp) -> None:
    _, secret = await live.new_key()
    bearer = {"Authorization": f"Bearer {secret}"}
    file_id = await upload(live, bearer, "batch")
    body = {"input_file_id": file_id, "endpoint": "/v1/completions", "completion_window": "24h"}
    created = await live.client.post("/v1/batches", json=body, headers=bearer)
    assert created.status_code == 200, created.text
    batch = created.json()
    assert (batch["object"], batch["input_file_id"]) == ("batch", file_id)
    assert [b["id"] for b in (await live.client.get("/v1/batches", headers=bearer)).json()["data"]] == [
        batch["id"]
    ]
    assert (await live.client.get(f"/v1/batches/{batch['id']}", headers=bearer)).json()["id"] == batch["id"]
    cancelled = await live.client.post(f"/v1/batches/{batch['id']}/cancel", headers=bearer)
    assert cancelled.status_code in (200, 409), cancelled.text  # it may have finished already
    if cancelled.status_code == 200:
        assert cancelled.json()["status"] in ("cancelling", "cancelled", "completed")


async def test_bad_batches_are_refused_by_name(live: LiveApp) -> None:
    _, secret = await live.new_key()
    bearer = {"Authorization": f"Bearer {secret}"}
    not_batch = await upload(live, bearer, "user_data")
    body = {"input_file_id": not_batch, "endpoint": "/v1/completions", "completion_window": "24h"}
    wrong_purpose = await live.client.post("/v1/batches", json=body, headers=bearer)
    assert (wrong_purpose.status_code, wrong_purpose.json()["error"]["param"]) == (400, "input_file_id")
    window = await live.client.post("/v1/batches", json=body | {"completion_window": "1h"}, headers=bearer)
    assert (window.status_code, window.json()["error"]["param"]) == (400, "completion_window")
    missing = await live.client.post(
        "/v1/batches", json=body | {"input_file_id": "file-missing"}, headers=bearer
    )
    assert missing.status_code in (400, 404)
