"""`POST /v1/responses` through the `openai` SDK (`client.responses.create`) on the live servers.

Plain and streamed answers (the typed event sequence, text reassembled from deltas equal to the
plain answer), a function tool (arguments valid for its parameters, streamed and not) and its
output sent back, `text.format` json_schema, the token limit (status incomplete), usage billed in
the ledger like chat, and the stateful options refused with a 400 naming them.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import jsonschema
import openai
import pytest
from openai.types.responses import Response, ResponseStreamEvent

from tests.conftest import MODEL
from tests.integration.test_openai_api import assert_sdk_error
from tests.support import Server

WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1, "maximum": 5}},
    "required": ["city", "days"],
    "additionalProperties": False,
}
TOOL: Any = {"type": "function", "name": "get_weather", "parameters": WEATHER, "strict": True}


@pytest.fixture
def client(user_client: openai.OpenAI) -> openai.OpenAI:
    return user_client


def completed(event: ResponseStreamEvent) -> Response:
    """The response a stream's last event carries (it must be `response.completed`)."""
    assert event.type == "response.completed", event.type
    return event.response


def test_plain_response(client: openai.OpenAI) -> None:
    response = client.responses.create(
        model=MODEL, input="Tell me about rivers.", instructions="Be brief.", temperature=0.7
    )
    assert response.object == "response"
    assert response.id.startswith("resp_")
    assert response.status == "completed"
    assert response.output_text
    (item,) = response.output
    assert item.type == "message"
    assert item.role == "assistant"
    assert item.content[0].type == "output_text"
    usage = response.usage
    assert usage is not None
    assert usage.input_tokens > 0
    assert usage.output_tokens > 0
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert response.instructions == "Be brief."
    assert response.temperature == 0.7


def test_max_output_tokens_makes_an_incomplete_response(client: openai.OpenAI) -> None:
    response = client.responses.create(model=MODEL, input="Go on.", max_output_tokens=5)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.usage is not None
    assert response.usage.output_tokens == 5


def test_streamed_response_event_sequence(client: openai.OpenAI) -> None:
    events = list(
        client.responses.create(model=MODEL, input=[{"role": "user", "content": "Hi"}], stream=True)
    )
    kinds = [event.type for event in events]
    assert kinds[:5] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    text = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    done = next(event for event in events if event.type == "response.output_text.done")
    final = completed(events[-1])
    assert text == done.text == final.output_text
    assert final.status == "completed"
    assert final.usage is not None
    assert final.usage.output_tokens > 0


def test_function_tool(client: openai.OpenAI) -> None:
    response = client.responses.create(
        model=MODEL, input="What is the weather in Oslo?", tools=[TOOL], tool_choice="required"
    )
    calls = [item for item in response.output if item.type == "function_call"]
    assert len(calls) == 1
    call = calls[0]
    assert call.name == "get_weather"
    assert call.call_id.startswith("call_")
    jsonschema.validate(json.loads(call.arguments), WEATHER)
    followup = client.responses.create(
        model=MODEL,
        input=[
            {"role": "user", "content": "What is the weather in Oslo?"},
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
            },
            {"type": "function_call_output", "call_id": call.call_id, "output": '{"temperature": 4}'},
        ],
        tools=[TOOL],
    )
    assert [item.type for item in followup.output] == ["message"]  # auto: it answers after the result
    assert followup.output_text


def test_streamed_function_tool(client: openai.OpenAI) -> None:
    events = list(
        client.responses.create(
            model=MODEL, input="Weather in Rome?", tools=[TOOL], tool_choice="required", stream=True
        )
    )
    kinds = [event.type for event in events]
    added = events[2]
    assert added.type == "response.output_item.added"
    assert added.item.type == "function_call"
    assert "response.function_call_arguments.delta" in kinds
    arguments = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert done.arguments == arguments
    jsonschema.validate(json.loads(arguments), WEATHER)
    assert kinds[-2:] == ["response.output_item.done", "response.completed"]
    call = completed(events[-1]).output[0]
    assert call.type == "function_call"
    assert call.arguments == arguments


def test_text_format_json_schema(client: openai.OpenAI) -> None:
    response = client.responses.create(
        model=MODEL,
        input="Describe a forecast.",
        text={"format": {"type": "json_schema", "name": "weather", "schema": WEATHER, "strict": True}},
    )
    jsonschema.validate(json.loads(response.output_text), WEATHER)


def test_a_response_is_a_job_billed_like_chat(server: Server, client: openai.OpenAI, user_key: str) -> None:
    response = client.responses.create(model=MODEL, input="Count me.", max_output_tokens=7)
    job_id = "job_" + response.id.removeprefix("resp_")
    headers = {"Authorization": f"Bearer {user_key}"}
    job = httpx.get(f"{server.v1}/jobs/{job_id}", headers=headers, timeout=10).json()
    assert job["status"] == "completed", job
    assert response.usage is not None
    assert job["result"]["usage"]["completion_tokens"] == response.usage.output_tokens == 7
    assert job["result"]["usage"]["prompt_tokens"] == response.usage.input_tokens


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"previous_response_id": "resp_123"}, "previous_response_id"),
        ({"store": True}, "store"),
        ({"tools": [TOOL], "tool_choice": {"type": "function", "name": "other"}}, "tool_choice"),
        (
            {"text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": 1}}}},
            "text.format.schema",
        ),
        ({"reasoning": {"effort": "high"}}, "reasoning"),
        ({"max_output_tokens": 10**9}, "max_output_tokens"),
    ],
)
def test_refused_options_name_their_parameter(
    client: openai.OpenAI, extra: dict[str, Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=MODEL, input="x", extra_body=extra)
    assert_sdk_error(caught.value, 400, param=param)


def test_an_idempotent_repeat_gets_the_same_response(client: openai.OpenAI) -> None:
    key = {"Idempotency-Key": f"responses-{time.time_ns()}"}
    first = client.responses.create(model=MODEL, input="Once.", extra_headers=key)
    again = client.responses.create(model=MODEL, input="Once.", extra_headers=key)
    assert again.id == first.id
    assert again.output_text == first.output_text
    streamed_key = {"Idempotency-Key": f"responses-stream-{time.time_ns()}"}
    events = list(
        client.responses.create(model=MODEL, input="Twice.", stream=True, extra_headers=streamed_key)
    )
    replayed = list(
        client.responses.create(model=MODEL, input="Twice.", stream=True, extra_headers=streamed_key)
    )
    assert replayed[0].type == "response.created"
    assert replayed[-1].type == "response.completed"
    assert completed(replayed[-1]).output_text == completed(events[-1]).output_text
    assert completed(replayed[-1]).id == completed(events[-1]).id
