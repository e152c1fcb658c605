"""Every answer of the OpenAI-compatible API validates against OpenAI's published schemas.

`tests/openai_spec/openai-schemas.yaml` holds the response schemas of OpenAI's OpenAPI
specification and the request schemas of chat, text completions and responses
(github.com/openai/openai-openapi at f85dbe2, MIT licence; descriptions dropped, every schema they
reference kept; test_openai_parameters.py walks the requests' parameters). Live answers of a
running server — models, chat and text completions (plain and every stream chunk, with tools,
logprobs and structured output), embeddings, responses (plain and every stream event, with tools,
logprobs and structured output) and errors — are validated with jsonschema against them.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml

from tests.conftest import MODEL
from tests.support import Server

SPEC = Path(__file__).resolve().parents[1] / "openai_spec" / "openai-schemas.yaml"
TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
        },
    }
]
SCHEMA_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "thing", "schema": {"type": "object", "properties": {"a": {"type": "integer"}}}},
}


@cache
def _components() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(SPEC.read_text())
    schemas = _nullable(spec["components"]["schemas"])
    # OpenAI streams text completions as CreateCompletionResponse objects whose finish_reason is
    # null until the last chunk; the specification has no separate chunk schema for that.
    chunk = json.loads(json.dumps(schemas["CreateCompletionResponse"]))
    reason = chunk["properties"]["choices"]["items"]["properties"]["finish_reason"]
    chunk["properties"]["choices"]["items"]["properties"]["finish_reason"] = {
        "anyOf": [reason, {"type": "null"}]
    }
    schemas["CreateCompletionChunk"] = chunk
    return {"schemas": schemas}


def _nullable(node: Any) -> Any:
    """The specification's OpenAPI 3.0 `nullable: true` in JSON Schema terms (null allowed)."""
    if isinstance(node, list):
        return [_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _nullable(value) for key, value in node.items() if key != "nullable"}
    return {"anyOf": [converted, {"type": "null"}]} if node.get("nullable") is True else converted


def _event_schema(kind: str) -> str:
    """The member of ResponseStreamEvent whose `type` is `kind`."""
    schemas = _components()["schemas"]
    for member in schemas["ResponseStreamEvent"]["anyOf"]:
        name = member["$ref"].rsplit("/", 1)[-1]
        if kind in schemas[name].get("properties", {}).get("type", {}).get("enum", []):
            return str(name)
    raise AssertionError(f"no event type {kind!r} in the specification")


def conforms(body: Any, schema: str) -> None:
    """Fails with the offending path unless `body` validates against the named schema."""
    root = {"$ref": f"#/components/schemas/{schema}", "components": _components()}
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(root).iter_errors(body))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path)
        raise AssertionError(f"{schema} at {where or '(root)'}: {error.message}\n{json.dumps(body)[:2000]}")


@pytest.fixture
def api(server: Server, user_key: str) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {user_key}"}
    with httpx.Client(base_url=server.v1, headers=headers, timeout=30) as client:
        yield client


def _events(response: httpx.Response) -> list[Any]:
    """The JSON payloads of an SSE body (without `[DONE]`)."""
    assert response.status_code == 200, response.text
    out = []
    for line in response.text.splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            out.append(json.loads(line[6:]))
    return out


def test_models(api: httpx.Client) -> None:
    conforms(api.get("/models").json(), "ListModelsResponse")
    conforms(api.get(f"/models/{MODEL}").json(), "Model")


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"n": 2, "stop": ["."]},
        {"tools": TOOLS, "tool_choice": "required"},
        {"logprobs": True, "top_logprobs": 2},
        {"response_format": SCHEMA_FORMAT},
        {"max_tokens": 3},
    ],
    ids=["plain", "n", "tools", "logprobs", "json_schema", "length"],
)
def test_chat_completion_and_its_chunks(api: httpx.Client, extra: dict[str, Any]) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "seed": 3, **extra}
    plain = api.post("/chat/completions", json=body)
    assert plain.status_code == 200, plain.text
    conforms(plain.json(), "CreateChatCompletionResponse")
    streamed = {**body, "stream": True, "stream_options": {"include_usage": True}}
    chunks = _events(api.post("/chat/completions", json=streamed))
    assert len(chunks) > 2
    for chunk in chunks:
        conforms(chunk, "CreateChatCompletionStreamResponse")


