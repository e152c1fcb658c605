"""Request bodies of `POST /v1/responses` (gateway/responses_api/schemas.py)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from gpucloud.gateway.responses_api.schemas import (
    FunctionCallItem,
    FunctionCallOutputItem,
    MessageItem,
    NamedFunction,
    ResponsesRequest,
)


def test_input_items_are_told_apart_by_their_shape() -> None:
    body = ResponsesRequest.model_validate(
        {
            "model": "m",
            "input": [
                {"role": "user", "content": "hi"},
                {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c1", "output": "42"},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "a"}]},
            ],
            "tool_choice": {"type": "function", "name": "f"},
            "text": {"format": {"type": "json_schema", "name": "s", "schema": {"type": "object"}}},
        }
    )
    assert isinstance(body.input, list)
    assert [type(item) for item in body.input] == [
        MessageItem,
        FunctionCallItem,
        FunctionCallOutputItem,
        MessageItem,
    ]
    assert isinstance(body.tool_choice, NamedFunction)
    assert body.text is not None
    assert body.text.format is not None
    assert body.text.format.schema_ == {"type": "object"}


def test_message_text_joins_its_parts() -> None:
    parts = [
        {"type": "input_text", "text": "one "},
        {"type": "output_text", "text": "two", "annotations": []},
    ]
    assert MessageItem.model_validate({"role": "user", "content": parts}).text() == "one two"
    assert MessageItem(role="system", content="plain").text() == "plain"


@pytest.mark.parametrize(
    "body",
    [
        {"model": "m", "input": "x", "colour": "red"},
        {"model": "", "input": "x"},
        {"model": "m", "input": "x", "temperature": 2.5},
        {"model": "m", "input": "x", "max_output_tokens": 0},
        {"model": "m", "input": "x", "tools": [{"type": "function", "name": "bad name"}]},
        {"model": "m", "input": [{"role": "robot", "content": "x"}]},
        {"model": "m", "input": [{"type": "function_call", "call_id": "", "name": "f", "arguments": ""}]},
        {"model": "m", "input": "x", "priority": "urgent"},
    ],
)
def test_malformed_bodies_are_refused(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ResponsesRequest.model_validate(body)
