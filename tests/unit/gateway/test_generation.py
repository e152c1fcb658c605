"""A chat or completion body against the serving engine's capabilities (gateway/generation.py):
what the engine lacks is refused by name, before any rule that ties parameters together."""

from __future__ import annotations

from typing import Any

import pytest

from gpucloud.engines.capabilities import Capabilities
from gpucloud.errors import InvalidRequest
from gpucloud.gateway.generation import build_generation
from gpucloud.gateway.schemas import ChatCompletionRequest, CompletionRequest
from gpucloud.settings import RequestLimits

TOOLS = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
CALLS_ONLY = Capabilities(tools=True)  # `transformers serve`: tools, but no say in the calls


def chat(caps: Capabilities, **fields: Any) -> Any:
    body = ChatCompletionRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": "x"}]} | fields
    )
    return build_generation(body, RequestLimits(), caps)


def refusal(caps: Capabilities, **fields: Any) -> tuple[str | None, str | None]:
    with pytest.raises(InvalidRequest) as caught:
        chat(caps, **fields)
    return caught.value.param, caught.value.code


def test_the_missing_capability_is_named_before_a_missing_companion() -> None:
    bare = Capabilities()
    assert refusal(bare, top_logprobs=2) == ("top_logprobs", "unsupported_parameter")
    assert refusal(bare, tool_choice="required") == ("tool_choice", "unsupported_parameter")
    # With the capability, the companion rules speak.
    assert refusal(Capabilities.everything(), top_logprobs=2) == ("top_logprobs", None)
    assert refusal(Capabilities.everything(), tool_choice="required") == ("tool_choice", None)


def test_tools_without_a_say_in_the_calls() -> None:
    assert chat(CALLS_ONLY, tools=TOOLS, tool_choice="auto", parallel_tool_calls=True).tools
    assert chat(CALLS_ONLY, tool_choice="none").tools is None  # nothing to call: nothing to honour
    assert refusal(CALLS_ONLY, tools=TOOLS, tool_choice="none") == ("tool_choice", "unsupported_parameter")
    named = {"type": "function", "function": {"name": "f"}}
    assert refusal(CALLS_ONLY, tools=TOOLS, tool_choice=named) == ("tool_choice", "unsupported_parameter")
    assert refusal(CALLS_ONLY, tools=TOOLS, parallel_tool_calls=False) == (
        "parallel_tool_calls",
        "unsupported_parameter",
    )


@pytest.mark.parametrize(
    ("fields", "param"), [({"echo": True}, "echo"), ({"suffix": "."}, "suffix"), ({"best_of": 2}, "best_of")]
)
def test_what_no_engine_here_does_for_completions_is_unsupported(fields: dict[str, Any], param: str) -> None:
    body = CompletionRequest.model_validate({"model": "m", "prompt": "x"} | fields)
    with pytest.raises(InvalidRequest) as caught:
        build_generation(body, RequestLimits(), Capabilities.everything())
    assert (caught.value.param, caught.value.code) == (param, "unsupported_parameter")
    same = CompletionRequest.model_validate({"model": "m", "prompt": "x", "n": 2, "best_of": 2})
    assert build_generation(same, RequestLimits(), Capabilities.everything()).n == 2
