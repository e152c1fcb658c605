"""Tests for `gpucloud.engines.simulated.SimulatedEngine`."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time
from typing import Any

import msgspec
import pytest

from gpucloud.engines.faults import CRASH_EXIT_CODE, Faults
from gpucloud.engines.protocol import Delta, Engine, EngineError, GenerationRequest
from gpucloud.engines.simulated import SimulatedEngine
from gpucloud.engines.tokenizer import Tokenizer

SEEDS = range(12)


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer()


@pytest.fixture
def engine(tokenizer: Tokenizer) -> SimulatedEngine:
    return SimulatedEngine("sim-1", tokenizer=tokenizer)


def chat(content: Any = "Tell me something.", **fields: Any) -> GenerationRequest:
    messages = [{"role": "user", "content": content}]
    return GenerationRequest(kind="chat", model="sim-1", messages=messages, **fields)


def completion(prompt: str = "Once upon a time", **fields: Any) -> GenerationRequest:
    return GenerationRequest(kind="completion", model="sim-1", prompt=prompt, **fields)


async def collect(engine: SimulatedEngine, request: GenerationRequest, index: int = 0) -> list[Delta]:
    return [delta async for delta in engine.generate(request, index)]


def text_of(deltas: list[Delta]) -> str:
    return "".join(delta.text for delta in deltas)


def tokens_of(deltas: list[Delta]) -> int:
    return sum(delta.tokens for delta in deltas)


def assert_well_formed(deltas: list[Delta]) -> None:
    assert deltas
    assert deltas[-1].finish_reason in ("stop", "length")
    assert all(delta.finish_reason is None for delta in deltas[:-1])
    assert all(delta.tokens >= 1 for delta in deltas)
    assert all(delta.text for delta in deltas[:-1])
    assert all("\ufffd" not in delta.text for delta in deltas)


async def test_is_an_engine(engine: SimulatedEngine) -> None:
    assert isinstance(engine, Engine)
    assert engine.model == "sim-1"
    await engine.start()
    await engine.stop()


async def test_same_seed_same_output(engine: SimulatedEngine) -> None:
    first = await collect(engine, chat(seed=42))
    second = await collect(SimulatedEngine("sim-1"), chat(seed=42))
    assert first == second
    assert_well_formed(first)


async def test_seed_index_and_prompt_change_output(engine: SimulatedEngine) -> None:
    base = text_of(await collect(engine, chat(seed=1)))
    assert text_of(await collect(engine, chat(seed=2))) != base
    assert text_of(await collect(engine, chat(seed=1), index=1)) != base
    assert text_of(await collect(engine, chat("Something else.", seed=1))) != base


async def test_without_seed_output_is_fresh(engine: SimulatedEngine) -> None:
    outputs = {text_of(await collect(engine, chat())) for _ in range(3)}
    assert len(outputs) == 3


async def test_sampling_parameters_keep_determinism(engine: SimulatedEngine) -> None:
    request = chat(seed=7, temperature=0.0, top_p=0.1)
    first = await collect(engine, request)
    assert first == await collect(engine, request)
    assert_well_formed(first)
    assert text_of(first) != text_of(await collect(engine, chat(seed=7, temperature=1.5)))


async def test_text_looks_like_prose(engine: SimulatedEngine) -> None:
    text = "".join([text_of(await collect(engine, chat(seed=seed))) for seed in SEEDS])
    for common in (" the ", " and ", ". ", "\n"):
        assert common in text
    assert text[0].isupper()


@pytest.mark.parametrize("max_tokens", [1, 5, 17])
async def test_max_tokens_gives_exactly_that_many(engine: SimulatedEngine, max_tokens: int) -> None:
    for seed in SEEDS:
        deltas = await collect(engine, completion(seed=seed, max_tokens=max_tokens))
        assert_well_formed(deltas)
        assert deltas[-1].finish_reason == "length"
        assert tokens_of(deltas) == max_tokens


async def test_natural_end(engine: SimulatedEngine) -> None:
    for seed in SEEDS:
        deltas = await collect(engine, chat(seed=seed))
        assert_well_formed(deltas)
        assert deltas[-1].finish_reason == "stop"
        assert 20 <= tokens_of(deltas) <= 300
        assert text_of(deltas)[-1] in ".?!"


async def test_large_max_tokens_ends_by_length_or_naturally(engine: SimulatedEngine) -> None:
    reasons = set()
    for seed in range(30):
        deltas = await collect(engine, chat(seed=seed, max_tokens=80))
        total = tokens_of(deltas)
        reason = deltas[-1].finish_reason
        reasons.add(reason)
        if reason == "length":
            assert total == 80
        else:
            assert total < 80
    assert reasons == {"stop", "length"}


async def test_deltas_are_single_tokens_except_split_characters(engine: SimulatedEngine) -> None:
    seen_split = False
    for seed in range(40):
        deltas = await collect(engine, chat(seed=seed))
        assert_well_formed(deltas)
        for delta in deltas:
            if delta.tokens > 1:  # a character spread over tokens arrives whole, with all of them
                seen_split = True
                assert any(ord(char) > 0x7FF for char in delta.text)
    assert seen_split


async def test_multibyte_words_are_never_split(engine: SimulatedEngine) -> None:
    text = "".join([text_of(await collect(engine, chat(seed=seed))) for seed in range(40)])
    assert any(word in text for word in ("日本語", "東京", "世界", "Ελλάδα"))
    assert any(word in text for word in ("café", "naïve", "résumé"))
    assert "\ufffd" not in text


async def seed_whose_output_contains(engine: SimulatedEngine, text: str) -> int:
    for seed in range(100):
        if text in text_of(await collect(engine, chat(seed=seed))):
            return seed
    raise AssertionError(f"no seed produces {text!r}")


@pytest.mark.parametrize("stop", ["the", ".", "\n", " and ", "!"])
async def test_stop_cuts_right_before_first_occurrence(engine: SimulatedEngine, stop: str) -> None:
    seed = await seed_whose_output_contains(engine, stop)
    full = await collect(engine, chat(seed=seed))
    stopped = await collect(engine, chat(seed=seed, stop=(stop,)))
    assert_stopped(stopped, full, text_of(full).index(stop), len(stop))


async def test_stop_spanning_tokens(engine: SimulatedEngine) -> None:
    full = await collect(engine, chat(seed=3))
    middle = len(full) // 2
    stop = full[middle].text[-2:] + full[middle + 1].text + full[middle + 2].text[:2]
    assert len(stop) >= 5  # spans at least three tokens
    stopped = await collect(engine, chat(seed=3, stop=(stop,)))
    assert_stopped(stopped, full, text_of(full).index(stop), len(stop))


async def test_earliest_of_several_stops_wins(engine: SimulatedEngine) -> None:
    full = await collect(engine, chat(seed=5))
    stops = ("no such text", "and", "the", ".")
    cut = min(text_of(full).find(stop) for stop in stops if stop in text_of(full))
    stopped = await collect(engine, chat(seed=5, stop=stops))
    assert_stopped(stopped, full, cut, max(len(stop) for stop in stops))


async def test_held_back_text_is_released_when_no_stop_matches(engine: SimulatedEngine) -> None:
    # "." and " t" begin these stop strings, so they are held back each time, but never complete;
    # the empty stop string is ignored.
    stops = (".QQ", " tQQ", "")
    for request in (chat(seed=8), chat(seed=8, max_tokens=12)):
        plain = await collect(engine, request)
        held = await collect(engine, msgspec.structs.replace(request, stop=tuple(stops)))
        assert_well_formed(held)
        assert text_of(held) == text_of(plain)
        assert tokens_of(held) == tokens_of(plain)
        assert held[-1].finish_reason == plain[-1].finish_reason


def assert_stopped(stopped: list[Delta], full: list[Delta], cut: int, stop_length: int) -> None:
    """`stopped` is `full` cut at `cut`, and counts the tokens generated up to the match."""
    assert text_of(stopped) == text_of(full)[:cut]
    assert stopped[-1].finish_reason == "stop"
    assert all(delta.finish_reason is None for delta in stopped[:-1])
    assert all(delta.text for delta in stopped[:-1])
    # The tokens generated are counted, including those that produced the (unsent) stop text:
    # at least up to where the match begins, at most up to where it ends.
    at_least = at_most = consumed = 0
    for delta in full:
        if consumed <= cut:
            at_least += delta.tokens
        if consumed < cut + stop_length:
            at_most += delta.tokens
        consumed += len(delta.text)
    assert at_least <= tokens_of(stopped) <= at_most


async def test_count_prompt_tokens(engine: SimulatedEngine, tokenizer: Tokenizer) -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    request = GenerationRequest(kind="chat", model="sim-1", messages=messages)
    assert engine.count_prompt_tokens(request) == tokenizer.count_chat(messages)
    assert engine.count_prompt_tokens(completion("hello world")) == 2


async def test_context_length_error(tokenizer: Tokenizer) -> None:
    engine = SimulatedEngine("sim-1", max_model_tokens=50, tokenizer=tokenizer)
    prompt = "word" + " word" * 39  # 40 tokens
    with pytest.raises(EngineError, match="maximum context length is 50 tokens") as raised:
        await collect(engine, completion(prompt, max_tokens=11))
    assert "51 tokens (40 in the prompt, 11 in the completion)" in str(raised.value)
    assert raised.value.retryable is False
    deltas = await collect(engine, completion(prompt, max_tokens=10, seed=1))
    assert (tokens_of(deltas), deltas[-1].finish_reason) == (10, "length")


async def test_without_max_tokens_the_context_limits(tokenizer: Tokenizer) -> None:
    engine = SimulatedEngine("sim-1", max_model_tokens=50, tokenizer=tokenizer)
    deltas = await collect(engine, completion("word" + " word" * 39, seed=1))
    assert (tokens_of(deltas), deltas[-1].finish_reason) == (10, "length")
    with pytest.raises(EngineError, match="maximum context length"):
        await collect(engine, completion("word" + " word" * 49))


async def test_max_tokens_below_one_is_an_error(engine: SimulatedEngine) -> None:
    with pytest.raises(EngineError, match="max_tokens"):
        await collect(engine, completion(max_tokens=0))


async def test_fail_marker_raises(tokenizer: Tokenizer) -> None:
    engine = SimulatedEngine("sim-1", tokenizer=tokenizer, faults=Faults(fail_marker="PLEASE-FAIL"))
    with pytest.raises(EngineError, match="simulated failure") as raised:
        await collect(engine, chat([{"type": "text", "text": "x PLEASE-FAIL y"}]))
    assert raised.value.retryable is False
    with pytest.raises(EngineError):
        await collect(engine, completion("PLEASE-FAIL"))
    assert_well_formed(await collect(engine, chat("all fine")))


async def test_bug_marker_raises_an_unexpected_error(tokenizer: Tokenizer) -> None:
    engine = SimulatedEngine("sim-1", tokenizer=tokenizer, faults=Faults(bug_marker="POISON"))
    with pytest.raises(RuntimeError, match="simulated engine bug"):
        await collect(engine, completion("a POISON pill"))
    assert_well_formed(await collect(engine, chat("all fine")))


def test_crash_marker_kills_the_process() -> None:
    script = textwrap.dedent(
        """
        import asyncio
        from gpucloud.engines.protocol import GenerationRequest
        from gpucloud.engines.faults import Faults
        from gpucloud.engines.simulated import SimulatedEngine

        async def main():
            engine = SimulatedEngine("sim-1", faults=Faults(crash_marker="KILL-ME"))
            request = GenerationRequest(kind="completion", model="sim-1", prompt="x KILL-ME", max_tokens=5)
            async for _ in engine.generate(request, 0):
                pass
            print("survived")

        asyncio.run(main())
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == CRASH_EXIT_CODE
    assert "survived" not in result.stdout


