"""A fuzzer over the whole HTTP API: schemathesis generates requests from the OpenAPI schema
(valid and invalid ones) for every operation, with an admin key, a user key and no key, against
a real embedded `gpucloud serve` on SQLite and on PostgreSQL (which refuses NUL in text). No
answer may be a 5xx, every error must be OpenAI-shaped, and a documented answer must match its
schema.

Bounded: a few examples per operation and credential (one to two minutes per database here);
the server's request bounds are lowered so that a generated `max_tokens` or `n` stays cheap, and
an admin's deployments (whose replica counts would start hundreds of engines) are fuzzed with
the other credentials only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from gpucloud.gateway.app import create_app
from gpucloud.settings import Settings
from tests.support import SECRETS, Server, create_pg_database, drop_pg_database, make_server

SCHEMA = schemathesis.openapi.from_dict(create_app(Settings()).openapi())
HEAVY_FOR_ADMIN = {("POST", "/api/deployments"), ("PATCH", "/api/deployments/{ref}")}
ENV = {
    "GPUCLOUD_LIMITS__MAX_TOKENS": "64",
    "GPUCLOUD_LIMITS__MAX_N": "2",
    "GPUCLOUD_LIMITS__MAX_EMBEDDING_INPUTS": "8",
    "GPUCLOUD_QUEUE__MAX_WAIT_S": "5",
}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    url = create_pg_database() if request.param == "postgres" else None
    server = make_server(tmp_path_factory.mktemp(f"fuzz-{request.param}"), database_url=url, env=ENV)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        if url is not None:
            drop_pg_database(url)


@pytest.fixture(scope="module")
def credentials(server: Server) -> dict[str, str | None]:
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    r = httpx.post(f"{server.base_url}/api/keys", json={"name": "fuzz-user"}, headers=headers)
    assert r.status_code == 201, r.text
    SECRETS.add(r.json()["key"])
    return {"admin": server.admin_key, "user": r.json()["key"], "none": None}


def openai_shaped(response: Any) -> None:
    if response.status_code < 400:
        return
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}, response.text
    assert isinstance(error["message"], str)
    assert error["message"]


@pytest.mark.parametrize("who", ["admin", "user", "none"])
@SCHEMA.parametrize()
@settings(
    max_examples=6,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_input_gets_a_5xx_or_an_unshaped_error(
    case: Any, who: str, server: Server, credentials: dict[str, str | None]
) -> None:
    if who == "admin" and (case.method.upper(), case.path) in HEAVY_FOR_ADMIN:
        pytest.skip("generated replica counts would start hundreds of engines")
    headers = dict(case.headers or {})
    headers.pop("Authorization", None)
    if credentials[who] is not None:
        headers["Authorization"] = f"Bearer {credentials[who]}"
    response = case.call(base_url=server.base_url, headers=headers, timeout=30)
    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
    openai_shaped(response)
