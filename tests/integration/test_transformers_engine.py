"""Tests for `TransformersEngine`, through the real loading path, on tiny models made at test time.

Models (tests/tiny_models.py): "tiny" (byte-level BPE, random weights, a chat template), "base"
(the same without a chat template), "bytes" (one token per byte, random weights: its output is
mostly invalid UTF-8) and "cycle" (one token per byte, wired to write "日🙂é" over and over, so
every character of its output is split over 2-4 tokens).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, BatchEncoding

from gpucloud.engines import ENGINE_KINDS, build_engine
from gpucloud.engines.protocol import Delta, Engine, EngineError, GenerationRequest
from gpucloud.engines.transformers import TransformersEngine, parse_options
from gpucloud.engines.transformers.prompts import render_fallback
from tests.tiny_models import make_tiny_llama

CYCLE = "日🙂é"
MESSAGES: list[dict[str, str]] = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hello world!"},
]


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    make_tiny_llama(root / "tiny")
    make_tiny_llama(root / "base", chat_template=None)
    make_tiny_llama(root / "bytes", vocabulary="bytes", seed=3)
    make_tiny_llama(root / "cycle", vocabulary="bytes", cycle=CYCLE)
    return root


async def started(models_dir: Path, name: str, **options: str) -> TransformersEngine:
    engine = build_engine("transformers", name, options, models_dir=models_dir)
    assert isinstance(engine, TransformersEngine)
    await engine.start()
    return engine


@pytest.fixture(scope="module")
async def tiny(models_dir: Path) -> AsyncIterator[TransformersEngine]:
    engine = await started(models_dir, "tiny", max_batch_size="16")
    yield engine
    await engine.stop()


@pytest.fixture(scope="module")
async def cycle(models_dir: Path) -> AsyncIterator[TransformersEngine]:
    engine = await started(models_dir, "cycle")
    yield engine
    await engine.stop()


def completion(prompt: str = "Hello world", **fields: Any) -> GenerationRequest:
    return GenerationRequest(kind="completion", model="m", prompt=prompt, **fields)


def chat(**fields: Any) -> GenerationRequest:
    return GenerationRequest(kind="chat", model="m", messages=MESSAGES, **fields)


async def collect(engine: Engine, request: GenerationRequest, index: int = 0) -> list[Delta]:
    return [delta async for delta in engine.generate(request, index)]


def text_of(deltas: list[Delta]) -> str:
    return "".join(delta.text for delta in deltas)


def tokens_of(deltas: list[Delta]) -> int:
    return sum(delta.tokens for delta in deltas)


def reference_greedy(path: Path, prompt: str, max_new_tokens: int) -> str:
    """What transformers' own `generate` writes greedily for `prompt`: the ground truth."""
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    ids = tokenizer(prompt)["input_ids"]
    out = model.generate(torch.tensor([ids]), max_new_tokens=max_new_tokens, do_sample=False)
    text = tokenizer.decode(out[0][len(ids) :], skip_special_tokens=True)
    assert isinstance(text, str)  # one sequence decodes to one string
    return text


async def test_registered_and_loaded_through_build_engine(tiny: TransformersEngine) -> None:
    assert "transformers" in ENGINE_KINDS
    assert isinstance(tiny, Engine)
    assert tiny.model == "tiny"
    assert tiny.max_model_len == 512  # the config's max_position_embeddings


async def test_chat_uses_the_chat_template_and_counts_with_the_model_tokenizer(
    tiny: TransformersEngine, models_dir: Path
) -> None:
    tokenizer = AutoTokenizer.from_pretrained(models_dir / "tiny")
    templated = tokenizer.apply_chat_template(
        MESSAGES, add_generation_prompt=True, tokenize=True, return_dict=True
    )
    assert isinstance(templated, BatchEncoding)  # return_dict=True
    assert tiny.count_prompt_tokens(chat()) == len(templated["input_ids"])
    plain = len(tokenizer("Be brief.Hello world!")["input_ids"])
    assert tiny.count_prompt_tokens(chat()) > plain + 5  # the template's framing is counted
    assert tiny.count_prompt_tokens(completion("Hello world")) == len(tokenizer("Hello world")["input_ids"])
    parts = [{"type": "text", "text": "Hello "}, {"type": "text", "text": "world!"}]
    as_parts = GenerationRequest(
        kind="chat", model="m", messages=[MESSAGES[0], {"role": "user", "content": parts}]
    )
    assert tiny.count_prompt_tokens(as_parts) == tiny.count_prompt_tokens(chat())


