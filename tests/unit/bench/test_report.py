"""Benchmark reports: levels are named by concurrency or rate, missing figures show as '-', the
JSON keeps the settings and every level, and errors are listed per level."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from rich.console import Console

from gpucloud.bench.report import COLUMNS, level_name, show, table, write_json


def _level(**fields: Any) -> dict[str, Any]:
    level: dict[str, Any] = {"completed": 9, "requests": 10, "errors_by_status": {"429": 1}, "concurrency": 4}
    level.update({key: 1.0 for _, key, _ in COLUMNS})
    return level | fields


def _render(levels: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    show(Console(file=out, width=250, color_system=None), levels, "run")
    return out.getvalue()


def test_levels_are_named_by_concurrency_or_rate() -> None:
    assert level_name({"concurrency": 8}) == "c=8"
    assert level_name({"concurrency": None, "request_rate": 2.5}) == "2.5 req/s"
    assert level_name({"request_rate": 10.0}) == "10 req/s"


def test_the_table_has_a_row_per_level_with_dashes_for_missing_figures() -> None:
    levels = [_level(), _level(concurrency=None, request_rate=3.0, median_ttft_ms=None, errors_by_status={})]
    assert table(levels, "run").row_count == 2
    text = _render(levels)
    assert "c=4" in text
    assert "3 req/s" in text
    assert "9 / 10" in text
    assert "429: 1" in text
    assert " - " in text


def test_sample_errors_are_printed_under_their_level() -> None:
    text = _render([_level(sample_errors=["429: rate limited"])])
    assert "c=4 429: rate limited" in text


def test_the_json_keeps_the_settings_and_every_level(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    write_json(path, {"model": "m", "stream": True}, [_level(), _level(concurrency=8)])
    saved = json.loads(path.read_text())
    assert saved["config"] == {"model": "m", "stream": True}
    assert [level["concurrency"] for level in saved["levels"]] == [4, 8]
