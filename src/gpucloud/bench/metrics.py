"""A level's results in vLLM's benchmark terms (`benchmark_serving`'s names, in milliseconds):

- `ttft`: time to first token, per streamed request;
- `tpot`: time per output token after the first, `(e2el - ttft) / (output_tokens - 1)`, per request
  with more than one output token;
- `itl`: inter-token latency, every gap between chunks of every request;
- `e2el`: end-to-end latency, per successful request;
- `request_throughput` (completed / duration), `output_throughput` (output tokens / duration) and
  `total_token_throughput` ((input + output) / duration), over the level's wall time.

Each latency has `mean_`, `median_`, `std_`, `p50_`, `p90_` and `p99_` (linear interpolation, as
numpy's default). Without streaming there is no TTFT, TPOT or ITL: those are null.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Sequence
from typing import Any

from gpucloud.bench.client import RequestResult

PERCENTILES = (50, 90, 99)
LATENCIES = ("ttft", "tpot", "itl", "e2el")


def percentile(values: Sequence[float], q: float) -> float:
    """numpy's default ("linear") percentile of `values`, q in [0, 100]."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def distribution(name: str, seconds: Sequence[float]) -> dict[str, float | None]:
    """`mean_<name>_ms`, `median_…`, `std_…` and `p<q>_…` of `seconds`, in ms (null when empty)."""
    ms = [s * 1000 for s in seconds]
    keys = [f"mean_{name}_ms", f"median_{name}_ms", f"std_{name}_ms"]
    keys += [f"p{q}_{name}_ms" for q in PERCENTILES]
    if not ms:
        return dict.fromkeys(keys, None)
    values = [statistics.fmean(ms), statistics.median(ms), statistics.pstdev(ms)]
    values += [percentile(ms, q) for q in PERCENTILES]
    return dict(zip(keys, values, strict=True))


def summarize(results: Sequence[RequestResult], duration_s: float, streamed: bool) -> dict[str, Any]:
    done = [r for r in results if r.ok]
    input_tokens = sum(r.prompt_tokens or 0 for r in done)
    output_tokens = sum(r.output_tokens for r in done)
    duration = max(duration_s, 1e-9)
    summary: dict[str, Any] = {
        "requests": len(results),
        "completed": len(done),
        "failed": len(results) - len(done),
        "errors_by_status": dict(Counter(r.status for r in results if not r.ok)),
        "duration_s": duration_s,
        "total_input_tokens": input_tokens,
        "total_output_tokens": output_tokens,
        "request_throughput": len(done) / duration,
        "output_throughput": output_tokens / duration,
        "total_token_throughput": (input_tokens + output_tokens) / duration,
    }
    ttft = [r.ttft_s for r in done if r.ttft_s is not None] if streamed else []
    tpot = [_tpot(r) for r in done if streamed and r.ttft_s is not None and r.output_tokens > 1]
    itl = [gap for r in done for gap in r.itl_s] if streamed else []
    summary.update(distribution("ttft", ttft))
    summary.update(distribution("tpot", tpot))
    summary.update(distribution("itl", itl))
    summary.update(distribution("e2el", [r.latency_s for r in done]))
    return summary


def _tpot(result: RequestResult) -> float:
    assert result.ttft_s is not None
    return (result.latency_s - result.ttft_s) / (result.output_tokens - 1)


def first_errors(results: Sequence[RequestResult], limit: int = 3) -> list[str]:
    """A few distinct error messages, for the operator to see why requests failed."""
    seen: list[str] = []
    for result in results:
        line = f"{result.status}: {result.error}"
        if not result.ok and line not in seen:
            seen.append(line)
        if len(seen) == limit:
            break
    return seen
