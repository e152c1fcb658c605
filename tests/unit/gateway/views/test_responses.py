"""The Responses API views (gateway/views/responses.py) describe what `POST /v1/responses` answers,
for a text answer and for a tool call."""

from __future__ import annotations

from gpucloud.gateway.views.responses import FunctionCallOutput, MessageOutput, ResponseObject
from tests.unit.gateway.conftest import MODEL, LiveApp


async def test_response_objects_match_their_view(live: LiveApp) -> None:
    _, secret = await live.new_key()
    bearer = {"Authorization": f"Bearer {secret}"}
    text = await live.client.post(
        "/v1/responses", json={"model": MODEL, "input": "hi", "max_output_tokens": 3}, headers=bearer
    )
    answer = ResponseObject.model_validate(text.json())
    assert isinstance(answer.output[0], MessageOutput)
    tool = {
        "type": "function",
        "name": "weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
    called = await live.client.post(
        "/v1/responses",
        json={"model": MODEL, "input": "weather?", "tools": [tool], "tool_choice": "required"},
        headers=bearer,
    )
    call = ResponseObject.model_validate(called.json())
    assert any(isinstance(item, FunctionCallOutput) for item in call.output)
