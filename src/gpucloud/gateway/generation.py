"""From a validated OpenAI body to the engine-neutral `GenerationRequest`.

`build_generation` applies what pydantic cannot: bounds from settings (`RequestLimits`), rules
that tie fields together (a named `tool_choice` must be a declared tool, `top_logprobs` needs
`logprobs`), JSON schemas that must be schemas, and the serving engine's `Capabilities`: an
optional parameter the engine cannot honour is refused with a 400 naming it, never dropped.
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from gpucloud.engines.capabilities import Capabilities
from gpucloud.engines.protocol import GenerationRequest
from gpucloud.errors import InvalidRequest
from gpucloud.gateway import noops
from gpucloud.gateway.schemas import ChatCompletionRequest, CompletionRequest, Tool
from gpucloud.settings import RequestLimits

_LOGIT_BIAS_MAX = 100.0


def build_generation(
    body: ChatCompletionRequest | CompletionRequest, limits: RequestLimits, capabilities: Capabilities
) -> GenerationRequest:
    """The engine-neutral request, or InvalidRequest naming the offending parameter."""
    common = _common(body, limits, capabilities)
    if isinstance(body, ChatCompletionRequest):
        return _chat(body, limits, capabilities, common)
    return _completion(body, limits, capabilities, common)


def _common(
    body: ChatCompletionRequest | CompletionRequest, limits: RequestLimits, caps: Capabilities
) -> dict[str, Any]:
    n = body.n or 1
    stop = body.stop_list()
    max_tokens = body.token_limit()
    if n > limits.max_n:
        raise InvalidRequest(f"n must be at most {limits.max_n}.", param="n")
    if len(stop) > limits.max_stop:
        raise InvalidRequest(f"stop may list at most {limits.max_stop} sequences.", param="stop")
    if any(not s for s in stop):
        raise InvalidRequest("stop sequences must not be empty.", param="stop")
    if max_tokens is not None and max_tokens > limits.max_tokens:
        param = (
            "max_completion_tokens"
            if isinstance(body, ChatCompletionRequest) and body.max_completion_tokens
            else "max_tokens"
        )
        raise InvalidRequest(f"{param} must be at most {limits.max_tokens}.", param=param)
    require(caps.seed or body.seed is None, "seed")
    require(caps.penalties or not body.presence_penalty, "presence_penalty")
    require(caps.penalties or not body.frequency_penalty, "frequency_penalty")
    require(caps.logit_bias or not body.logit_bias, "logit_bias")
    if body.stream_options is not None:
        noops.check_obfuscation(body.stream_options.include_obfuscation, "stream_options.include_obfuscation")
    return {
        "model": body.model,
        "max_tokens": max_tokens,
        "stop": tuple(stop),
        "n": n,
        "temperature": body.temperature,
        "top_p": body.top_p,
        "seed": body.seed,
        "user": _end_user(body),
        "presence_penalty": body.presence_penalty or None,
        "frequency_penalty": body.frequency_penalty or None,
        "logit_bias": check_logit_bias(body.logit_bias),
    }


def _end_user(body: ChatCompletionRequest | CompletionRequest) -> str | None:
    if isinstance(body, ChatCompletionRequest) and body.safety_identifier is not None:
        return body.safety_identifier  # OpenAI's successor of `user`
    return body.user


def require(supported: bool, param: str) -> None:
    """400 naming `param` when the model's engine does not honour it."""
    if not supported:
        raise InvalidRequest(
            f"{param} is not supported by this model.", param=param, code="unsupported_parameter"
        )


def check_logit_bias(bias: dict[str, float] | None) -> dict[str, float] | None:
    if not bias:
        return None
    for token, value in bias.items():
        if not token.isdigit():
            raise InvalidRequest(
                f"logit_bias keys must be token ids (whole numbers), got {token!r}.", param="logit_bias"
            )
        if not -_LOGIT_BIAS_MAX <= value <= _LOGIT_BIAS_MAX:
            raise InvalidRequest("logit_bias values must be between -100 and 100.", param="logit_bias")
    return {str(int(token)): float(value) for token, value in bias.items()}


def _chat(
    body: ChatCompletionRequest, limits: RequestLimits, caps: Capabilities, common: dict[str, Any]
) -> GenerationRequest:
    if len(body.messages) > limits.max_messages:
        raise InvalidRequest(f"messages may hold at most {limits.max_messages} items.", param="messages")
    refuse_storage(body.store, body.metadata)
    noops.check_modalities(body.modalities)
    noops.check_service_tier(body.service_tier)
    for i, message in enumerate(body.messages):
        if message.tool_calls:
            require(caps.tools, f"messages[{i}].tool_calls")
        if message.role == "tool" and not message.tool_call_id:
            raise InvalidRequest(
                "A tool message needs the tool_call_id it answers.", param=f"messages[{i}].tool_call_id"
            )
    check_chars(sum(len(m.text()) for m in body.messages), "messages", limits)
    # What the engine lacks is said first: on such a model no companion parameter would help.
    require(caps.logprobs or not body.logprobs, "logprobs")
    require(caps.logprobs or not body.top_logprobs, "top_logprobs")
    if body.top_logprobs and not body.logprobs:
        raise InvalidRequest("top_logprobs needs logprobs set to true.", param="top_logprobs")
    response_format = body.response_format.to_dict() if body.response_format is not None else None
    check_response_format(response_format, caps, "response_format")
    tools = check_tools(body.tools, body.tool_choice, body.parallel_tool_calls, caps)
    return GenerationRequest(
        kind="chat",
        messages=body.message_dicts(),
        tools=tools,
        tool_choice=choice_value(body),
        parallel_tool_calls=body.parallel_tool_calls,
        response_format=response_format,
        logprobs=bool(body.logprobs),
        top_logprobs=body.top_logprobs or None,
        **common,
    )