async def test_pacing(tokenizer: Tokenizer) -> None:
    engine = SimulatedEngine("sim-1", ttft_ms=150, tokens_per_s=100, tokenizer=tokenizer)
    started = time.monotonic()
    first_at = None
    async for _ in engine.generate(completion(seed=1, max_tokens=11), 0):
        first_at = first_at or time.monotonic()
    finished = time.monotonic()
    assert first_at is not None
    assert first_at - started >= 0.14  # first token after ttft
    assert finished - started >= 0.14 + 10 * 0.01 * 0.9  # then 10 more at 100 tokens/s
    assert finished - started < 5  # loose: only guards against runaway sleeping


async def test_no_delay_still_yields_control(engine: SimulatedEngine) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    before = ticks
    deltas = await collect(engine, chat(seed=1))
    task.cancel()
    assert tokens_of(deltas) >= 20
    assert ticks - before >= 2


async def test_aclose_stops_promptly(tokenizer: Tokenizer) -> None:
    engine = SimulatedEngine("sim-1", tokens_per_s=2, tokenizer=tokenizer)
    stream = engine.generate(completion(seed=1, max_tokens=100), 0)
    first = await anext(stream)
    assert first.tokens == 1
    started = time.monotonic()
    await stream.aclose()
    assert time.monotonic() - started < 0.2
    with pytest.raises(StopAsyncIteration):
        await anext(stream)


