"""The transformers engine's logits processing: penalties, `logit_bias`, logprobs and structured
outputs (grammar-constrained decoding), per sequence inside the continuous batch.

On the tiny random Llama of tests/tiny_models.py (byte-level BPE, made at test time): a bias of
+100 makes greedy output that one token and -100 bans the token greedy decoding picks; each
penalty changes a seeded answer; logprobs come one per generated token, the greedy token's equal
to the best alternative's; and sequences with different parameters batched together give exactly
what each gives alone (each row is processed with its own values and counts).
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from transformers import PreTrainedTokenizerBase

from gpucloud.engines import build_engine
from gpucloud.engines.protocol import Delta, EngineError, GenerationRequest
from gpucloud.engines.transformers import TransformersEngine
from tests.tiny_models import make_tiny_llama


@pytest.fixture(scope="module")
async def tiny(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[TransformersEngine]:
    root = tmp_path_factory.mktemp("models")
    make_tiny_llama(root / "tiny")
    engine = build_engine("transformers", "tiny", {"max_batch_size": "8"}, models_dir=root)
    assert isinstance(engine, TransformersEngine)
    await engine.start()
    yield engine
    await engine.stop()


def completion(**fields: Any) -> GenerationRequest:
    fields.setdefault("max_tokens", 12)
    return GenerationRequest(kind="completion", model="m", prompt="Hello world", **fields)


async def run(engine: TransformersEngine, request: GenerationRequest) -> list[Delta]:
    return [delta async for delta in engine.generate(request, 0)]


def text(deltas: list[Delta]) -> str:
    return "".join(d.text for d in deltas)


async def test_the_engine_declares_what_it_honours(tiny: TransformersEngine) -> None:
    caps = tiny.capabilities
    assert (caps.penalties, caps.logit_bias, caps.logprobs, caps.seed) == (True, True, True, True)


def token_ids(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    ids = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(text))
    assert isinstance(ids, list)  # a list of tokens converts to a list of ids
    return ids


async def test_logit_bias_forces_and_bans_tokens(tiny: TransformersEngine) -> None:
    greedy = await run(tiny, completion(temperature=0, logprobs=True))
    first = greedy[0].logprobs[0]
    tokenizer = tiny._require().tokenizer
    chosen = token_ids(tokenizer, first.token)[0]
    banned = await run(tiny, completion(temperature=0, logprobs=True, logit_bias={str(chosen): -100}))
    assert banned[0].logprobs[0].token != first.token
    forced_id = token_ids(tokenizer, " river")[0]
    forced = await run(tiny, completion(temperature=0, logprobs=True, logit_bias={str(forced_id): 100}))
    pieces = [item.token for d in forced for item in d.logprobs]
    assert len(pieces) == 12
    assert set(pieces) == {tokenizer.decode([forced_id])}
    vocabulary = tiny._require().model.config.vocab_size
    with pytest.raises(EngineError) as beyond:  # refused, as engine servers refuse it: not ignored
        await run(tiny, completion(temperature=0, logit_bias={str(vocabulary): 5}))
    assert beyond.value.code == "invalid_logit_bias"
    assert str(vocabulary) in str(beyond.value)


def pieces(deltas: list[Delta]) -> list[str]:
    return [item.token for d in deltas for item in d.logprobs]


@pytest.mark.parametrize("option", [{"presence_penalty": 2.0}, {"frequency_penalty": 2.0}])
async def test_each_penalty_breaks_a_greedy_loop(tiny: TransformersEngine, option: dict[str, float]) -> None:
    plain = pieces(await run(tiny, completion(temperature=0, logprobs=True, max_tokens=20)))
    assert len(set(plain)) < len(plain) / 2  # the random model loops over a few tokens
    penalised = pieces(await run(tiny, completion(temperature=0, logprobs=True, max_tokens=20, **option)))
    assert penalised != plain
    assert len(set(penalised)) > 2 * len(set(plain))
    again = pieces(await run(tiny, completion(temperature=0, logprobs=True, max_tokens=20, **option)))
    assert again == penalised


async def test_a_negative_presence_penalty_makes_the_answer_repeat(tiny: TransformersEngine) -> None:
    plain = pieces(await run(tiny, completion(temperature=0, logprobs=True, max_tokens=20)))
    eager = pieces(
        await run(tiny, completion(temperature=0, logprobs=True, max_tokens=20, presence_penalty=-2.0))
    )
    assert len(set(eager)) < len(set(plain))


async def test_penalties_change_a_seeded_sampled_answer(tiny: TransformersEngine) -> None:
    # Sampling over a near-uniform distribution: the bias makes one token likely, and the
    # frequency penalty takes that back once it appeared.
    bias = {"100": 8.0}
    plain = text(await run(tiny, completion(seed=5, max_tokens=30, logit_bias=bias)))
    assert text(await run(tiny, completion(seed=5, max_tokens=30, logit_bias=bias))) == plain
    penalised = text(
        await run(tiny, completion(seed=5, max_tokens=30, logit_bias=bias, frequency_penalty=2.0))
    )
    assert penalised != plain


async def test_logprobs_come_one_per_token_from_the_same_step(tiny: TransformersEngine) -> None:
    deltas = await run(tiny, completion(temperature=0, logprobs=True, top_logprobs=3))
    items = [item for d in deltas for item in d.logprobs]
    assert len(items) == sum(d.tokens for d in deltas) == 12
    for item in items:
        assert item.logprob <= 0
        assert len(item.top) == 3
        values = [lp for _, lp, _ in item.top]
        assert values == sorted(values, reverse=True)
        assert math.isclose(item.logprob, values[0], abs_tol=1e-5)  # greedy took the best one
        assert item.token == item.top[0][0]
    assert not any(d.logprobs for d in await run(tiny, completion(temperature=0)))


async def test_mixed_parameters_in_one_batch_match_lone_runs(tiny: TransformersEngine) -> None:
    requests = [
        completion(seed=1, max_tokens=16),
        completion(seed=1, max_tokens=16, frequency_penalty=1.5),
        completion(seed=2, max_tokens=16, presence_penalty=-1.0),
        completion(seed=3, max_tokens=16, logit_bias={"100": 5.0}),
        completion(temperature=0, max_tokens=16, logprobs=True, top_logprobs=2),
        completion(temperature=0, max_tokens=16),
    ]
    alone = [text(await run(tiny, r)) for r in requests]
    before = tiny.stats.max_batch_seen
    together = await asyncio.gather(*(run(tiny, r) for r in requests))
    assert [text(d) for d in together] == alone
    assert tiny.stats.max_batch_seen >= max(before, 2)


# structured outputs ---------------------------------------------------------------------------

SCHEMA = {
    "type": "object",
    "properties": {
        "color": {"enum": ["red", "green", "blue"]},
        "n": {"type": "integer", "minimum": 0, "maximum": 100},
        "ok": {"type": "boolean"},
        "name": {"type": "string", "maxLength": 8},
        "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}, "maxItems": 2},
    },
    "required": ["color", "n", "ok", "name", "tags"],
    "additionalProperties": False,
    "$defs": {"tag": {"type": "string", "enum": ["a", "b"]}},
}
JSON_SCHEMA = {"type": "json_schema", "json_schema": {"name": "thing", "schema": SCHEMA, "strict": True}}
MESSAGES = [{"role": "user", "content": "Describe a thing."}]


def chat(**fields: Any) -> GenerationRequest:
    return GenerationRequest(kind="chat", model="m", messages=MESSAGES, **fields)


async def test_half_structured_batch_validates_and_runs_together(tmp_path: Path) -> None:
    make_tiny_llama(tmp_path / "tiny")
    engine = build_engine("transformers", "tiny", {"max_batch_size": "8"}, models_dir=tmp_path)
    assert isinstance(engine, TransformersEngine)
    await engine.start()
    try:
        await run(engine, chat(response_format={"type": "json_object"}, max_tokens=2))  # wraps the tokenizer
        requests = [
            chat(seed=i, max_tokens=120, response_format=JSON_SCHEMA)
            if i % 2 == 0
            else chat(seed=i, max_tokens=120)
            for i in range(8)
        ]
        answers = await asyncio.gather(*(run(engine, r) for r in requests))
        for i, deltas in enumerate(answers):
            if i % 2 == 0:
                assert deltas[-1].finish_reason == "stop", text(deltas)
                jsonschema.validate(json.loads(text(deltas)), SCHEMA)
            else:  # free text, sampled over the whole vocabulary: it ends by EOS or at the limit
                assert deltas[-1].finish_reason in ("stop", "length")
        assert engine.stats.max_batch_seen == 8  # the eight ran in one batch
        structured = [text(d) for i, d in enumerate(answers) if i % 2 == 0]
        assert len(set(structured)) > 1  # seeds still matter inside the grammar
    finally:
        await engine.stop()


async def test_json_object_answers_parse(tiny: TransformersEngine) -> None:
    for seed in range(3):
        deltas = await run(tiny, chat(seed=seed, max_tokens=200, response_format={"type": "json_object"}))
        if deltas[-1].finish_reason == "stop":
            assert isinstance(json.loads(text(deltas)), dict)
        else:  # the limit cut it: what was written is still a prefix the grammar allowed
            assert text(deltas).startswith("{")


async def test_a_schema_the_grammar_compiler_refuses_is_the_clients_error(tiny: TransformersEngine) -> None:
    bad = {
        "type": "json_schema",
        "json_schema": {"name": "x", "schema": {"type": "string", "pattern": "(?<=a)b"}},
    }
    with pytest.raises(EngineError) as caught:
        await run(tiny, chat(max_tokens=5, response_format=bad))
    assert caught.value.code == "invalid_request"
