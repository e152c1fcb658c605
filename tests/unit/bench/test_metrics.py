"""Benchmark metrics in vLLM's terms: percentiles interpolate as numpy's default, failed requests
count only as failures, and streamed-only figures are null without streaming."""

from __future__ import annotations

import pytest

from gpucloud.bench.client import RequestResult
from gpucloud.bench.metrics import distribution, first_errors, percentile, summarize


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([1.0], 90, 1.0),
        ([1.0, 2.0], 50, 1.5),
        ([3.0, 1.0, 2.0, 4.0], 90, 3.7),
        ([0.0, 10.0], 99, 9.9),
        ([5.0, 1.0], 0, 1.0),
    ],
)
def test_percentiles_interpolate_linearly(values: list[float], q: float, expected: float) -> None:
    assert percentile(values, q) == pytest.approx(expected)


def test_a_distribution_is_in_milliseconds_and_null_when_empty() -> None:
    spread = distribution("e2el", [0.1, 0.2, 0.3])
    assert spread["mean_e2el_ms"] == pytest.approx(200.0)
    assert spread["median_e2el_ms"] == pytest.approx(200.0)
    assert spread["p99_e2el_ms"] == pytest.approx(298.0)
    assert spread["std_e2el_ms"] == pytest.approx(81.6497, rel=1e-4)
    assert set(distribution("ttft", [])) == {
        f"{s}_ttft_ms" for s in ("mean", "median", "std", "p50", "p90", "p99")
    }
    assert set(distribution("ttft", []).values()) == {None}


def _ok(
    latency: float, ttft: float | None, output: int, prompt: int = 10, itl: list[float] | None = None
) -> RequestResult:
    return RequestResult(True, "200", "", latency, ttft, itl or [], prompt, output)


def test_a_streamed_level_summarises_throughput_and_latencies() -> None:
    results = [
        _ok(1.0, 0.2, 5, itl=[0.2, 0.2]),
        _ok(2.0, 0.4, 1),  # one token: no TPOT
        RequestResult(False, "429", "rate limited", 0.05),
        RequestResult(False, "429", "rate limited", 0.05),
        RequestResult(False, "timeout", "no answer", 30.0),
    ]
    summary = summarize(results, 2.0, streamed=True)
    assert (summary["requests"], summary["completed"], summary["failed"]) == (5, 2, 3)
    assert summary["errors_by_status"] == {"429": 2, "timeout": 1}
    assert (summary["total_input_tokens"], summary["total_output_tokens"]) == (20, 6)
    assert summary["request_throughput"] == pytest.approx(1.0)
    assert summary["output_throughput"] == pytest.approx(3.0)
    assert summary["total_token_throughput"] == pytest.approx(13.0)
    assert summary["mean_ttft_ms"] == pytest.approx(300.0)
    assert summary["mean_tpot_ms"] == pytest.approx(200.0)  # (1.0 - 0.2) / 4
    assert summary["mean_itl_ms"] == pytest.approx(200.0)
    assert summary["mean_e2el_ms"] == pytest.approx(1500.0)  # failures do not count


def test_without_streaming_ttft_tpot_and_itl_are_null() -> None:
    summary = summarize([_ok(1.0, 0.2, 5, itl=[0.1])], 0.0, streamed=False)
    assert summary["mean_ttft_ms"] is None
    assert summary["p99_tpot_ms"] is None
    assert summary["median_itl_ms"] is None
    assert summary["mean_e2el_ms"] == pytest.approx(1000.0)
    assert summary["request_throughput"] > 0  # a zero duration does not divide by zero


def test_first_errors_are_distinct_and_bounded() -> None:
    results = [RequestResult(False, "429", "a"), _ok(1, None, 1), RequestResult(False, "429", "a")]
    results += [RequestResult(False, str(s), "b") for s in (500, 502, 503)]
    assert first_errors(results) == ["429: a", "500: b", "502: b"]
    assert first_errors(results, limit=1) == ["429: a"]
    assert first_errors([_ok(1, None, 1)]) == []
