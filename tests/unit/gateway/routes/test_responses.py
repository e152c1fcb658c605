"""`POST /v1/responses` (gateway/routes/responses.py) on the real app through the official SDK:
a plain answer, a streamed one, and what is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2
import openai
import pytest

from tests.unit.gateway.conftest import MODEL, LiveApp


@pytest.fixture
async def client(live: LiveApp) -> AsyncIterator[openai.AsyncOpenAI]:
    _, secret = await live.new_key()
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=live.app)) as http:
        yield openai.AsyncOpenAI(
            base_url="http://127.0.0.1/v1", api_key=secret, http_client=http, max_retries=0
        )


async def test_an_answer_and_its_usage(client: openai.AsyncOpenAI) -> None:
    response = await client.responses.create(
        model=MODEL, input="Hello", instructions="Be brief.", max_output_tokens=4
    )
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.usage is not None
    assert response.usage.output_tokens == 4
    assert response.output_text


async def test_a_stream_is_numbered_and_ends_with_the_response(client: openai.AsyncOpenAI) -> None:
    stream = await client.responses.create(model=MODEL, input="Hello", max_output_tokens=3, stream=True)
    events = [event async for event in stream]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[0].type == "response.created"
    assert events[-1].type == "response.incomplete"
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    done = [e for e in events if e.type == "response.output_text.done"]
    assert done[0].text == deltas


async def test_storage_is_refused(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.create(model=MODEL, input="x", previous_response_id="resp_1")
    assert caught.value.param == "previous_response_id"
    with pytest.raises(openai.BadRequestError):
        await client.responses.create(model=MODEL, input="x", store=True)