async def test_a_model_without_chat_template_gets_the_documented_fallback(models_dir: Path) -> None:
    engine = await started(models_dir, "base")
    try:
        tokenizer = AutoTokenizer.from_pretrained(models_dir / "base")
        assert not tokenizer.chat_template
        expected = tokenizer(render_fallback(MESSAGES))["input_ids"]
        assert render_fallback(MESSAGES).endswith("<|user|>\nHello world!\n<|assistant|>\n")
        assert engine.count_prompt_tokens(chat()) == len(expected)
        deltas = await collect(engine, chat(max_tokens=5))
        assert tokens_of(deltas) == 5
    finally:
        await engine.stop()


async def test_greedy_output_is_what_transformers_generate_writes(
    tiny: TransformersEngine, models_dir: Path
) -> None:
    deltas = await collect(tiny, completion("The river", max_tokens=24, temperature=0))
    assert text_of(deltas) == reference_greedy(models_dir / "tiny", "The river", 24)


async def test_max_tokens_is_exact_and_finishes_with_length(tiny: TransformersEngine) -> None:
    for max_tokens in (1, 7, 30):
        deltas = await collect(tiny, completion(max_tokens=max_tokens, temperature=0))
        assert tokens_of(deltas) == max_tokens
        assert deltas[-1].finish_reason == "length"
        assert all(d.finish_reason is None for d in deltas[:-1])


async def test_the_context_length_bounds_a_choice(models_dir: Path) -> None:
    engine = await started(models_dir, "tiny", max_model_len="40")
    try:
        prompt = engine.count_prompt_tokens(completion())
        deltas = await collect(engine, completion(temperature=0))  # no max_tokens: up to the context
        assert tokens_of(deltas) == 40 - prompt
        assert deltas[-1].finish_reason == "length"
        with pytest.raises(EngineError, match="maximum context length is 40 tokens"):
            await collect(engine, completion(max_tokens=40))
    finally:
        await engine.stop()


async def test_stop_strings_cut_exactly(tiny: TransformersEngine) -> None:
    full = text_of(await collect(tiny, completion("Once", max_tokens=40, temperature=0)))
    assert len(full) > 20
    for start, size in ((5, 3), (12, 5), (0, 1)):
        stop = full[start : start + size]
        deltas = await collect(tiny, completion("Once", max_tokens=40, temperature=0, stop=(stop,)))
        assert text_of(deltas) == full[: full.find(stop)]
        assert deltas[-1].finish_reason == "stop"
        assert stop not in text_of(deltas)


async def test_a_stop_string_spanning_tokens_and_characters_is_never_partly_emitted(
    cycle: TransformersEngine,
) -> None:
    # "🙂é日🙂" spans 13 byte tokens and starts in the middle of the repeating text.
    deltas = await collect(cycle, completion("é", max_tokens=60, temperature=0, stop=("xyz", "🙂é日🙂")))
    assert text_of(deltas) == "日"
    assert deltas[-1].finish_reason == "stop"
    assert tokens_of(deltas) == len("日🙂é日🙂".encode())  # every token the model generated


async def test_streamed_multibyte_text_never_splits_a_character(cycle: TransformersEngine) -> None:
    for temperature in (0.0, 1.0):
        deltas = await collect(cycle, completion("é", max_tokens=45, temperature=temperature, seed=1))
        assert text_of(deltas) == CYCLE * 5  # 45 bytes: five whole cycles
        assert tokens_of(deltas) == 45
        assert all(d.text and "\ufffd" not in d.text for d in deltas)
        assert {d.text for d in deltas} <= set(CYCLE)  # one whole character per delta


async def test_invalid_bytes_become_replacement_characters_like_a_full_decode(models_dir: Path) -> None:
    engine = await started(models_dir, "bytes")
    try:
        deltas = await collect(engine, completion("日本語", max_tokens=40, temperature=0))
        assert text_of(deltas) == reference_greedy(models_dir / "bytes", "日本語", 40)
        assert tokens_of(deltas) == 40
    finally:
        await engine.stop()


async def test_a_seed_makes_sampling_reproducible(tiny: TransformersEngine) -> None:
    request = completion(max_tokens=30, temperature=1.0, top_p=0.95, seed=42)
    first = text_of(await collect(tiny, request))
    assert text_of(await collect(tiny, request)) == first
    other_seed = completion(max_tokens=30, temperature=1.0, top_p=0.95, seed=43)
    assert text_of(await collect(tiny, other_seed)) != first


