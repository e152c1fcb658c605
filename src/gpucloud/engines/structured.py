"""What the simulated model answers when a request asks for structure: JSON or tool calls.

`instance` writes a JSON value that validates against a JSON schema (objects with their required
properties, or all of them for `strict`, arrays within their bounds, strings within their length,
numbers within their range, enums, consts, `$ref`s to `$defs`, `anyOf`/`oneOf`), drawing words and
numbers from the request's seeded generator. `plan_tool_calls` decides which tools a request calls:
`tool_choice` "none" never, a named function always that one, "required" always, and "auto" when
the conversation's last message is the user's (after a tool's result, the model answers in text),
two different tools at once when there are several and `parallel_tool_calls` is not false.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from typing import Any

from gpucloud.engines.prose import WORDS
from gpucloud.engines.protocol import GenerationRequest

_MAX_DEPTH = 8  # recursive schemas stop here (with the smallest value that fits)
_FORMATS = {
    "date-time": "2026-01-01T12:00:00Z",
    "date": "2026-01-01",
    "time": "12:00:00",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "uuid": "123e4567-e89b-12d3-a456-426614174000",
}


@dataclass(frozen=True, slots=True)
class PlannedCall:
    id: str
    name: str
    arguments: str  # JSON text


def structured_answer(request: GenerationRequest, rng: random.Random) -> str | None:
    """The JSON text a `response_format` asks for, or None for free text."""
    kind = (request.response_format or {}).get("type")
    if kind == "json_schema":
        schema = request.json_schema() or {}
        strict = bool(((request.response_format or {}).get("json_schema") or {}).get("strict"))
        return json.dumps(instance(schema, rng, root=schema, strict=strict), ensure_ascii=False)
    if kind == "json_object":
        return json.dumps({"answer": _words(rng, 3, 8)}, ensure_ascii=False)
    return None


def plan_tool_calls(request: GenerationRequest, rng: random.Random) -> list[PlannedCall]:
    tools = [t["function"] for t in request.tools or []]
    choice = request.tool_choice
    if not tools or choice == "none":
        return []
    if isinstance(choice, dict):
        chosen = [f for f in tools if f["name"] == choice["function"]["name"]]
    elif choice == "required" or _users_turn(request):
        count = 2 if len(tools) > 1 and request.parallel_tool_calls is not False else 1
        chosen = rng.sample(tools, count)
    else:
        return []
    return [_call(function, rng) for function in chosen]


def _users_turn(request: GenerationRequest) -> bool:
    messages = request.messages or []
    return bool(messages) and messages[-1].get("role") == "user"


def _call(function: dict[str, Any], rng: random.Random) -> PlannedCall:
    schema = function.get("parameters") or {"type": "object", "properties": {}}
    strict = bool(function.get("strict"))
    arguments = instance(schema, rng, root=schema, strict=strict)
    call_id = "call_" + "".join(rng.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=24))
    return PlannedCall(call_id, function["name"], json.dumps(arguments, ensure_ascii=False))


def instance(schema: Any, rng: random.Random, *, root: Any, strict: bool = False, depth: int = 0) -> Any:
    """A value valid for `schema` (see module docstring)."""
    if not isinstance(schema, dict):
        return None if schema is False else _words(rng, 1, 3)
    schema = _resolved(schema, root)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return rng.choice(schema["enum"])
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            return instance(rng.choice(schema[key]), rng, root=root, strict=strict, depth=depth + 1)
    if schema.get("allOf"):
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            merged |= _resolved(part, root)
        return instance(merged, rng, root=root, strict=strict, depth=depth + 1)
    kind = _type_of(schema)
    if kind == "object":
        return _object(schema, rng, root, strict, depth)
    if kind == "array":
        return _array(schema, rng, root, strict, depth)
    return _scalar(kind, schema, rng)


def _resolved(schema: dict[str, Any], root: Any) -> dict[str, Any]:
    seen = 0
    while isinstance(schema.get("$ref"), str) and seen < _MAX_DEPTH:
        target: Any = root
        for part in schema["$ref"].removeprefix("#").strip("/").split("/"):
            target = target.get(part, {}) if part and isinstance(target, dict) else target
        schema, seen = (target if isinstance(target, dict) else {}), seen + 1
    return schema


def _type_of(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"] or ["null"]
        return str(kinds[0])
    if kind is None:
        return "object" if "properties" in schema else "string"
    return str(kind)


def _object(schema: dict[str, Any], rng: random.Random, root: Any, strict: bool, depth: int) -> Any:
    properties: dict[str, Any] = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    if depth >= _MAX_DEPTH:
        names = [name for name in properties if name in required]
    else:
        names = [name for name in properties if strict or name in required or rng.random() < 0.5]
    return {
        name: instance(properties[name], rng, root=root, strict=strict, depth=depth + 1) for name in names
    }


def _array(schema: dict[str, Any], rng: random.Random, root: Any, strict: bool, depth: int) -> Any:
    low = int(schema.get("minItems") or 0)
    high = int(schema.get("maxItems", max(low, 3)))
    size = low if depth >= _MAX_DEPTH else rng.randint(low, max(low, min(high, low + 3)))
    items = schema.get("items") or {"type": "string"}
    values: list[Any] = []
    while len(values) < size:
        value = instance(items, rng, root=root, strict=strict, depth=depth + 1)
        if schema.get("uniqueItems") and value in values:
            value = _distinct(items, values, rng, root, strict, depth)
        values.append(value)
    return values


def _distinct(items: Any, values: list[Any], rng: random.Random, root: Any, strict: bool, depth: int) -> Any:
    for _ in range(50):
        value = instance(items, rng, root=root, strict=strict, depth=depth + 1)
        if value not in values:
            return value
    raise ValueError("cannot make enough distinct items for this schema")


def _scalar(kind: str, schema: dict[str, Any], rng: random.Random) -> Any:
    if kind == "integer":
        low, high = _bounds(schema, 1)
        return rng.randint(int(low), int(high))
    if kind == "number":
        low, high = _bounds(schema, 0.01)
        return round(rng.uniform(low, high), 2) if high - low >= 0.02 else low
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "null":
        return None
    return _string(schema, rng)


def _bounds(schema: dict[str, Any], step: float) -> tuple[float, float]:
    whole = step == 1
    low = schema.get(
        "minimum", _beyond(schema["exclusiveMinimum"], step, whole) if "exclusiveMinimum" in schema else 0
    )
    high = schema.get(
        "maximum", _beyond(schema["exclusiveMaximum"], -step, whole) if "exclusiveMaximum" in schema else 100
    )
    if whole:
        low, high = -(-low // 1), high // 1  # whole numbers inside the bounds
    return low, max(low, high)


def _beyond(bound: float, step: float, whole: bool) -> float:
    """The first value strictly past an exclusive bound: for integers the next whole number (past
    2.5 comes 3, not 2.5 + 1), for numbers one step on."""
    if whole:
        return math.floor(bound) + 1 if step > 0 else math.ceil(bound) - 1
    return bound + step


def _string(schema: dict[str, Any], rng: random.Random) -> str:
    if schema.get("format") in _FORMATS:
        return _FORMATS[schema["format"]]
    low, high = int(schema.get("minLength") or 0), schema.get("maxLength")
    text = _words(rng, 1, 4)
    while len(text) < low:
        text += " " + _words(rng, 1, 2)
    return text[: int(high)] if high is not None else text


def _words(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choice(WORDS[:60]) for _ in range(rng.randint(low, high)))
