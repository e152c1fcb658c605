"""End to end: a tiny transformers model served by a real `gpucloud worker` process behind a
cluster-mode gateway (Redis queue, PostgreSQL), called with the official `openai` SDK.

The worker loads the model from its models directory (`--models-dir`, `--source`) with
`--engine transformers`; what the client is billed must be what the model's own tokenizer counts.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from openai.types.chat import ChatCompletionMessageParam
from transformers import AutoTokenizer, BatchEncoding

from tests.integration.cluster_support import (
    ClusterFactory,
    cluster_factory_fixture,  # noqa: F401 — the fixture `cluster_factory`
    openai_client,
)
from tests.tiny_models import make_tiny_llama

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

MODEL = "tiny-chat"
PROMPT = "Hello! Tell me about the river."
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": PROMPT}]


async def test_chat_through_the_platform_is_billed_with_the_model_tokenizer(
    cluster_factory: ClusterFactory, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    make_tiny_llama(models / "llama" / "tiny")
    cluster = await cluster_factory()
    cluster.server.add_worker(
        "--model", MODEL, "--engine", "transformers", "--source", "llama/tiny",
        "--models-dir", str(models), "--slots", "8", "--engine-option", "max_batch_size=8",
        name="transformers-worker",
    )  # fmt: skip
    await asyncio.to_thread(cluster.server.wait_for_model, MODEL, 60.0)
    tokenizer = AutoTokenizer.from_pretrained(models / "llama" / "tiny")
    templated = tokenizer.apply_chat_template(
        [{"role": "user", "content": PROMPT}], add_generation_prompt=True, tokenize=True, return_dict=True
    )
    assert isinstance(templated, BatchEncoding)  # return_dict=True
    prompt_tokens = len(templated["input_ids"])
    client = openai_client(cluster.server.v1, cluster.server.admin_key, timeout=60)
    try:
        reply = await client.chat.completions.create(
            model=MODEL, messages=MESSAGES, max_tokens=12, temperature=0
        )
        assert reply.choices[0].finish_reason == "length"
        assert reply.usage is not None
        assert reply.usage.prompt_tokens == prompt_tokens
        assert reply.usage.completion_tokens == 12

        stream = await client.chat.completions.create(
            model=MODEL,
            messages=MESSAGES,
            max_tokens=12,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
        texts: list[str] = []
        usage = None
        async for chunk in stream:
            if chunk.choices:
                texts.append(chunk.choices[0].delta.content or "")
            if chunk.usage is not None:
                usage = chunk.usage
        assert "".join(texts) == reply.choices[0].message.content  # greedy: the same answer
        assert usage is not None
        assert (usage.prompt_tokens, usage.completion_tokens) == (prompt_tokens, 12)

        seeded = await client.chat.completions.create(
            model=MODEL, messages=MESSAGES, max_tokens=10, temperature=1.0, seed=5, n=3
        )
        assert len({choice.message.content for choice in seeded.choices}) == 3
        assert seeded.usage is not None
        # A sampled choice may end early at the end-of-sequence token ("stop"); one that ran to
        # max_tokens carries exactly 10 tokens.
        finishes = [choice.finish_reason for choice in seeded.choices]
        assert set(finishes) <= {"length", "stop"}
        assert finishes.count("length") * 10 <= seeded.usage.completion_tokens <= 30
        if "stop" not in finishes:
            assert seeded.usage.completion_tokens == 30
    finally:
        await client.close()
