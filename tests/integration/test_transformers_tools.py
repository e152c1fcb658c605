"""Tool calling on the transformers engine (tiny random Llama made at test time).

Calls are grammar-constrained: with `tool_choice` "required" or a named function every answer is
calls whose names are declared and whose arguments validate against the tool's parameters; with
"auto" an answer is either such calls or text; with "none" it is text; `parallel_tool_calls:
false` allows one call; the tools, and earlier calls, reach the prompt through the chat template.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from transformers import AutoTokenizer

from gpucloud.engines import build_engine
from gpucloud.engines.protocol import Delta, GenerationRequest
from gpucloud.engines.transformers import TransformersEngine
from gpucloud.engines.transformers.prompts import PromptEncoder
from tests.tiny_models import make_tiny_llama

WEATHER = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 6},
        "days": {"type": "integer", "minimum": 1, "maximum": 7},
    },
    "required": ["city", "days"],
    "additionalProperties": False,
}
CLOCK = {
    "type": "object",
    "properties": {"zone": {"enum": ["utc", "cet"]}},
    "required": ["zone"],
    "additionalProperties": False,
}
TOOLS = [
    {"type": "function", "function": {"name": "weather", "parameters": WEATHER}},
    {"type": "function", "function": {"name": "clock", "parameters": CLOCK}},
]
SCHEMAS = {"weather": WEATHER, "clock": CLOCK}
MESSAGES = [{"role": "user", "content": "What is the weather in Oslo?"}]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # The template renders the tools' JSON, a few hundred tokens of this small vocabulary: room
    # for them and an answer, beyond the default 512 positions (rotary: no weights to add).
    return make_tiny_llama(tmp_path_factory.mktemp("models") / "tiny", max_position_embeddings=2048)


@pytest.fixture(scope="module")
async def tiny(model_dir: Path) -> AsyncIterator[TransformersEngine]:
    engine = build_engine("transformers", "tiny", {"max_batch_size": "8"}, models_dir=model_dir.parent)
    assert isinstance(engine, TransformersEngine)
    await engine.start()
    yield engine
    await engine.stop()


def chat(**fields: Any) -> GenerationRequest:
    fields.setdefault("max_tokens", 150)
    return GenerationRequest(kind="chat", model="m", messages=MESSAGES, tools=TOOLS, **fields)


async def run(engine: TransformersEngine, request: GenerationRequest) -> list[Delta]:
    return [delta async for delta in engine.generate(request, 0)]


def calls_of(deltas: list[Delta]) -> list[tuple[str, dict[str, Any]]]:
    assert deltas[-1].finish_reason == "tool_calls", deltas
    calls = [call for d in deltas for call in d.tool_calls]
    out = []
    for call in calls:
        assert call.id
        assert call.id.startswith("call_")
        arguments = json.loads(call.arguments)
        jsonschema.validate(arguments, SCHEMAS[call.name or ""])
        out.append((call.name or "", arguments))
    return out


async def test_required_calls_validate(tiny: TransformersEngine) -> None:
    for seed in range(3):
        deltas = await run(tiny, chat(tool_choice="required", seed=seed))
        assert calls_of(deltas)
        assert sum(d.tokens for d in deltas) > 5


async def test_a_named_function_and_no_parallel_calls(tiny: TransformersEngine) -> None:
    named = {"type": "function", "function": {"name": "clock"}}
    for seed in range(3):
        calls = calls_of(await run(tiny, chat(tool_choice=named, seed=seed)))
        assert [name for name, _ in calls] == ["clock"]
    single = calls_of(await run(tiny, chat(tool_choice="required", parallel_tool_calls=False, seed=4)))
    assert len(single) == 1


async def test_auto_answers_calls_or_text_and_none_answers_text(tiny: TransformersEngine) -> None:
    for seed in range(4):
        deltas = await run(tiny, chat(tool_choice="auto", seed=seed))
        if deltas[-1].finish_reason == "tool_calls":
            calls_of(deltas)
        else:
            assert not any(d.tool_calls for d in deltas)
            assert not "".join(d.text for d in deltas).startswith("[")
    text = await run(tiny, chat(tool_choice="none", seed=1, max_tokens=10))
    assert not any(d.tool_calls for d in text)


async def test_the_tools_are_in_the_prompt(tiny: TransformersEngine, model_dir: Path) -> None:
    """The chat template renders each tool's JSON (as real templates do), and the engine's prompt
    is that rendering: it counts the tools' tokens on top of the conversation's."""
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    encoder = PromptEncoder(tokenizer)
    plain_text, tools_text = encoder.render_chat(MESSAGES), encoder.render_chat(MESSAGES, TOOLS)
    for tool in TOOLS:
        assert json.dumps(tool, ensure_ascii=False) in tools_text  # name, parameters, all of it
    assert "clock" not in plain_text
    section = tools_text.removesuffix(plain_text)
    assert section != tools_text  # the tools come first, the conversation as before
    plain = GenerationRequest(kind="chat", model="m", messages=MESSAGES)
    section_tokens = len(tokenizer(section, add_special_tokens=False)["input_ids"])
    assert section_tokens > 0
    assert tiny.count_prompt_tokens(chat()) == tiny.count_prompt_tokens(plain) + section_tokens


async def test_earlier_calls_are_in_the_prompt(model_dir: Path) -> None:
    """An assistant's calls in the history reach the model too, each with its arguments."""
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    call = {"id": "call_1", "type": "function", "function": {"name": "clock", "arguments": '{"zone": "utc"}'}}
    history: list[dict[str, Any]] = [
        *MESSAGES,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "12:00"},
    ]
    text = PromptEncoder(tokenizer).render_chat(history, TOOLS)
    assert json.dumps(call["function"]) in text
    assert text.index('"clock"') < text.index("12:00")