@pytest.mark.parametrize(
    "extra", [{}, {"logprobs": 2, "max_tokens": 5}, {"n": 2}], ids=["plain", "logprobs", "n"]
)
def test_text_completion_and_its_chunks(api: httpx.Client, extra: dict[str, Any]) -> None:
    body = {"model": MODEL, "prompt": "Once upon", "seed": 2, **extra}
    plain = api.post("/completions", json=body)
    assert plain.status_code == 200, plain.text
    conforms(plain.json(), "CreateCompletionResponse")
    for chunk in _events(api.post("/completions", json={**body, "stream": True})):
        conforms(chunk, "CreateCompletionChunk")


@pytest.mark.parametrize("encoding", ["float", "base64"])
def test_embeddings(api: httpx.Client, encoding: str) -> None:
    r = api.post("/embeddings", json={"model": MODEL, "input": ["a", "b"], "encoding_format": encoding})
    assert r.status_code == 200, r.text
    body = r.json()
    if encoding == "base64":
        # OpenAI answers base64 as a string (what its SDK decodes); the specification types only
        # the float form, so the decoded vectors are what is checked against it.
        for item in body["data"]:
            raw = base64.b64decode(item["embedding"])
            item["embedding"] = list(struct.unpack(f"<{len(raw) // 4}f", raw))
    conforms(body, "CreateEmbeddingResponse")


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"tools": [{"type": "function", "name": "lookup", "parameters": TOOLS[0]["function"]["parameters"]}]},
        {"text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": "object"}}}},
        {"max_output_tokens": 4},
        {"include": ["message.output_text.logprobs"], "top_logprobs": 2},
    ],
    ids=["plain", "tool", "json_schema", "incomplete", "logprobs"],
)
def test_responses_and_their_events(api: httpx.Client, extra: dict[str, Any]) -> None:
    body = {"model": MODEL, "input": "hi", "instructions": "Answer.", **extra}
    plain = api.post("/responses", json=body)
    assert plain.status_code == 200, plain.text
    conforms(plain.json(), "Response")
    events = _events(api.post("/responses", json={**body, "stream": True}))
    assert events[0]["type"] == "response.created"
    for event in events:
        conforms(event, _event_schema(event["type"]))  # its own member first: precise errors
        conforms(event, "ResponseStreamEvent")


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/chat/completions", {"model": MODEL, "messages": []}, 400),
        (
            "/chat/completions",
            {"model": MODEL, "messages": [{"role": "user", "content": "x"}], "nope": 1},
            400,
        ),
        (
            "/chat/completions",
            {"model": "no-such-model", "messages": [{"role": "user", "content": "x"}]},
            404,
        ),
        ("/completions", {"model": MODEL, "prompt": "x", "echo": True}, 400),
        ("/responses", {"model": MODEL, "input": "x", "previous_response_id": "resp_1"}, 400),
        ("/embeddings", {"model": MODEL, "input": [1, 2]}, 400),
    ],
)
def test_errors(api: httpx.Client, path: str, body: dict[str, Any], status: int) -> None:
    r = api.post(path, json=body)
    assert r.status_code == status, r.text
    conforms(r.json(), "ErrorResponse")
    param = r.json()["error"]["param"]
    if param is not None and param != "model":  # a path into the request that exists in it
        assert param.split(".")[0].split("[")[0] in body, param


def test_errors_without_a_key(server: Server) -> None:
    r = httpx.get(f"{server.v1}/models", timeout=10)
    assert r.status_code == 401
    conforms(r.json(), "ErrorResponse")
