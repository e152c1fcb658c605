"""The cost of structured outputs: tokens/s of the transformers engine with and without a json_schema.

A tiny Llama (random weights, made on the spot by tests/tiny_models.py) runs in-process in
`TransformersEngine`; the same chat requests are sent free and with a `json_schema`
`response_format` (grammar-constrained decoding, `engines/transformers/grammar.py`), at 1 and 16
concurrent requests, side by side in one run. Each request runs to `--max-tokens` (the
end-of-sequence token is banned with `logit_bias` on both sides, and the schema's open strings
keep the random model writing), so both sides generate the same number of tokens. Decoding is
greedy on both sides: sampled free text from random weights is mostly broken UTF-8, whose
detokenization would cost the free side extra and flatter the constrained one;
the table shows each side's best output tokens/s and how much slower the constrained side is: the
median, over alternating pairs of rounds, of one pair's constrained/free ratio.

    python bench/constrained_decoding.py [--hidden 128 --layers 24 --vocab 512 --max-tokens 64]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.tiny_models import make_tiny_llama  # noqa: E402 - the repository's own helper

from gpucloud.engines import build_engine  # noqa: E402
from gpucloud.engines.protocol import GenerationRequest  # noqa: E402
from gpucloud.engines.transformers import TransformersEngine  # noqa: E402

MODEL = "bench-tiny"
CONCURRENCY = (1, 16)
SCHEMA = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "score": {"type": "integer", "minimum": 0, "maximum": 10},
        "notes": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["title", "score", "notes"],
    "additionalProperties": False,
}
FORMAT = {"type": "json_schema", "json_schema": {"name": "review", "schema": SCHEMA, "strict": True}}


def request(i: int, max_tokens: int, structured: bool, no_eos: dict[str, float]) -> GenerationRequest:
    extra: dict[str, Any] = {"response_format": FORMAT} if structured else {}
    messages = [{"role": "user", "content": f"Review number {i} of the river and the city."}]
    return GenerationRequest(
        kind="chat",
        model=MODEL,
        messages=messages,
        max_tokens=max_tokens,
        temperature=0,
        logit_bias=no_eos,
        **extra,
    )


async def one_round(
    engine: TransformersEngine, concurrency: int, args: argparse.Namespace, structured: bool
) -> float:
    """Output tokens/s of `concurrency` requests at once, free or with the schema."""
    # Both sides ban the end-of-sequence token, so both run to max_tokens and compare like for like.
    no_eos = {str(token): -100.0 for token in engine._require().eos_token_ids}

    async def one(i: int) -> int:
        deltas = [d async for d in engine.generate(request(i, args.max_tokens, structured, no_eos), 0)]
        return sum(d.tokens for d in deltas)

    started = time.perf_counter()
    tokens = sum(await asyncio.gather(*(one(i) for i in range(concurrency))))
    return tokens / (time.perf_counter() - started)


async def side_by_side(
    engine: TransformersEngine, concurrency: int, args: argparse.Namespace
) -> tuple[float, float, float]:
    """(free, constrained) tokens/s, each side's best round, and the median over the rounds of
    constrained/free. Rounds alternate between the two sides, so the two rounds of a pair meet the
    same spell of a shared machine: the pair's ratio is steadier than either figure."""
    free, constrained, ratios = [], [], []
    for _ in range(args.rounds):
        free.append(await one_round(engine, concurrency, args, False))
        constrained.append(await one_round(engine, concurrency, args, True))
        ratios.append(constrained[-1] / free[-1])
    return max(free), max(constrained), statistics.median(ratios)


async def run(models: Path, args: argparse.Namespace) -> None:
    engine = build_engine("transformers", MODEL, {"max_batch_size": "16"}, models_dir=models)
    assert isinstance(engine, TransformersEngine)
    await engine.start()
    try:
        for structured in (
            False,
            True,
        ):  # warm-up: first-call costs (the grammar's tokenizer) on neither side
            await one_round(engine, 1, args, structured)
        print(
            f"{'concurrent':>10} {'free tok/s':>11} {'json_schema tok/s':>18} {'slower by (median pair)':>24}"
        )
        for concurrency in CONCURRENCY:
            free, constrained, ratio = await side_by_side(engine, concurrency, args)
            print(f"{concurrency:>10} {free:>11.1f} {constrained:>18.1f} {(1 - ratio) * 100:>23.1f}%")
    finally:
        await engine.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hidden", type=int, default=128, help="hidden size of the tiny Llama")
    parser.add_argument("--layers", type=int, default=24, help="decoder layers")
    parser.add_argument("--vocab", type=int, default=512, help="BPE vocabulary size")
    parser.add_argument("--max-tokens", type=int, default=64, help="completion tokens per request")
    parser.add_argument(
        "--rounds", type=int, default=5, help="alternating rounds per cell; each side's best counts"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # before torch is first imported
    tmp = Path(tempfile.mkdtemp(prefix="gpucloud-bench-constrained-"))
    try:
        models = tmp / "models"
        make_tiny_llama(
            models / MODEL,
            vocab_size=args.vocab,
            hidden_size=args.hidden,
            num_layers=args.layers,
            num_heads=max(1, args.hidden // 64),
        )
        asyncio.run(run(models, args))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
