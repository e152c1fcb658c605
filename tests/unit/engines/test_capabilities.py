"""Engine capabilities and the request's optional parameters on their way through the queue."""

from __future__ import annotations

from dataclasses import replace

import msgspec
import pytest

from gpucloud.engines.capabilities import Capabilities, capabilities_of_kind
from gpucloud.engines.protocol import GenerationRequest
from gpucloud.gateway.errors import param_of


def test_each_kind_declares_its_capabilities() -> None:
    assert capabilities_of_kind("simulated") == Capabilities.everything()
    assert capabilities_of_kind("openai") == Capabilities.everything()
    assert capabilities_of_kind("transformers") == Capabilities.everything()
    assert capabilities_of_kind("sentence-transformers") == Capabilities()
    assert capabilities_of_kind("no-such-kind") == Capabilities()


def test_the_simulated_engine_can_lack_some() -> None:
    caps = capabilities_of_kind("simulated", {"lacks": "tools, logit_bias"})
    assert not caps.tools
    assert not caps.logit_bias
    assert caps.logprobs
    with pytest.raises(ValueError, match="unknown capabilities nope"):
        capabilities_of_kind("simulated", {"lacks": "tools,nope"})


def test_an_engine_servers_preset_and_options_say_what_it_honours() -> None:
    # `transformers serve` ignores these silently: refused at the gateway instead.
    served = capabilities_of_kind("openai", {"preset": "transformers"})
    assert served == Capabilities(tools=True, seed=True, logit_bias=True)
    assert capabilities_of_kind("openai", {"preset": "vllm"}) == Capabilities.everything()
    attached = capabilities_of_kind("openai", {"url": "http://h:1", "lacks": "logprobs,tool_choice"})
    assert attached == replace(Capabilities.everything(), logprobs=False, tool_choice=False)
    with pytest.raises(ValueError, match="unknown capabilities nope"):
        capabilities_of_kind("openai", {"lacks": "nope"})
    # Only those two kinds may lack something: for the others `lacks` is not theirs to read.
    assert capabilities_of_kind("transformers", {"lacks": "tools"}) == Capabilities.everything()


def test_capabilities_survive_an_announcement() -> None:
    caps = Capabilities(tools=True, seed=True)
    assert Capabilities.from_dict(caps.to_dict() | {"future_flag": True}) == caps
    # A worker from before tool_choice was a flag of its own announced it with tools.
    older = {k: v for k, v in Capabilities.everything().to_dict().items() if k != "tool_choice"}
    assert Capabilities.from_dict(older) == Capabilities.everything()
    assert not Capabilities.from_dict({"seed": True}).tool_choice


def test_optional_parameters_survive_the_queue_and_defaults_stay_out() -> None:
    plain = GenerationRequest(kind="chat", model="m", messages=[{"role": "user", "content": "x"}])
    assert "tools" not in msgspec.to_builtins(plain)
    assert "logprobs" not in msgspec.to_builtins(plain)
    full = GenerationRequest(
        kind="chat",
        model="m",
        messages=[{"role": "user", "content": "x"}],
        tools=[{"type": "function", "function": {"name": "f"}}],
        tool_choice={"type": "function", "function": {"name": "f"}},
        parallel_tool_calls=False,  # false is a choice, not a default: it must be kept
        response_format={"type": "json_schema", "json_schema": {"name": "s", "schema": {"type": "object"}}},
        logprobs=True,
        top_logprobs=3,
        presence_penalty=0.5,
        frequency_penalty=-0.5,
        logit_bias={"12": 3.0},
    )
    assert msgspec.json.decode(msgspec.json.encode(full), type=GenerationRequest) == full
    assert full.json_schema() == {"type": "object"}


@pytest.mark.parametrize(
    ("loc", "param"),
    [
        (("body", "messages", 0, "content", "str"), "messages[0].content"),
        (("body", "prompt", "list[str]", 0), "prompt[0]"),
        (("body", "tool_choice", "NamedToolChoice", "function", "name"), "tool_choice.function.name"),
        (("body", "tools", 1, "function", "parameters"), "tools[1].function.parameters"),
    ],
)
def test_error_params_are_request_paths(loc: tuple[object, ...], param: str) -> None:
    assert param_of(loc) == param