async def test_task_cancel_stops_promptly(tokenizer: Tokenizer) -> None:
    engine = SimulatedEngine("sim-1", ttft_ms=10_000, tokenizer=tokenizer)
    received: list[Delta] = []

    async def consume() -> None:
        async for delta in engine.generate(completion(seed=1), 0):
            received.append(delta)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 0.2
    assert received == []


def test_from_options() -> None:
    engine = SimulatedEngine.from_options(
        "sim-2",
        {"ttft_ms": "5", "tokens_per_s": "1000.5", "max_model_tokens": "128", "fail_marker": "BOOM"},
    )
    assert engine.model == "sim-2"
    assert engine.max_model_tokens == 128
    assert SimulatedEngine.from_options("sim-3", {}).max_model_tokens == 4096


async def test_from_options_markers_take_effect() -> None:
    engine = SimulatedEngine.from_options("sim-2", {"fail_marker": "BOOM"})
    with pytest.raises(EngineError):
        await collect(engine, completion("BOOM"))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"speed": "1"}, "unknown simulated engine option.*speed.*known options: load_s, ttft_ms"),
        ({"ttft_ms": "fast"}, "ttft_ms='fast': expected a number"),
        ({"ttft_ms": "-1"}, "ttft_ms must be a finite number >= 0"),
        ({"tokens_per_s": "nan"}, "tokens_per_s must be a finite number >= 0"),
        ({"tokens_per_s": "inf"}, "tokens_per_s must be a finite number >= 0"),
        ({"max_model_tokens": "4k"}, "max_model_tokens='4k': expected a whole number"),
        ({"max_model_tokens": "1.5"}, "max_model_tokens='1.5': expected a whole number"),
        ({"max_model_tokens": "0"}, "max_model_tokens must be at least 1"),
        ({"crash_marker": ""}, "crash_marker must not be empty"),
    ],
)
def test_from_options_errors(options: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SimulatedEngine.from_options("sim-1", options)


async def test_natural_end_off_runs_to_the_token_limit() -> None:
    from gpucloud.engines.protocol import GenerationRequest as _Request
    from gpucloud.engines.simulated import SimulatedEngine as _Engine

    engine = _Engine.from_options("m", {"natural_end": "false"})
    await engine.start()
    request = _Request(kind="completion", model="m", prompt="go", max_tokens=900, seed=3)
    deltas = [d async for d in engine.generate(request, 0)]
    assert sum(d.tokens for d in deltas) == 900
    assert deltas[-1].finish_reason == "length"
    with pytest.raises(ValueError, match="natural_end"):
        _Engine.from_options("m", {"natural_end": "maybe"})


async def test_temperature_zero_is_greedy_the_prompt_alone_decides() -> None:
    engine = SimulatedEngine("sim-1")
    first = text_of(await collect(engine, chat(temperature=0.0)))
    assert text_of(await collect(engine, chat(temperature=0.0))) == first  # no seed needed
    assert text_of(await collect(engine, chat(temperature=0.0, seed=9))) == first  # a seed changes nothing
    assert text_of(await collect(engine, chat(temperature=0.0), index=1)) == first  # nor the choice
    assert text_of(await collect(engine, chat("Something else.", temperature=0.0))) != first
