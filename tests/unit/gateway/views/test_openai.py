"""The OpenAI-shaped views (gateway/views/openai.py) describe what the real /v1 routes answer."""

from __future__ import annotations

import asyncio

from gpucloud.gateway.views.openai import (
    ChatCompletion,
    EmbeddingList,
    JobList,
    JobView,
    ModelCard,
    ModelList,
    TextCompletion,
)
from tests.unit.gateway.conftest import MODEL, LiveApp


async def test_v1_responses_match_their_views(live: LiveApp) -> None:
    _, secret = await live.new_key()
    bearer = {"Authorization": f"Bearer {secret}"}
    get = live.client.get
    post = live.client.post
    ModelList.model_validate((await get("/v1/models", headers=bearer)).json())
    ModelCard.model_validate((await get(f"/v1/models/{MODEL}", headers=bearer)).json())
    chat = {"model": MODEL, "messages": [{"role": "user", "content": "x"}], "max_tokens": 2, "logprobs": True}
    ChatCompletion.model_validate((await post("/v1/chat/completions", json=chat, headers=bearer)).json())
    text = {"model": MODEL, "prompt": "x", "max_tokens": 2}
    TextCompletion.model_validate((await post("/v1/completions", json=text, headers=bearer)).json())
    vectors = {"model": MODEL, "input": "x", "encoding_format": "base64"}
    EmbeddingList.model_validate((await post("/v1/embeddings", json=vectors, headers=bearer)).json())
    job = (await post("/v1/jobs", json={"endpoint": "completions"} | text, headers=bearer)).json()
    JobView.model_validate(job)
    for _ in range(200):
        view = (await get(f"/v1/jobs/{job['id']}", headers=bearer)).json()
        if view["status"] == "completed":
            break
        await asyncio.sleep(0.05)
    JobView.model_validate(view)
    assert view["status"] == "completed"
    JobList.model_validate((await get("/v1/jobs", headers=bearer)).json())
