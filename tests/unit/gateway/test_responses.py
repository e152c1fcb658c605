"""JSON responses rendered with orjson (gateway/responses.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from gpucloud.gateway.responses import json_response


def test_the_body_is_json_with_status_and_headers() -> None:
    response = json_response(
        {"a": [1, "é"], "at": datetime(2026, 1, 2, tzinfo=UTC)}, 201, {"x-request-id": "r"}
    )
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"] == "r"
    assert json.loads(bytes(response.body)) == {"a": [1, "é"], "at": "2026-01-02T00:00:00+00:00"}
    assert "é".encode() in bytes(response.body)  # UTF-8, not \\u escapes
