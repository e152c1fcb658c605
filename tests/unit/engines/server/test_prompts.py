"""`PromptCounter` (engines/server/prompts.py) without a local tokenizer: the cl100k estimate, with
the chat framing for chat requests. (Loading a model's own tokenizer imports transformers, which
costs many seconds; the engine-server integration tests cover that path.)"""

from __future__ import annotations

import json
from pathlib import Path

from gpucloud.engines.protocol import GenerationRequest
from gpucloud.engines.server.prompts import PromptCounter
from gpucloud.engines.tokenizer import Tokenizer


def test_without_a_tokenizer_directory_the_estimate_is_used(tmp_path: Path) -> None:
    reference = Tokenizer()
    for directory in (None, tmp_path / "missing"):
        counter = PromptCounter(directory)
        counter.load()
        messages = [{"role": "user", "content": "Hello there, how are you?"}]
        chat = GenerationRequest(kind="chat", model="m", messages=messages)
        assert counter.count(chat) == reference.count_chat(messages)
        text = GenerationRequest(kind="completion", model="m", prompt="Hello there")
        assert counter.count(text) == reference.count("Hello there")
        assert counter.count(GenerationRequest(kind="completion", model="m")) == 0


def test_without_a_tokenizer_the_tools_are_estimated_and_the_vocabulary_unknown() -> None:
    reference = Tokenizer()
    counter = PromptCounter(None)
    counter.load()
    messages = [{"role": "user", "content": "Weather?"}]
    tools = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]
    chat = GenerationRequest(kind="chat", model="m", messages=messages, tools=tools)
    assert counter.count(chat) == reference.count_chat(messages) + reference.count(json.dumps(tools))
    assert counter.vocabulary_size() is None