def choice_value(body: ChatCompletionRequest) -> str | dict[str, Any] | None:
    if body.tool_choice is None or isinstance(body.tool_choice, str):
        return body.tool_choice
    return body.tool_choice.model_dump()


def refuse_storage(store: bool | None, metadata: dict[str, str] | None) -> None:
    """Answers are not kept for later retrieval here, so asking for that is refused, not ignored."""
    if store:
        raise InvalidRequest(
            "store is not supported: answers are not kept for later retrieval.",
            param="store",
            code="unsupported_parameter",
        )
    if metadata:
        raise InvalidRequest(
            "metadata is only kept with stored answers, and store is not supported.",
            param="metadata",
            code="unsupported_parameter",
        )


def check_response_format(fmt: dict[str, Any] | None, caps: Capabilities, param: str) -> None:
    kind = (fmt or {}).get("type", "text")
    if kind == "json_object":
        require(caps.json_object, param)
    elif kind == "json_schema":
        require(caps.json_schema, param)
        spec = (fmt or {}).get("json_schema")
        if spec is None:
            raise InvalidRequest("A json_schema response format needs json_schema.", param=param)
        check_schema(spec.get("schema"), f"{param}.json_schema.schema")


def check_schema(schema: Any, param: str) -> None:
    if schema is None:
        return
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise InvalidRequest(f"Invalid JSON schema: {exc.message}", param=param) from None


def check_tools(
    tools: list[Tool] | None, choice: Any, parallel: bool | None, caps: Capabilities
) -> list[dict[str, Any]] | None:
    """The tools as plain dicts, after the schema and tool_choice rules."""
    if not tools:
        # A model without tools refuses tool_choice whatever its value: the engine lacking them
        # is the answer, not the missing `tools` a client could add in vain.
        require(caps.tools or choice is None, "tool_choice")
        require(caps.tools or parallel is None, "parallel_tool_calls")
        if choice is not None and choice != "none":
            raise InvalidRequest("tool_choice needs tools.", param="tool_choice")
        return None
    require(caps.tools, "tools")
    require_choice(caps, choice not in (None, "auto"), parallel)
    names = [tool.function.name for tool in tools]
    for i, tool in enumerate(tools):
        check_schema(tool.function.parameters, f"tools[{i}].function.parameters")
        if names.index(tool.function.name) != i:
            raise InvalidRequest("Tool names must be unique.", param=f"tools[{i}].function.name")
    if choice is not None and not isinstance(choice, str) and choice.function.name not in names:
        raise InvalidRequest(
            f"tool_choice names '{choice.function.name}', which is not in tools.", param="tool_choice"
        )
    return [tool.model_dump(exclude_none=True) for tool in tools]


def require_choice(caps: Capabilities, constrained: bool, parallel: bool | None) -> None:
    """A tool_choice other than "auto", and parallel_tool_calls false, constrain the calls: an
    engine that only lets the model call as it sees fit refuses them. (True is what it does.)"""
    require(caps.tool_choice or not constrained, "tool_choice")
    require(caps.tool_choice or parallel is not False, "parallel_tool_calls")


def _completion(
    body: CompletionRequest, limits: RequestLimits, caps: Capabilities, common: dict[str, Any]
) -> GenerationRequest:
    if isinstance(body.prompt, list):
        if len(body.prompt) != 1:
            raise InvalidRequest("prompt must be a string or a list of exactly one string.", param="prompt")
        prompt = body.prompt[0]
    else:
        prompt = body.prompt
    require(not body.echo, "echo")
    require(not body.suffix, "suffix")
    require(body.best_of is None or body.best_of == (body.n or 1), "best_of")
    require(caps.logprobs or body.logprobs is None, "logprobs")
    check_chars(len(prompt), "prompt", limits)
    wants_logprobs = body.logprobs is not None
    return GenerationRequest(
        kind="completion",
        prompt=prompt,
        logprobs=wants_logprobs,
        top_logprobs=body.logprobs or None,
        **common,
    )


def check_chars(count: int, param: str, limits: RequestLimits) -> None:
    if count > limits.max_prompt_chars:
        raise InvalidRequest(f"The prompt is longer than {limits.max_prompt_chars} characters.", param=param)
