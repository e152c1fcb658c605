"""`gpucloud bench` (a real CLI subprocess) against a live `gpucloud serve` whose simulated engine
streams at a set pace: the counts add up (requests = completed + failed, errors counted by status),
percentiles are ordered, the JSON holds every metric and never the key; 429s from a key's rpm limit
are counted as errors; rate and duration levels; a dataset; bad flags exit 2 naming the flag."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gpucloud.bench.metrics import LATENCIES, PERCENTILES
from tests.conftest import create_key
from tests.support import Server, make_server

MODEL = "gpucloud-sim-1"


@pytest.fixture(scope="module")
def paced_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"GPUCLOUD_LOCAL_WORKER__TTFT_MS": "15", "GPUCLOUD_LOCAL_WORKER__TOKENS_PER_S": "400"}
    server = make_server(tmp_path_factory.mktemp("bench-server"), env=env)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def bench(server: Server, key: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "gpucloud", "bench", "--base-url", server.v1, "--model", MODEL]
    return subprocess.run(
        [*command, "--api-key", key, *args], capture_output=True, text=True, timeout=240, check=False
    )


def run_json(server: Server, key: str, out: Path, *args: str) -> dict[str, Any]:
    done = bench(server, key, "--json", str(out), *args)
    assert done.returncode == 0, done.stderr[-3000:]
    assert key not in out.read_text() + done.stdout + done.stderr
    data: dict[str, Any] = json.loads(out.read_text())
    return data


def assert_ordered(level: dict[str, Any], name: str) -> None:
    values = [level[f"p{q}_{name}_ms"] for q in PERCENTILES]
    assert all(v is not None for v in values), name
    assert values == sorted(values), (name, values)
    assert level[f"median_{name}_ms"] == level[f"p50_{name}_ms"]
    assert values[0] > 0, name


def test_streamed_levels_add_up_and_hold_every_metric(paced_server: Server, tmp_path: Path) -> None:
    out, png = tmp_path / "out.json", tmp_path / "out.png"
    data = run_json(
        paced_server, paced_server.admin_key, out, "--concurrency", "1,4", "--requests", "12",
        "--prompt-tokens", "40", "--output-tokens", "24", "--stream", "--plot", str(png),
    )  # fmt: skip
    assert [level["concurrency"] for level in data["levels"]] == [1, 4]
    assert data["config"]["stream"] is True
    for level in data["levels"]:
        assert (level["requests"], level["completed"], level["failed"]) == (12, 12, 0)
        assert level["errors_by_status"] == {}
        for name in LATENCIES:
            assert_ordered(level, name)
        assert 0 < level["total_output_tokens"] <= 12 * 24
        assert level["total_input_tokens"] >= 12 * 40
        assert level["output_throughput"] == pytest.approx(level["total_output_tokens"] / level["duration_s"])
        assert level["request_throughput"] == pytest.approx(12 / level["duration_s"])
        assert level["p99_e2el_ms"] >= level["p99_ttft_ms"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rate_limited_requests_are_counted_by_status(paced_server: Server, tmp_path: Path) -> None:
    key = str(create_key(paced_server, name="bench-rpm", rpm_limit=5)["key"])
    data = run_json(
        paced_server, key, tmp_path / "rpm.json", "--concurrency", "2", "--requests", "12",
        "--output-tokens", "8",
    )  # fmt: skip
    (level,) = data["levels"]
    assert level["requests"] == level["completed"] + level["failed"] == 12
    assert level["completed"] == 5
    assert level["errors_by_status"] == {"429": 7}
    assert level["mean_ttft_ms"] is None  # not streamed: no TTFT, ITL or TPOT
    assert level["p99_tpot_ms"] is None
    assert_ordered(level, "e2el")
    assert any(line.startswith("429:") for line in level["sample_errors"])


def test_request_rate_for_a_duration_and_a_dataset(paced_server: Server, tmp_path: Path) -> None:
    dataset = tmp_path / "prompts.jsonl"
    rows = [{"prompt": "Say hello."}, {"messages": [{"role": "user", "content": "Hi"}], "output_tokens": 4}]
    dataset.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    data = run_json(
        paced_server, paced_server.admin_key, tmp_path / "rate.json", "--request-rate", "25",
        "--duration", "1.5", "--dataset", str(dataset), "--endpoint", "completions", "--stream",
    )  # fmt: skip
    (level,) = data["levels"]
    assert level["request_rate"] == 25
    assert level["requests"] == level["completed"] + level["failed"]
    assert level["requests"] >= 5
    assert level["failed"] == 0
    assert level["duration_s"] >= 1.5
    assert_ordered(level, "ttft")
    assert data["config"]["dataset"] == "prompts.jsonl"


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--concurrency", "0"], "--concurrency"),
        (["--concurrency", "1,x"], "--concurrency"),
        (["--concurrency", "1", "--request-rate", "2"], "--request-rate"),
        (["--requests", "3", "--duration", "2"], "--duration"),
        (["--endpoint", "images"], "--endpoint"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag(paced_server: Server, args: list[str], flag: str) -> None:
    done = bench(paced_server, paced_server.admin_key, *args)
    assert done.returncode == 2
    assert flag in done.stderr


def test_a_bad_dataset_names_the_line(paced_server: Server, tmp_path: Path) -> None:
    dataset = tmp_path / "bad.jsonl"
    dataset.write_text('{"prompt": "ok"}\n{"prompt": 3}\n')
    done = bench(paced_server, paced_server.admin_key, "--dataset", str(dataset))
    assert done.returncode == 2
    assert "line 2" in done.stderr
