"""The OpenAI routes (gateway/routes/openai.py) on the real app, through the official SDK: models,
chat, completions and embeddings against the embedded simulated model."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2
import openai
import pytest

from tests.unit.gateway.conftest import MODEL, LiveApp


@pytest.fixture
async def client(live: LiveApp) -> AsyncIterator[openai.AsyncOpenAI]:
    _, secret = await live.new_key()
    # The SDK's own HTTP client type, on the app in process.
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=live.app)) as http:
        yield openai.AsyncOpenAI(
            base_url="http://127.0.0.1/v1", api_key=secret, http_client=http, max_retries=0
        )


async def test_models_are_listed_and_looked_up(client: openai.AsyncOpenAI) -> None:
    models = await client.models.list()
    assert MODEL in [m.id for m in models.data]
    assert (await client.models.retrieve(MODEL)).id == MODEL
    with pytest.raises(openai.NotFoundError):
        await client.models.retrieve("no-such-model")


async def test_chat_completion_counts_its_tokens(client: openai.AsyncOpenAI) -> None:
    chat = await client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hello"}], max_tokens=4, seed=1, n=2
    )
    assert len(chat.choices) == 2
    assert chat.usage is not None
    assert chat.usage.completion_tokens == 8
    assert all(choice.finish_reason == "length" for choice in chat.choices)


async def test_a_stream_ends_with_usage(client: openai.AsyncOpenAI) -> None:
    stream = await client.completions.create(
        model=MODEL, prompt="Once", max_tokens=3, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 3
    assert "".join(c.choices[0].text for c in chunks if c.choices)


async def test_embeddings_have_the_dimensions_asked_for(client: openai.AsyncOpenAI) -> None:
    result = await client.embeddings.create(model=MODEL, input=["a", "b"], dimensions=4)
    assert [len(item.embedding) for item in result.data] == [4, 4]


async def test_bad_requests_name_the_parameter(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(model=MODEL, messages=[], max_tokens=1)
    assert caught.value.param == "messages"
    with pytest.raises(openai.NotFoundError):
        await client.chat.completions.create(model="missing", messages=[{"role": "user", "content": "x"}])
