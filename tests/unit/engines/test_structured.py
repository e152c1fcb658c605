"""Structured answers of the simulated model (engines/structured.py): JSON that validates against
the request's schema, and the tool calls a request's `tool_choice` asks for."""

from __future__ import annotations

import json
import random
from typing import Any

import jsonschema
import pytest

from gpucloud.engines.protocol import GenerationRequest
from gpucloud.engines.structured import instance, plan_tool_calls, structured_answer

SCHEMAS: list[dict[str, Any]] = [
    {
        "type": "object",
        "properties": {"a": {"type": "integer", "minimum": 5, "maximum": 7}},
        "required": ["a"],
    },
    {"type": "array", "items": {"enum": ["x", "y", "z"]}, "minItems": 2, "maxItems": 3, "uniqueItems": True},
    {"type": "string", "minLength": 30, "maxLength": 40},
    {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
    {"type": ["null", "boolean"]},
    {"anyOf": [{"type": "integer"}, {"const": "fixed"}]},
    {
        "allOf": [
            {"type": "object", "properties": {"p": {"type": "string", "format": "email"}}},
            {"required": ["p"]},
        ]
    },
    {
        "$defs": {"node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/node"}}}},
        "$ref": "#/$defs/node",
    },
    # Exclusive bounds on whole numbers: the only integer past 2.5 and up to 3 is 3.
    {"type": "integer", "exclusiveMinimum": 2.5, "maximum": 3},
    {"type": "integer", "minimum": -2, "exclusiveMaximum": -1.5},
]


@pytest.mark.parametrize("schema", SCHEMAS)
@pytest.mark.parametrize("seed", range(5))
def test_instances_validate(schema: dict[str, Any], seed: int) -> None:
    value = instance(schema, random.Random(seed), root=schema)
    jsonschema.validate(value, schema)


def test_strict_objects_have_every_property_and_depth_is_bounded() -> None:
    schema = {"type": "object", "properties": {f"p{i}": {"type": "boolean"} for i in range(6)}}
    assert set(instance(schema, random.Random(0), root=schema, strict=True)) == {f"p{i}" for i in range(6)}
    recursive = {"type": "object", "properties": {"child": {"$ref": "#"}}}
    value = instance(recursive, random.Random(0), root=recursive, strict=True)
    depth = 0
    while value:
        value, depth = value["child"], depth + 1
    assert depth == 8  # strict asks for every property: it stops at the depth limit with {}


def test_impossible_unique_items_are_an_error() -> None:
    schema = {"type": "array", "items": {"const": 1}, "minItems": 2, "uniqueItems": True}
    with pytest.raises(ValueError, match="distinct items"):
        instance(schema, random.Random(0), root=schema)


def chat(**fields: Any) -> GenerationRequest:
    messages = fields.pop("messages", [{"role": "user", "content": "hi"}])
    return GenerationRequest(kind="chat", model="m", messages=messages, **fields)


def test_structured_answer_follows_response_format() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    fmt = {"type": "json_schema", "json_schema": {"name": "s", "schema": schema, "strict": True}}
    text = structured_answer(chat(response_format=fmt), random.Random(1))
    assert text is not None
    jsonschema.validate(json.loads(text), schema)
    json_object = structured_answer(chat(response_format={"type": "json_object"}), random.Random(1))
    assert json_object is not None
    assert set(json.loads(json_object)) == {"answer"}
    assert structured_answer(chat(response_format={"type": "text"}), random.Random(1)) is None
    assert structured_answer(chat(), random.Random(1)) is None


def tool(name: str) -> dict[str, Any]:
    parameters = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    return {"type": "function", "function": {"name": name, "parameters": parameters}}


TOOLS = [tool("weather"), tool("time"), tool("news")]


def test_tool_choice_decides_the_calls() -> None:
    rng = random.Random(0)
    assert plan_tool_calls(chat(tools=TOOLS, tool_choice="none"), rng) == []
    assert plan_tool_calls(chat(), rng) == []
    named = plan_tool_calls(
        chat(tools=TOOLS, tool_choice={"type": "function", "function": {"name": "time"}}), rng
    )
    assert [call.name for call in named] == ["time"]
    assert json.loads(named[0].arguments)["city"]
    assert named[0].id.startswith("call_")
    parallel = plan_tool_calls(chat(tools=TOOLS, tool_choice="auto"), rng)
    assert len({call.name for call in parallel}) == 2
    single = plan_tool_calls(chat(tools=TOOLS, parallel_tool_calls=False), rng)
    assert len(single) == 1


def test_auto_answers_in_text_after_a_tool_result() -> None:
    after_tool = [
        {"role": "user", "content": "weather?"},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    rng = random.Random(0)
    assert plan_tool_calls(chat(tools=TOOLS, tool_choice="auto", messages=after_tool), rng) == []
    assert len(plan_tool_calls(chat(tools=TOOLS, tool_choice="required", messages=after_tool), rng)) == 2