async def test_n_choices_of_a_seeded_request_differ_by_index_and_are_reproducible(
    tiny: TransformersEngine,
) -> None:
    request = completion(max_tokens=25, temperature=1.0, seed=7, n=4)
    runs = [await asyncio.gather(*(collect(tiny, request, index) for index in range(4))) for _ in range(2)]
    texts = [[text_of(deltas) for deltas in run] for run in runs]
    assert texts[0] == texts[1]
    assert len(set(texts[0])) == 4


async def test_concurrent_requests_are_batched_and_each_is_exact(models_dir: Path) -> None:
    engine = await started(models_dir, "tiny", max_batch_size="8")
    try:
        prompts = [f"Request number {i}" + " again" * i for i in range(8)]
        alone = [text_of(await collect(engine, completion(p, max_tokens=20, temperature=0))) for p in prompts]
        assert engine.stats.max_batch_seen == 1  # one at a time: each ran alone
        results = await asyncio.gather(
            *(collect(engine, completion(p, max_tokens=20 + i, temperature=0)) for i, p in enumerate(prompts))
        )
        assert [tokens_of(deltas) for deltas in results] == [20 + i for i in range(8)]
        # Batched (left-padded, joining at different steps) greedy output equals the lone runs'.
        assert [text_of(deltas)[: len(alone[i])] for i, deltas in enumerate(results)] == alone
        assert engine.stats.max_batch_seen > 1
    finally:
        await engine.stop()


async def wait_until_idle(engine: TransformersEngine) -> None:
    for _ in range(500):
        if engine.stats.in_flight == 0:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the engine kept generating: {engine.stats}")


async def test_closing_the_stream_stops_generation(tiny: TransformersEngine) -> None:
    await wait_until_idle(tiny)
    before = tiny.stats
    stream = tiny.generate(completion(max_tokens=480, temperature=0), 0)
    for _ in range(3):
        await anext(stream)
    await stream.aclose()
    await wait_until_idle(tiny)
    after = tiny.stats
    assert after.cancelled == before.cancelled + 1  # dropped by the loop, not run to its end
    assert after.tokens_generated - before.tokens_generated < 480
    await asyncio.sleep(0.05)
    assert tiny.stats.tokens_generated == after.tokens_generated  # nothing runs any more


async def test_cancelling_the_consuming_task_stops_generation(tiny: TransformersEngine) -> None:
    await wait_until_idle(tiny)
    before = tiny.stats
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in tiny.generate(completion(max_tokens=480, temperature=0), 0):
            first.set()

    task = asyncio.create_task(consume())
    await first.wait()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await wait_until_idle(tiny)
    assert tiny.stats.cancelled == before.cancelled + 1
    assert tiny.stats.tokens_generated - before.tokens_generated < 480


async def test_stop_fails_what_is_still_running_with_a_retryable_error(models_dir: Path) -> None:
    engine = await started(models_dir, "tiny")
    stream = engine.generate(completion(max_tokens=480, temperature=0), 0)
    await anext(stream)
    await engine.stop()
    with pytest.raises(EngineError) as caught:
        async for _ in stream:
            pass
    assert caught.value.retryable


def test_options_are_validated_with_clear_messages(models_dir: Path) -> None:
    assert parse_options({"dtype": "bfloat16", "max_batch_size": "4"}).max_batch_size == 4
    bad = [
        ({"colour": "red"}, "unknown transformers engine option"),
        ({"dtype": "float8"}, "dtype"),
        ({"max_batch_size": "lots"}, "max_batch_size"),
        ({"max_batch_size": "0"}, "max_batch_size"),
        ({"device": "tpu"}, "device"),
        ({"max_model_len": "1"}, "max_model_len"),
        ({"attn_implementation": "flash"}, "attn_implementation"),
    ]
    for options, message in bad:
        with pytest.raises(ValueError, match=message):
            build_engine("transformers", "tiny", options, models_dir=models_dir)


def test_sources_are_confined_to_the_models_directory(models_dir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    make_tiny_llama(outside)
    (models_dir / "escape").symlink_to(outside)
    for source in ("../elsewhere", str(outside), "escape"):
        with pytest.raises(ValueError, match=r"models directory|'\.\.'"):
            build_engine("transformers", "m", {}, source=source, models_dir=models_dir)
    hub = build_engine("transformers", "m", {}, source="org/some-model@main", models_dir=models_dir)
    assert isinstance(hub, TransformersEngine)


async def test_a_model_that_cannot_be_loaded_fails_start_clearly(models_dir: Path) -> None:
    (models_dir / "empty").mkdir()
    engine = build_engine("transformers", "empty", {}, models_dir=models_dir)
    with pytest.raises(EngineError, match="could not load model 'empty'"):
        await engine.start()
