"""`/v1/files` (gateway/routes/files.py) on the real app: upload, list, read back, delete; a file
belongs to the key that uploaded it."""

from __future__ import annotations

from tests.unit.gateway.conftest import LiveApp

LINE = (
    b'{"custom_id": "a", "method": "POST", "url": "/v1/completions", "body": {"model": "m", "prompt": "x"}}\n'
)


async def test_a_file_round_trips_and_belongs_to_its_key(live: LiveApp) -> None:
    _, secret = await live.new_key()
    bearer = {"Authorization": f"Bearer {secret}"}
    uploaded = await live.client.post(
        "/v1/files", files={"file": ("in.jsonl", LINE)}, data={"purpose": "batch"}, headers=bearer
    )
    assert uploaded.status_code == 200, uploaded.text
    file = uploaded.json()
    assert (file["object"], file["bytes"], file["purpose"], file["filename"]) == (
        "file",
        len(LINE),
        "batch",
        "in.jsonl",
    )
    listed = (await live.client.get("/v1/files", headers=bearer)).json()["data"]
    assert [f["id"] for f in listed] == [file["id"]]
    content = await live.client.get(f"/v1/files/{file['id']}/content", headers=bearer)
    assert content.content == LINE
    _, other = await live.new_key()
    stranger = await live.client.get(f"/v1/files/{file['id']}", headers={"Authorization": f"Bearer {other}"})
    assert stranger.status_code == 404
    deleted = await live.client.delete(f"/v1/files/{file['id']}", headers=bearer)
    assert deleted.json()["deleted"] is True
    assert (await live.client.get(f"/v1/files/{file['id']}", headers=bearer)).status_code == 404


async def test_uploads_without_their_parts_are_refused(live: LiveApp) -> None:
    _, secret = await live.new_key()
    bearer = {"Authorization": f"Bearer {secret}"}
    not_form = await live.client.post("/v1/files", json={"purpose": "batch"}, headers=bearer)
    assert (not_form.status_code, not_form.json()["error"]["param"]) == (400, "file")
    no_purpose = await live.client.post("/v1/files", files={"file": ("a.jsonl", LINE)}, headers=bearer)
    assert (no_purpose.status_code, no_purpose.json()["error"]["param"]) == (400, "purpose")
    no_file = await live.client.post(
        "/v1/files", data={"purpose": "batch"}, files={"x": ("", b"")}, headers=bearer
    )
    assert no_file.status_code == 400
