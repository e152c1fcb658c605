"""A Responses API request as the engine-neutral chat request (gateway/responses_api/convert.py)."""

from __future__ import annotations

from typing import Any

import pytest

from gpucloud.engines.capabilities import Capabilities
from gpucloud.errors import InvalidRequest
from gpucloud.gateway.responses_api.convert import build_response_generation
from gpucloud.gateway.responses_api.schemas import ResponsesRequest
from gpucloud.settings import RequestLimits

ALL = Capabilities.everything()
LIMITS = RequestLimits()


def build(caps: Capabilities = ALL, limits: RequestLimits = LIMITS, **fields: Any) -> Any:
    body = ResponsesRequest.model_validate({"model": "m", "input": "hello"} | fields)
    return build_response_generation(body, limits, caps)


def refused(param: str, caps: Capabilities = ALL, limits: RequestLimits = LIMITS, **fields: Any) -> str:
    with pytest.raises(InvalidRequest) as caught:
        build(caps, limits, **fields)
    assert caught.value.param == param
    return caught.value.message


def test_a_plain_input_with_instructions_is_a_chat() -> None:
    request = build(instructions="Be brief.", max_output_tokens=5, temperature=0.5, user="u")
    assert request.kind == "chat"
    assert request.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hello"},
    ]
    assert (request.max_tokens, request.temperature, request.user) == (5, 0.5, "u")
    assert request.tools is None
    assert request.response_format is None


def test_parallel_function_calls_share_one_assistant_turn() -> None:
    items = [
        {"role": "user", "content": [{"type": "input_text", "text": "weather?"}]},
        {"type": "function_call", "call_id": "a", "name": "weather", "arguments": '{"city":"x"}'},
        {"type": "function_call", "call_id": "b", "name": "weather", "arguments": '{"city":"y"}'},
        {"type": "function_call_output", "call_id": "a", "output": "sunny"},
    ]
    messages = build(input=items).messages
    assert [m["role"] for m in messages] == ["user", "assistant", "tool"]
    assert [c["id"] for c in messages[1]["tool_calls"]] == ["a", "b"]
    assert messages[1]["content"] is None
    assert messages[2] == {"role": "tool", "tool_call_id": "a", "content": "sunny"}


def test_tools_choice_and_format_take_their_chat_shapes() -> None:
    tools = [{"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": True}]
    fmt = {"type": "json_schema", "name": "s", "schema": {"type": "object"}, "strict": True}
    request = build(tools=tools, tool_choice={"type": "function", "name": "f"}, text={"format": fmt})
    assert request.tools == [
        {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}, "strict": True}}
    ]
    assert request.tool_choice == {"type": "function", "function": {"name": "f"}}
    assert request.response_format == {
        "type": "json_schema",
        "json_schema": {"name": "s", "schema": {"type": "object"}, "strict": True},
    }
    assert build(text={"format": {"type": "json_object"}}).response_format == {"type": "json_object"}
    assert build(text={"format": {"type": "text"}}).response_format is None


def test_what_cannot_be_honoured_is_refused_by_name() -> None:
    assert "not supported" in refused("previous_response_id", previous_response_id="resp_1")
    refused("store", store=True)
    refused("max_output_tokens", limits=RequestLimits(max_tokens=10), max_output_tokens=11)
    refused("input", input=[])
    refused("input", limits=RequestLimits(max_messages=1), instructions="x")
    refused("input", limits=RequestLimits(max_prompt_chars=3))
    refused("tool_choice", tool_choice="required")
    tool = {"type": "function", "name": "f"}
    refused("tools[1].name", tools=[tool, tool])
    assert "'g'" in refused("tool_choice", tools=[tool], tool_choice={"type": "function", "name": "g"})
    refused("text.format.name", text={"format": {"type": "json_schema", "schema": {}}})


def test_a_model_without_tools_or_json_refuses_them() -> None:
    bare = Capabilities()
    refused("tools", bare, tools=[{"type": "function", "name": "f"}])
    call = {"type": "function_call", "call_id": "a", "name": "f", "arguments": "{}"}
    refused("input[0]", bare, input=[call])
    refused("text.format", bare, text={"format": {"type": "json_object"}})
    assert build(bare).messages == [{"role": "user", "content": "hello"}]


LOGPROBS = ["message.output_text.logprobs"]


def test_logprobs_are_asked_with_include_and_top_logprobs_counts_alternatives() -> None:
    request = build(include=LOGPROBS, top_logprobs=3)
    assert (request.logprobs, request.top_logprobs) == (True, 3)
    assert (build(include=LOGPROBS).logprobs, build(include=LOGPROBS).top_logprobs) == (True, None)
    assert build(include=[]).logprobs is False
    assert "include" in refused("top_logprobs", top_logprobs=2)  # as chat's needs `logprobs`
    assert "not supported" in refused("include[1]", include=[*LOGPROBS, "reasoning.encrypted_content"])


def test_a_model_without_logprobs_or_tool_choice_refuses_them_whatever_else_is_sent() -> None:
    bare = Capabilities()
    refused("include", bare, include=LOGPROBS)
    refused("top_logprobs", bare, top_logprobs=2)  # the capability is named before the companion
    refused("tool_choice", bare, tool_choice="required")
    refused("parallel_tool_calls", bare, parallel_tool_calls=True)
    # `transformers serve`: tools as the model sees fit, but no constraint on the calls.
    calls_only = Capabilities(tools=True)
    tools = [{"type": "function", "name": "f"}]
    assert build(calls_only, tools=tools, tool_choice="auto", parallel_tool_calls=True).tools
    refused("tool_choice", calls_only, tools=tools, tool_choice="required")
    refused("tool_choice", calls_only, tools=tools, tool_choice={"type": "function", "name": "f"})
    refused("parallel_tool_calls", calls_only, tools=tools, parallel_tool_calls=False)
