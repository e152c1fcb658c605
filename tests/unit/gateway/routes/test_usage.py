"""`/api/usage` (gateway/routes/usage.py) on the real app: a key sees its own usage, admins any;
JSON or CSV."""

from __future__ import annotations

import csv
import io

from tests.unit.gateway.conftest import MODEL, LiveApp


async def test_a_key_sees_its_own_requests(live: LiveApp) -> None:
    key_id, secret = await live.new_key()
    bearer = {"Authorization": f"Bearer {secret}"}
    for _ in range(2):
        r = await live.client.post(
            "/v1/completions", json={"model": MODEL, "prompt": "x", "max_tokens": 2}, headers=bearer
        )
        assert r.status_code == 200, r.text
    own = await live.client.get("/api/usage", headers=bearer)
    assert own.status_code == 200, own.text
    rows = own.json()["data"]
    assert [(row["key_id"], row["model"], row["requests"], row["completion_tokens"]) for row in rows] == [
        (key_id, MODEL, 2, 4)
    ]
    other = await live.client.get("/api/usage", params={"key_id": "key_other"}, headers=bearer)
    assert (other.status_code, other.json()["error"]["param"]) == (403, "key_id")
    admin_view = await live.client.get("/api/usage", params={"key_id": key_id}, headers=live.admin)
    assert admin_view.json()["data"] == rows


async def test_csv_has_a_header_and_one_line_per_row(live: LiveApp) -> None:
    key_id, secret = await live.new_key()
    bearer = {"Authorization": f"Bearer {secret}"}
    await live.client.post(
        "/v1/completions", json={"model": MODEL, "prompt": "x", "max_tokens": 1}, headers=bearer
    )
    response = await live.client.get("/api/usage", params={"format": "csv"}, headers=bearer)
    assert response.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(response.text)))
    assert len(table) == 1
    assert (table[0]["key_id"], table[0]["requests"]) == (key_id, "1")
    bad = await live.client.get("/api/usage", params={"granularity": "week"}, headers=bearer)
    assert (bad.status_code, bad.json()["error"]["param"]) == (400, "granularity")
