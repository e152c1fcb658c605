"""A Responses API request as the engine-neutral chat request every engine already serves.

`instructions` become a leading system message; message items become chat messages; a run of
`function_call` items becomes one assistant message with `tool_calls`, and a
`function_call_output` a `tool` message. Tools, `tool_choice` and `text.format` take their chat
shapes; `include: ["message.output_text.logprobs"]` and `top_logprobs` are chat's `logprobs` and
`top_logprobs`. `previous_response_id` and `store: true` need stored responses, which this platform
does not keep: they are refused with a 400 rather than ignored, as is any other `include` entry.
"""

from __future__ import annotations

from typing import Any

from gpucloud.engines.capabilities import Capabilities
from gpucloud.engines.protocol import GenerationRequest
from gpucloud.errors import InvalidRequest
from gpucloud.gateway import noops
from gpucloud.gateway.generation import (
    check_chars,
    check_schema,
    refuse_storage,
    require,
    require_choice,
)
from gpucloud.gateway.responses_api.schemas import (
    FunctionCallItem,
    FunctionCallOutputItem,
    ResponsesRequest,
)
from gpucloud.settings import RequestLimits


def build_response_generation(
    body: ResponsesRequest, limits: RequestLimits, caps: Capabilities
) -> GenerationRequest:
    if body.previous_response_id is not None:
        raise InvalidRequest(
            "previous_response_id is not supported: responses are not stored; send the "
            "conversation in input instead.",
            param="previous_response_id",
            code="unsupported_parameter",
        )
    refuse_storage(body.store, body.metadata)
    noops.check_service_tier(body.service_tier)
    noops.check_truncation(body.truncation)
    noops.check_background(body.background)
    if body.stream_options is not None:
        noops.check_obfuscation(body.stream_options.include_obfuscation, "stream_options.include_obfuscation")
    max_tokens = body.max_output_tokens
    if max_tokens is not None and max_tokens > limits.max_tokens:
        raise InvalidRequest(
            f"max_output_tokens must be at most {limits.max_tokens}.", param="max_output_tokens"
        )
    messages = chat_messages(body, caps)
    if len(messages) > limits.max_messages:
        raise InvalidRequest(f"input may hold at most {limits.max_messages} items.", param="input")
    check_chars(sum(len(str(m.get("content") or "")) for m in messages), "input", limits)
    logprobs = wants_logprobs(body, caps)
    return GenerationRequest(
        kind="chat",
        model=body.model,
        messages=messages,
        max_tokens=max_tokens,
        temperature=body.temperature,
        top_p=body.top_p,
        user=body.safety_identifier if body.safety_identifier is not None else body.user,
        tools=tools_of(body, caps),
        tool_choice=choice_of(body),
        parallel_tool_calls=body.parallel_tool_calls,
        response_format=format_of(body, caps),
        logprobs=logprobs,
        top_logprobs=(body.top_logprobs or None) if logprobs else None,
    )


LOGPROBS = "message.output_text.logprobs"


def wants_logprobs(body: ResponsesRequest, caps: Capabilities) -> bool:
    """Whether the answer's text carries logprobs: `include` asks for them, `top_logprobs` says
    how many alternatives each token lists (it needs them asked for, as chat's needs `logprobs`)."""
    for i, entry in enumerate(body.include or []):
        if entry != LOGPROBS:
            raise InvalidRequest(
                f"include {entry!r} is not supported: only {LOGPROBS!r} is.",
                param=f"include[{i}]",
                code="unsupported_parameter",
            )
    wanted = LOGPROBS in (body.include or [])
    require(caps.logprobs or not wanted, "include")
    require(caps.logprobs or not body.top_logprobs, "top_logprobs")
    if body.top_logprobs and not wanted:
        raise InvalidRequest(f"top_logprobs needs include to list {LOGPROBS!r}.", param="top_logprobs")
    return wanted


def chat_messages(body: ResponsesRequest, caps: Capabilities) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if body.instructions:
        messages.append({"role": "system", "content": body.instructions})
    if isinstance(body.input, str):
        return [*messages, {"role": "user", "content": body.input}]
    if not body.input:
        raise InvalidRequest("input must not be empty.", param="input")
    for i, item in enumerate(body.input):
        if isinstance(item, FunctionCallItem):
            require(caps.tools, f"input[{i}]")
            call = {
                "id": item.call_id,
                "type": "function",
                "function": {"name": item.name, "arguments": item.arguments},
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant" and "tool_calls" in last:
                last["tool_calls"].append(call)  # parallel calls share one assistant turn
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif isinstance(item, FunctionCallOutputItem):
            require(caps.tools, f"input[{i}]")
            messages.append({"role": "tool", "tool_call_id": item.call_id, "content": item.output})
        else:
            messages.append({"role": item.role, "content": item.text()})
    return messages


def tools_of(body: ResponsesRequest, caps: Capabilities) -> list[dict[str, Any]] | None:
    if not body.tools:
        # As for chat: a model without tools refuses these whatever their value.
        require(caps.tools or body.tool_choice is None, "tool_choice")
        require(caps.tools or body.parallel_tool_calls is None, "parallel_tool_calls")
        if body.tool_choice not in (None, "none"):
            raise InvalidRequest("tool_choice needs tools.", param="tool_choice")
        return None
    require(caps.tools, "tools")
    require_choice(caps, body.tool_choice not in (None, "auto"), body.parallel_tool_calls)
    names = [tool.name for tool in body.tools]
    for i, tool in enumerate(body.tools):
        check_schema(tool.parameters, f"tools[{i}].parameters")
        if names.index(tool.name) != i:
            raise InvalidRequest("Tool names must be unique.", param=f"tools[{i}].name")
    choice = body.tool_choice
    if choice is not None and not isinstance(choice, str) and choice.name not in names:
        raise InvalidRequest(
            f"tool_choice names '{choice.name}', which is not in tools.", param="tool_choice"
        )
    return [
        {"type": "function", "function": tool.model_dump(exclude={"type"}, exclude_none=True)}
        for tool in body.tools
    ]


def choice_of(body: ResponsesRequest) -> str | dict[str, Any] | None:
    choice = body.tool_choice
    if choice is None or isinstance(choice, str):
        return choice
    return {"type": "function", "function": {"name": choice.name}}


def format_of(body: ResponsesRequest, caps: Capabilities) -> dict[str, Any] | None:
    fmt = body.text.format if body.text is not None else None
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        require(caps.json_object, "text.format")
        return {"type": "json_object"}
    require(caps.json_schema, "text.format")
    if fmt.name is None:
        raise InvalidRequest("A json_schema format needs a name.", param="text.format.name")
    check_schema(fmt.schema_, "text.format.schema")
    spec = {"name": fmt.name, "schema": fmt.schema_, "strict": fmt.strict, "description": fmt.description}
    return {"type": "json_schema", "json_schema": {k: v for k, v in spec.items() if v is not None}}
