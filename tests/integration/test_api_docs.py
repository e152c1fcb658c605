"""`/openapi.json` and `/docs` on a live `gpucloud serve`: public, a valid OpenAPI 3.1 document with
the OpenAI routes' real request and response models and the bearer scheme where a key is needed,
the Swagger UI page and its packaged files under a same-origin CSP, and all of it off with
`GPUCLOUD_API_DOCS=false`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator

from gpucloud.gateway.permissions import ROUTES, Need
from tests.support import Server, make_server


@pytest.fixture(scope="module")
def docs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = make_server(tmp_path_factory.mktemp("docs-on"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _schema(server: Server) -> dict[str, Any]:
    r = httpx.get(f"{server.base_url}/openapi.json", timeout=10)  # no key: the schema is public
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _ref(content: dict[str, Any]) -> str:
    return str(content["application/json"]["schema"]["$ref"])


def test_the_schema_is_valid_openapi_3_1(docs_server: Server) -> None:
    schema = _schema(docs_server)
    assert schema["openapi"].startswith("3.1")
    OpenAPIV31SpecValidator(schema).validate()
    assert {"/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/models"} <= set(schema["paths"])
    assert not any(path.startswith(("/docs", "/openapi")) for path in schema["paths"])


def test_openai_routes_carry_their_real_models(docs_server: Server) -> None:
    schema = _schema(docs_server)
    chat = schema["paths"]["/v1/chat/completions"]["post"]
    assert _ref(chat["requestBody"]["content"]).endswith("/ChatCompletionRequest")
    assert _ref(chat["responses"]["200"]["content"]).endswith("/ChatCompletion")
    completion = schema["paths"]["/v1/completions"]["post"]
    assert _ref(completion["requestBody"]["content"]).endswith("/CompletionRequest")
    assert _ref(completion["responses"]["200"]["content"]).endswith("/TextCompletion")
    models = schema["components"]["schemas"]
    assert {"messages", "model", "max_tokens", "stream"} <= set(models["ChatCompletionRequest"]["properties"])
    assert {"choices", "usage", "model"} <= set(models["ChatCompletion"]["properties"])


def test_authenticated_operations_name_the_bearer_scheme(docs_server: Server) -> None:
    schema = _schema(docs_server)
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            public = ROUTES.get((method.upper(), path)) is Need.PUBLIC  # /health, /ready, sign-in
            assert ("security" in operation) is not public, (method, path)
            if not public:  # the schema says a key is needed: the server agrees
                concrete = path.replace("{", "").replace("}", "")
                r = httpx.request(method.upper(), docs_server.base_url + concrete, timeout=10)
                assert r.status_code == 401, (method, path, r.status_code)


def test_the_docs_page_and_its_files_come_from_this_origin(docs_server: Server) -> None:
    page = httpx.get(f"{docs_server.base_url}/docs", timeout=10)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp
    assert "://" not in page.text  # every file the page names is on this origin
    for name, kind in [
        ("swagger-ui-bundle.js", "javascript"),
        ("swagger-ui.css", "text/css"),
        ("init.js", "javascript"),
        ("LICENSE", "text/plain"),
    ]:
        r = httpx.get(f"{docs_server.base_url}/docs/static/{name}", timeout=10)
        assert r.status_code == 200, name
        assert kind in r.headers["content-type"], name
        assert f"/docs/static/{name}" in page.text or name == "LICENSE"
    missing = httpx.get(f"{docs_server.base_url}/docs/static/../settings.py", timeout=10)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


def test_docs_can_be_switched_off(tmp_path: Path) -> None:
    server = make_server(tmp_path, env={"GPUCLOUD_API_DOCS": "false"})
    server.start()
    try:
        for path in ("/docs", "/openapi.json", "/docs/static/init.js"):
            r = httpx.get(server.base_url + path, timeout=10)
            assert r.status_code == 404, path
            assert r.json()["error"]["code"] == "not_found", path
    finally:
        server.stop()
