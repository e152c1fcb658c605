"""`gpucloud bench`: load-test any OpenAI-compatible endpoint and report vLLM-style metrics per level.

The command parses and checks its flags; `gpucloud.bench.session` then builds the workload, runs each
level in turn behind a rich progress bar, and prints the summary table (and writes `--json` /
`--plot`). It needs no settings
and no database: it is a client. Bad flags exit with status 2 and a message naming the flag.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer


def _levels(text: str, flag: str, kind: type[int] | type[float]) -> list[Any]:
    try:
        values = [kind(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(
            f"expected numbers separated by commas, got {text!r}", param_hint=flag
        ) from None
    if not values or any(not math.isfinite(v) or v <= 0 for v in values):
        raise typer.BadParameter("every value must be a positive number", param_hint=flag)
    return values


def bench(
    base_url: Annotated[str, typer.Option(help="The API's base URL, e.g. http://127.0.0.1:8000/v1.")],
    model: Annotated[str, typer.Option(help="Model to ask for.")],
    api_key: Annotated[
        str | None, typer.Option(help="Bearer key (or $OPENAI_API_KEY).", envvar="OPENAI_API_KEY")
    ] = None,
    concurrency: Annotated[str | None, typer.Option(help="Levels of requests in flight: 1,8,32.")] = None,
    request_rate: Annotated[str | None, typer.Option(help="Levels of Poisson arrivals per second.")] = None,
    requests: Annotated[int | None, typer.Option(min=1, help="Requests per level (default 100).")] = None,
    duration: Annotated[float | None, typer.Option(help="Seconds per level, instead of --requests.")] = None,
    prompt_tokens: Annotated[int, typer.Option(min=1, help="Synthetic prompt length in tokens.")] = 128,
    output_tokens: Annotated[int, typer.Option(min=1, help="max_tokens of each request.")] = 128,
    dataset: Annotated[Path | None, typer.Option(help="JSONL of {prompt|messages[, output_tokens]}.")] = None,
    endpoint: Annotated[str, typer.Option(help="chat or completions.")] = "chat",
    stream: Annotated[bool, typer.Option(help="Stream (needed for TTFT, ITL and TPOT).")] = False,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds before one request times out.")] = 600.0,
    seed: Annotated[int, typer.Option(help="Seed of prompts and arrivals.")] = 0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write every metric to this file.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Draw latency and throughput per level (PNG).")] = None,
) -> None:
    """Load-test an OpenAI-compatible endpoint; metrics as vLLM's benchmark defines them."""
    levels = _parse_levels(concurrency, request_rate)
    _check_amount(requests, duration)
    if endpoint not in ("chat", "completions"):
        raise typer.BadParameter("chat or completions", param_hint="--endpoint")
    from gpucloud.bench import session  # here: the rest of the CLI need not import it
    from gpucloud.bench.client import Target

    count = requests if requests is not None or duration is not None else 100
    plan_args = {
        "api_key": api_key,
        "requests": count,
        "duration_s": duration,
        "timeout_s": timeout,
        "seed": seed,
    }
    target = Target(base_url, model, endpoint, stream)
    session.run(target, plan_args, (prompt_tokens, output_tokens), dataset, levels, (json_out, plot))


def _check_amount(requests: int | None, duration: float | None) -> None:
    """Each level runs --requests requests or for --duration seconds, never both."""
    if requests is not None and duration is not None:
        raise typer.BadParameter("give --requests or --duration, not both", param_hint="--duration")
    if duration is not None and (not math.isfinite(duration) or duration <= 0):
        raise typer.BadParameter("must be a positive number of seconds", param_hint="--duration")


def _parse_levels(concurrency: str | None, request_rate: str | None) -> list[tuple[str, float]]:
    if concurrency is not None and request_rate is not None:
        raise typer.BadParameter(
            "give --concurrency or --request-rate, not both", param_hint="--request-rate"
        )
    if request_rate is not None:
        return [("request_rate", v) for v in _levels(request_rate, "--request-rate", float)]
    return [("concurrency", v) for v in _levels(concurrency or "1", "--concurrency", int)]
