"""One `gpucloud bench` run once its flags are checked: the workload, each level behind a rich
progress bar, then the table, the JSON file and the plot. Imported only when the command runs, so
that the rest of the CLI (the server, the workers) does not pay for what a benchmark needs."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from gpucloud.bench import report, runner, workload
from gpucloud.bench.client import RequestResult, Target
from gpucloud.bench.metrics import first_errors, summarize


def run(
    target: Target, plan_args: dict[str, Any], sizes: tuple[int, int], dataset: Path | None,
    levels: list[tuple[str, float]], outputs: tuple[Path | None, Path | None],
) -> None:  # fmt: skip
    plan = runner.Plan(target, **plan_args)
    count = plan.requests or 1000
    pool = _requests(plan, dataset, sizes, min(count, 1000))
    console = Console(stderr=True)
    results = [asyncio.run(_run_level(plan, pool, level, console)) for level in levels]
    _output(results, _config(plan, sizes[0], sizes[1], dataset), *outputs)


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
