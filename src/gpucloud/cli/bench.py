"""`gpucloud bench`: load-test any OpenAI-compatible endpoint and report vLLM-style metrics per level.

The command parses and checks its flags, builds the workload, runs each level in turn behind a rich
progress bar, and prints the summary table (and writes `--json` / `--plot`). It needs no settings
and no database: it is a client. Bad flags exit with status 2 and a message naming the flag.
"""

from __future__ import annotations

import asyncio
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from gpucloud.bench import report, runner, workload
from gpucloud.bench.client import RequestResult, Target
from gpucloud.bench.metrics import first_errors, summarize


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


def _requests(plan: runner.Plan, prompts: Path | None, sizes: tuple[int, int], count: int) -> Iterator[Any]:
    if prompts is not None:
        try:
            return workload.cycle(workload.load_dataset(prompts, sizes[1]))
        except (OSError, workload.DatasetError) as exc:
            raise typer.BadParameter(str(exc), param_hint="--dataset") from None
    return workload.cycle(workload.synthetic(count, sizes[0], sizes[1], plan.seed))


async def _run_level(
    plan: runner.Plan, requests: Iterator[Any], level: tuple[str, float], console: Console
) -> dict[str, Any]:
    kind, value = level
    label = f"c={value:g}" if kind == "concurrency" else f"{value:g} req/s"
    total = plan.requests if plan.requests is not None else None
    columns = [TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    columns.append(TextColumn("{task.fields[failed]} failed"))
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(label, total=total, failed=0)
        failed = 0

        def tick(result: RequestResult) -> None:
            nonlocal failed
            failed += 0 if result.ok else 1
            bar.update(task, advance=1, failed=failed)

        if kind == "concurrency":
            results, seconds = await runner.at_concurrency(plan, requests, int(value), tick)
        else:
            results, seconds = await runner.at_rate(plan, requests, value, tick)
    summary = summarize(results, seconds, plan.target.stream)
    level_key = (
        {"concurrency": int(value), "request_rate": None}
        if kind == "concurrency"
        else {
            "concurrency": None,
            "request_rate": value,
        }
    )
    return {**level_key, **summary, "sample_errors": first_errors(results)}


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
    if requests is not None and duration is not None:
        raise typer.BadParameter("give --requests or --duration, not both", param_hint="--duration")
    if duration is not None and (not math.isfinite(duration) or duration <= 0):
        raise typer.BadParameter("must be a positive number of seconds", param_hint="--duration")
    if endpoint not in ("chat", "completions"):
        raise typer.BadParameter("chat or completions", param_hint="--endpoint")
    count = requests if requests is not None or duration is not None else 100
    target = Target(base_url, model, endpoint, stream)
    plan = runner.Plan(target, api_key, count, duration, timeout, seed)
    pool = _requests(plan, dataset, (prompt_tokens, output_tokens), min(count or 1000, 1000))
    console = Console(stderr=True)
    results = [asyncio.run(_run_level(plan, pool, level, console)) for level in levels]
    _output(results, _config(plan, prompt_tokens, output_tokens, dataset), json_out, plot)


def _output(
    results: list[dict[str, Any]], config: dict[str, Any], json_out: Path | None, plot: Path | None
) -> None:
    # Piped or redirected output gets a table wide enough to read, not rich's 80 columns.
    out = Console() if sys.stdout.isatty() else Console(width=170)
    report.show(out, results, f"gpucloud bench: {config['model']} at {config['base_url']}")
    if json_out is not None:
        report.write_json(json_out, config, results)
    if plot is not None:
        try:
            report.plot(plot, results)
        except RuntimeError as exc:
            raise typer.BadParameter(str(exc), param_hint="--plot") from None


def _parse_levels(concurrency: str | None, request_rate: str | None) -> list[tuple[str, float]]:
    if concurrency is not None and request_rate is not None:
        raise typer.BadParameter(
            "give --concurrency or --request-rate, not both", param_hint="--request-rate"
        )
    if request_rate is not None:
        return [("request_rate", v) for v in _levels(request_rate, "--request-rate", float)]
    return [("concurrency", v) for v in _levels(concurrency or "1", "--concurrency", int)]


def _config(
    plan: runner.Plan, prompt_tokens: int, output_tokens: int, dataset: Path | None
) -> dict[str, Any]:
    """The run's settings for the JSON file: never the API key."""
    return {
        "base_url": plan.target.base_url,
        "model": plan.target.model,
        "endpoint": plan.target.endpoint,
        "stream": plan.target.stream,
        "requests_per_level": plan.requests,
        "duration_s": plan.duration_s,
        "prompt_tokens": None if dataset else prompt_tokens,
        "output_tokens": output_tokens,
        "dataset": dataset.name if dataset else None,
        "seed": plan.seed,
    }
