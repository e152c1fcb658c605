"""Usage views: per day and per hour, grouped or not, as JSON and CSV, equal to the responses."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import httpx
import openai

from tests.conftest import MODEL, create_key
from tests.support import Server


def test_series_and_csv_export(server: Server) -> None:
    key = str(create_key(server, name="usage-views")["key"])
    client = openai.OpenAI(base_url=server.v1, api_key=key, max_retries=0)
    used = [
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": f"u{i}"}], max_tokens=3 + i
        ).usage
        for i in range(4)
    ]
    completion = sum(u.completion_tokens for u in used if u is not None)
    auth = {"Authorization": f"Bearer {key}"}
    now = datetime.now(UTC)

    daily = httpx.get(f"{server.base_url}/api/usage", headers=auth).json()
    assert daily["granularity"] == "day"
    assert [row["day"] for row in daily["data"]] == [now.strftime("%Y-%m-%d")]
    assert daily["totals"]["completion_tokens"] == completion

    hourly = httpx.get(f"{server.base_url}/api/usage", headers=auth, params={"granularity": "hour"}).json()
    assert {row["hour"] for row in hourly["data"]} <= {
        now.strftime("%Y-%m-%dT%H"),
        now.strftime("%Y-%m-%dT%H"),
    }
    assert hourly["totals"] == daily["totals"]

    by_model = httpx.get(f"{server.base_url}/api/usage", headers=auth, params={"group_by": "model"}).json()
    assert all(row["key_id"] is None and row["model"] == MODEL for row in by_model["data"])

    exported = httpx.get(f"{server.base_url}/api/usage", headers=auth, params={"format": "csv"})
    assert exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert sum(int(r["completion_tokens"]) for r in rows) == completion
    assert sum(int(r["requests"]) for r in rows) == 4
    assert {r["model"] for r in rows} == {MODEL}

    bad = httpx.get(f"{server.base_url}/api/usage", headers=auth, params={"granularity": "week"})
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "granularity"
