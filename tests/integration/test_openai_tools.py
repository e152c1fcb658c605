"""Tool calling, structured outputs, logprobs, penalties and logit_bias through the `openai` SDK.

Against the shared live servers (the simulated engine, which honours all of them): tool calls with
`tool_choice` auto/required/named, streamed and not, whose arguments (reassembled from the stream's
deltas) parse and validate against the declared parameters; a `tool` message round trip; strict
`json_schema` answers that parse and validate; logprobs in chat's and completions' shapes; each
penalty and `logit_bias` changing a seeded answer; and parameters refused with a 400 naming them.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import jsonschema
import openai
import pytest

from gpucloud.engines.tokenizer import Tokenizer
from tests.conftest import MODEL
from tests.integration.test_openai_api import assert_sdk_error
from tests.support import Server

CHAT = [{"role": "user", "content": "What is the weather in Paris?"}]
WEATHER = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "minLength": 2},
        "days": {"type": "integer", "minimum": 1, "maximum": 7},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    "required": ["city", "days", "unit"],
    "additionalProperties": False,
}
TIME = {
    "type": "object",
    "properties": {"zone": {"type": "string"}, "precise": {"type": "boolean"}},
    "required": ["zone"],
}
TOOLS: list[Any] = [
    {"type": "function", "function": {"name": "get_weather", "parameters": WEATHER, "strict": True}},
    {"type": "function", "function": {"name": "get_time", "parameters": TIME}},
]
SCHEMAS = {"get_weather": WEATHER, "get_time": TIME}
PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer", "minimum": 0, "maximum": 130},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 4},
        "address": {"$ref": "#/$defs/address"},
        "nickname": {"anyOf": [{"type": "string"}, {"type": "null"}]},
    },
    "required": ["name", "age", "tags", "address", "nickname"],
    "additionalProperties": False,
    "$defs": {
        "address": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "zip": {"type": "string", "maxLength": 5}},
            "required": ["city", "zip"],
            "additionalProperties": False,
        }
    },
}


@pytest.fixture
def client(user_client: openai.OpenAI) -> openai.OpenAI:
    return user_client


def _chat(client: openai.OpenAI, **kwargs: Any) -> Any:
    kwargs.setdefault("model", MODEL)
    kwargs.setdefault("messages", CHAT)
    return client.chat.completions.create(**kwargs)


def _validate_call(name: str, arguments: str) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(arguments)
    jsonschema.validate(parsed, SCHEMAS[name])
    return parsed


def _reassembled(chunks: list[Any]) -> tuple[dict[int, dict[str, str]], list[str]]:
    """Tool calls rebuilt from streamed deltas (by index) and the finish reasons."""
    calls: dict[int, dict[str, str]] = {}
    finishes = []
    for chunk in chunks:
        for choice in chunk.choices:
            for piece in choice.delta.tool_calls or []:
                call = calls.setdefault(piece.index, {"id": "", "name": "", "arguments": ""})
                if piece.id:
                    assert not call["id"], "the id comes once, with the first piece"
                    call["id"], call["name"] = piece.id, piece.function.name
                    assert piece.type == "function"
                call["arguments"] += piece.function.arguments or ""
            if choice.finish_reason:
                finishes.append(choice.finish_reason)
    return calls, finishes


# tools ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("choice", ["auto", "required"])
def test_tool_calls_validate_against_the_declared_parameters(client: openai.OpenAI, choice: str) -> None:
    answer = _chat(client, tools=TOOLS, tool_choice=choice, seed=7)
    message = answer.choices[0].message
    assert answer.choices[0].finish_reason == "tool_calls"
    assert message.content is None
    assert len(message.tool_calls) == 2  # two tools, parallel calls allowed by default
    assert len({call.id for call in message.tool_calls}) == 2
    assert {call.function.name for call in message.tool_calls} == {"get_weather", "get_time"}
    for call in message.tool_calls:
        assert call.type == "function"
        assert call.id.startswith("call_")
        _validate_call(call.function.name, call.function.arguments)


def test_named_tool_choice_and_no_parallel_calls(client: openai.OpenAI) -> None:
    named = {"type": "function", "function": {"name": "get_time"}}
    for seed in range(5):
        answer = _chat(client, tools=TOOLS, tool_choice=named, seed=seed)
        calls = answer.choices[0].message.tool_calls
        assert [c.function.name for c in calls] == ["get_time"]
        _validate_call("get_time", calls[0].function.arguments)
    single = _chat(client, tools=TOOLS, tool_choice="required", parallel_tool_calls=False, seed=3)
    assert len(single.choices[0].message.tool_calls) == 1


def test_tool_choice_none_answers_in_text(client: openai.OpenAI) -> None:
    answer = _chat(client, tools=TOOLS, tool_choice="none", seed=4, max_tokens=20)
    assert answer.choices[0].message.tool_calls is None
    assert answer.choices[0].message.content
    assert answer.choices[0].finish_reason in ("stop", "length")


@pytest.mark.parametrize("choice", ["auto", "required", "named"])
def test_streamed_tool_calls_reassemble(client: openai.OpenAI, choice: str) -> None:
    tool_choice: Any = choice
    if choice == "named":
        tool_choice = {"type": "function", "function": {"name": "get_weather"}}
    plain = _chat(client, tools=TOOLS, tool_choice=tool_choice, seed=11)
    chunks = list(_chat(client, tools=TOOLS, tool_choice=tool_choice, seed=11, stream=True))
    calls, finishes = _reassembled(chunks)
    assert finishes == ["tool_calls"]
    assert len(chunks) > len(calls) + 2, "arguments arrive in several pieces"
    expected = plain.choices[0].message.tool_calls
    assert [calls[i]["name"] for i in sorted(calls)] == [c.function.name for c in expected]
    for i, call in calls.items():
        assert call["id"] == expected[i].id
        assert call["arguments"] == expected[i].function.arguments
        _validate_call(call["name"], call["arguments"])


def test_tool_message_round_trip(client: openai.OpenAI) -> None:
    first = _chat(client, tools=TOOLS, tool_choice="auto", parallel_tool_calls=False, seed=5)
    message = first.choices[0].message
    (call,) = message.tool_calls
    history = [
        *CHAT,
        message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temperature_c": 21})},
    ]
    second = _chat(client, messages=history, tools=TOOLS, tool_choice="auto", seed=5, max_tokens=30)
    assert second.choices[0].message.tool_calls is None  # after the result, the model answers
    assert second.choices[0].message.content
    assert second.usage.prompt_tokens > first.usage.prompt_tokens


# structured outputs ---------------------------------------------------------------------------


def test_json_schema_strict_parses_and_validates(client: openai.OpenAI) -> None:
    fmt: Any = {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON, "strict": True}}
    answers = set()
    for seed in range(6):
        answer = _chat(client, response_format=fmt, seed=seed)
        content = answer.choices[0].message.content
        jsonschema.validate(json.loads(content), PERSON)
        answers.add(content)
        assert answer.choices[0].finish_reason == "stop"
    assert len(answers) > 1, "different seeds give different documents"
    chunks = list(_chat(client, response_format=fmt, seed=2, stream=True))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    jsonschema.validate(json.loads(streamed), PERSON)


def test_json_object(client: openai.OpenAI) -> None:
    answer = _chat(client, response_format={"type": "json_object"}, seed=1)
    assert isinstance(json.loads(answer.choices[0].message.content), dict)


# logprobs -------------------------------------------------------------------------------------


def test_chat_logprobs_are_well_formed(client: openai.OpenAI) -> None:
    answer = _chat(client, logprobs=True, top_logprobs=3, seed=9, max_tokens=12)
    content = answer.choices[0].logprobs.content
    assert len(content) == answer.usage.completion_tokens
    text = b"".join(bytes(item.bytes) for item in content).decode()
    assert text == answer.choices[0].message.content
    for item in content:
        assert item.logprob <= 0
        assert len(item.top_logprobs) == 3 or item.top_logprobs  # words' tails have one choice
        ranked = [alt.logprob for alt in item.top_logprobs]
        assert ranked == sorted(ranked, reverse=True)
    chunks = list(_chat(client, logprobs=True, seed=9, max_tokens=12, stream=True))
    streamed = [item.token for c in chunks for ch in c.choices if ch.logprobs for item in ch.logprobs.content]
    assert streamed == [item.token for item in content]
    plain = _chat(client, seed=9, max_tokens=12)
    assert plain.choices[0].logprobs is None


def test_completion_logprobs_are_well_formed(client: openai.OpenAI) -> None:
    answer = client.completions.create(model=MODEL, prompt="Once", logprobs=2, seed=4, max_tokens=10)
    logprobs = answer.choices[0].logprobs
    assert logprobs is not None
    assert logprobs.tokens is not None
    assert logprobs.token_logprobs is not None
    assert logprobs.text_offset is not None
    assert logprobs.top_logprobs is not None
    assert len(logprobs.tokens) == len(logprobs.token_logprobs) == len(logprobs.text_offset) == 10
    assert "".join(logprobs.tokens) == answer.choices[0].text
    assert logprobs.text_offset[0] == 0
    assert all(len(top) <= 2 for top in logprobs.top_logprobs)


# penalties and logit_bias ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "option", [{"presence_penalty": 1.5}, {"frequency_penalty": 1.5}, {"presence_penalty": -1.0}]
)
def test_each_penalty_changes_a_seeded_answer(client: openai.OpenAI, option: dict[str, float]) -> None:
    plain = _chat(client, seed=21, max_tokens=60).choices[0].message.content
    again = _chat(client, seed=21, max_tokens=60, **option).choices[0].message.content
    assert again != plain
    assert _chat(client, seed=21, max_tokens=60, **option).choices[0].message.content == again


def test_logit_bias_changes_a_seeded_answer(client: openai.OpenAI) -> None:
    tokenizer = Tokenizer()
    river = tokenizer.encode(" river")[0]
    plain = _chat(client, seed=22, max_tokens=60).choices[0].message.content
    biased = _chat(client, seed=22, max_tokens=60, logit_bias={str(river): 8}).choices[0].message.content
    assert biased.count(" river") > plain.count(" river") + 3
    the = tokenizer.encode(" the")[0]
    banned = _chat(client, seed=22, max_tokens=60, logit_bias={str(the): -100}).choices[0].message.content
    assert " the " in plain
    assert " the " not in banned


# refusals -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"tool_choice": "required"}, "tool_choice"),
        ({"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice"),
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"logit_bias": {"abc": 1}}, "logit_bias"),
        ({"logit_bias": {"12": 101}}, "logit_bias"),
        ({"store": True}, "store"),
        ({"metadata": {"a": "b"}}, "metadata"),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": 3}}}},
            "response_format.json_schema.schema",
        ),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "nope"}}}]},
            "tools[0].function.parameters",
        ),
        ({"functions": [{"name": "f"}]}, "functions"),
    ],
)
def test_bad_parameters_are_400_naming_them(client: openai.OpenAI, extra: dict[str, Any], param: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        _chat(client, extra_body=extra, max_tokens=5)
    assert_sdk_error(caught.value, 400, param=param)


def test_param_paths_have_no_union_tags(server: Server, user_key: str) -> None:
    headers = {"Authorization": f"Bearer {user_key}"}
    bad_message = {"model": MODEL, "messages": [{"role": "user", "content": 5}]}
    r = httpx.post(f"{server.v1}/chat/completions", json=bad_message, headers=headers, timeout=10)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == "messages[0].content", r.text
    r = httpx.post(
        f"{server.v1}/completions", json={"model": MODEL, "prompt": 5}, headers=headers, timeout=10
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == "prompt", r.text


# capabilities ---------------------------------------------------------------------------------

LACKS = "tools,json_object,json_schema,logprobs,penalties,logit_bias,seed"
LIMITED = "limited-model"


@pytest.fixture(scope="module")
def limited(server: Server) -> str:
    """A model whose engine honours none of the optional parameters (the simulated engine with
    `lacks`). In cluster mode a worker serves it and announces its capabilities through the
    queue; in embedded mode it is a deployment, whose capabilities the registry derives from its
    engine. Either way the gateway knows them without asking per request."""
    if "GPUCLOUD_REDIS_URL" in server.env:
        server.add_worker("--model", LIMITED, "--engine-option", f"lacks={LACKS}", name="limited-worker")
        server.wait_for_model(LIMITED, timeout_s=30)
        return LIMITED
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    body = {"name": LIMITED, "engine": "simulated", "engine_options": {"lacks": LACKS}}
    r = httpx.post(f"{server.base_url}/api/deployments", json=body, headers=headers, timeout=10)
    assert r.status_code == 201, r.text
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state = httpx.get(f"{server.base_url}/api/deployments/{LIMITED}", headers=headers).json()
        if state["state"] == "ready":
            return LIMITED
        time.sleep(0.2)
    raise AssertionError(f"the deployment never became ready: {state}")


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"tools": TOOLS}, "tools"),
        ({"tool_choice": "none"}, "tool_choice"),
        ({"parallel_tool_calls": True}, "parallel_tool_calls"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"logprobs": True}, "logprobs"),
        ({"presence_penalty": 0.5}, "presence_penalty"),
        ({"frequency_penalty": 0.5}, "frequency_penalty"),
        ({"logit_bias": {"12": 3}}, "logit_bias"),
        ({"seed": 3}, "seed"),
    ],
)
def test_a_parameter_the_models_engine_lacks_is_400_naming_it(
    client: openai.OpenAI, limited: str, extra: dict[str, Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        _chat(client, model=limited, extra_body=extra, max_tokens=5)
    assert_sdk_error(caught.value, 400, param=param, code="unsupported_parameter")
    plain = _chat(client, model=limited, max_tokens=5)  # the model itself serves
    assert plain.choices[0].message.content


def test_completion_logprobs_on_a_model_without_them(client: openai.OpenAI, limited: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model=limited, prompt="x", logprobs=1, max_tokens=3)
    assert_sdk_error(caught.value, 400, param="logprobs", code="unsupported_parameter")
