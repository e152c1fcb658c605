"""How a benchmark's results are shown and kept: a rich table per run (one row per level), the JSON
file (`--json`: the run's settings, never the API key, and every level's full summary), and the
optional plot (`--plot`, matplotlib from the `bench` extra) of latency and throughput per level.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

COLUMNS = [
    ("req/s", "request_throughput", "{:.2f}"),
    ("out tok/s", "output_throughput", "{:.1f}"),
    ("TTFT p50", "median_ttft_ms", "{:.1f}"),
    ("TTFT p99", "p99_ttft_ms", "{:.1f}"),
    ("ITL p50", "median_itl_ms", "{:.2f}"),
    ("TPOT p50", "median_tpot_ms", "{:.2f}"),
    ("E2E p50", "median_e2el_ms", "{:.1f}"),
    ("E2E p90", "p90_e2el_ms", "{:.1f}"),
    ("E2E p99", "p99_e2el_ms", "{:.1f}"),
]

LATENCY_LINES = [("median_e2el_ms", "E2E p50"), ("p99_e2el_ms", "E2E p99"), ("median_ttft_ms", "TTFT p50")]


def level_name(level: dict[str, Any]) -> str:
    if level.get("concurrency") is not None:
        return f"c={level['concurrency']}"
    return f"{level['request_rate']:g} req/s"


def table(levels: Sequence[dict[str, Any]], title: str) -> Table:
    view = Table(title=title, caption="latencies in ms; TTFT, ITL, TPOT need --stream")
    view.add_column("level")
    view.add_column("ok / sent", justify="right")
    for name, _, _ in COLUMNS:
        view.add_column(name, justify="right")
    view.add_column("errors")
    for level in levels:
        cells = [level_name(level), f"{level['completed']} / {level['requests']}"]
        cells += [_cell(level.get(key), fmt) for _, key, fmt in COLUMNS]
        cells.append(", ".join(f"{k}: {v}" for k, v in sorted(level["errors_by_status"].items())) or "-")
        view.add_row(*cells)
    return view


def _cell(value: object, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def show(console: Console, levels: Sequence[dict[str, Any]], title: str) -> None:
    console.print(table(levels, title))
    for level in levels:
        for line in level.get("sample_errors", []):
            console.print(f"[yellow]{level_name(level)}[/] {line}")


def write_json(path: Path, config: dict[str, Any], levels: Sequence[dict[str, Any]]) -> None:
    path.write_text(json.dumps({"config": config, "levels": list(levels)}, indent=2) + "\n")


def plot(path: Path, levels: Sequence[dict[str, Any]]) -> None:
    """Latency (p50/p99 E2E and TTFT) and output throughput against the level."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only, no display
        import matplotlib.pyplot as plt
    except ImportError:
        raise RuntimeError("--plot needs matplotlib: pip install 'gpucloud[bench]'") from None
    by_rate = levels[0].get("concurrency") is None
    xs = [level["request_rate"] if by_rate else level["concurrency"] for level in levels]
    fig, (latency, throughput) = plt.subplots(1, 2, figsize=(11, 4.2))
    for key, label in [
        ("median_e2el_ms", "E2E p50"),
        ("p99_e2el_ms", "E2E p99"),
        ("median_ttft_ms", "TTFT p50"),
    ]:
        ys = [level.get(key) for level in levels]
        if any(y is not None for y in ys):
            latency.plot(xs, [y if y is not None else float("nan") for y in ys], marker="o", label=label)
    latency.set(xlabel="request rate" if by_rate else "concurrency", ylabel="ms", title="Latency")
    latency.legend()
    throughput.plot(xs, [level["output_throughput"] for level in levels], marker="o")
    throughput.set(xlabel=latency.get_xlabel(), ylabel="output tokens/s", title="Throughput")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
