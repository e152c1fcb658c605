"""The OpenAI request bodies (gateway/schemas.py): what they accept, what they refuse by field,
and the values they derive (token limit, stop list, message dicts)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from gpucloud.gateway.schemas import (
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingRequest,
    ResponseFormat,
)

USER = {"role": "user", "content": "hi"}


def chat(**fields: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate({"model": "m", "messages": [USER]} | fields)


def test_max_completion_tokens_wins_over_max_tokens() -> None:
    assert chat().token_limit() is None
    assert chat(max_tokens=5).token_limit() == 5
    assert chat(max_tokens=5, max_completion_tokens=7).token_limit() == 7
    assert CompletionRequest(model="m", prompt="x").token_limit() == 16  # OpenAI's default there


def test_stop_is_always_a_list() -> None:
    assert chat().stop_list() == []
    assert chat(stop="END").stop_list() == ["END"]
    assert chat(stop=["a", "b"]).stop_list() == ["a", "b"]


def test_messages_keep_only_what_was_sent() -> None:
    parts = {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
    request = chat(
        messages=[
            parts,
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
            },
        ]
    )
    assert request.messages[0].text() == "ab"
    assert request.messages[1].text() == ""
    dicts = request.message_dicts()
    assert "content" not in dicts[1]  # None fields are left out
    assert dicts[1]["tool_calls"][0]["function"]["name"] == "f"


def test_response_format_keeps_the_schema_alias() -> None:
    fmt = ResponseFormat.model_validate(
        {"type": "json_schema", "json_schema": {"name": "s", "schema": {"type": "object"}}}
    )
    assert fmt.to_dict() == {
        "type": "json_schema",
        "json_schema": {"name": "s", "schema": {"type": "object"}},
    }


@pytest.mark.parametrize(
    ("fields", "loc"),
    [
        ({"messages": []}, "messages"),
        ({"model": "a\x00b"}, "model"),
        ({"user": "u\x07"}, "user"),
        ({"temperature": 3}, "temperature"),
        ({"top_logprobs": 21}, "top_logprobs"),
        ({"n": 0}, "n"),
        ({"tools": [{"type": "function", "function": {"name": "has space"}}]}, "tools"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_chat_bodies_name_the_field(fields: dict[str, Any], loc: str) -> None:
    with pytest.raises(ValidationError) as caught:
        chat(**fields)
    assert caught.value.errors()[0]["loc"][0] == loc


def test_embedding_requests() -> None:
    request = EmbeddingRequest(model="m", input=["a"])
    assert (request.encoding_format, request.dimensions) == ("float", None)
    with pytest.raises(ValidationError):
        EmbeddingRequest.model_validate({"model": "m", "input": "a", "encoding_format": "binary"})
    with pytest.raises(ValidationError):
        EmbeddingRequest(model="m", input="a", dimensions=0)
