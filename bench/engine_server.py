"""Engine-server benchmark: the platform's overhead over calling the same engine server directly.

One run starts a gateway on the Redis queue and a `gpucloud worker --engine openai
--engine-option preset=transformers` that launches `transformers serve` on the tiny Llama of
`tests/tiny_models.py` (CPU). Then, alternating in rounds so that the machine's noise falls on
both alike, it sends the same non-streamed chat completion (greedy, `max_tokens` tokens) to:

- **direct**: the engine server itself (found through the worker's child process);
- **direct-stream**: the same, streamed, as the worker's proxy always asks (the server's own
  cost of streaming, so that the platform's share of the difference can be told apart);
- **platform**: the gateway, with an API key: admission, the job row, the queue, the worker's
  streamed proxy request, the finalizer's ledger write, the answer.

and reports, per target and concurrency, latency p50/p90 and completion tokens per second
(tokens the server reported, over wall time).

    python bench/engine_server.py [--requests 40] [--max-tokens 32] [--concurrency 1 4] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import REDIS_URL, Server, make_server  # noqa: E402 - the repository's own harness
from tests.tiny_models import make_tiny_llama  # noqa: E402

from bench.common import percentile  # noqa: E402

MODEL = "bench-tiny"
MESSAGES = [{"role": "user", "content": "Tell me a short story about the river and the city."}]


def start_platform(tmp: Path, hidden_size: int) -> tuple[Server, str, str]:
    """The gateway, its worker, and the URL of the worker's engine server; and the upstream name."""
    model_dir = make_tiny_llama(tmp / "models" / "tiny", hidden_size=hidden_size)
    srv = make_server(tmp / "gateway", redis_url=REDIS_URL, env={"GPUCLOUD_LOG_LEVEL": "WARNING"})
    srv.start()
    worker = srv.add_worker(
        *("--model", MODEL, "--engine", "openai", "--source", "tiny", "--models-dir", str(tmp / "models")),
        *("--engine-option", "preset=transformers", "--slots", "16"),
    )
    srv.wait_for_model(MODEL, timeout_s=180)
    assert worker.process is not None
    for child in psutil.Process(worker.process.pid).children():
        ports = [c.laddr.port for c in child.net_connections("inet") if c.status == psutil.CONN_LISTEN]
        if ports:
            return srv, f"http://127.0.0.1:{ports[0]}", str(model_dir)
    raise RuntimeError("the worker's engine server was not found")


async def one(client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> tuple[float, int]:
    started = time.perf_counter()
    if not body.get("stream"):
        response = await client.post(url, json=body)
        response.raise_for_status()
        return time.perf_counter() - started, int(response.json()["usage"]["completion_tokens"])
    tokens = 0
    async with client.stream("POST", url, json=body) as streamed:
        streamed.raise_for_status()
        async for line in streamed.aiter_lines():
            if line.startswith("data: {") and '"usage"' in line:
                usage = json.loads(line[6:]).get("usage")
                tokens = int(usage["completion_tokens"]) if usage else tokens
    return time.perf_counter() - started, tokens


async def burst(
    client: httpx.AsyncClient, url: str, body: dict[str, Any], count: int, concurrency: int
) -> dict[str, list[float] | float]:
    """`count` requests, `concurrency` at a time: latencies, tokens and wall time."""
    latencies: list[float] = []
    tokens = 0
    queue = list(range(count))

    async def runner() -> None:
        nonlocal tokens
        while queue:
            queue.pop()
            latency, generated = await one(client, url, body)
            latencies.append(latency)
            tokens += generated

    started = time.perf_counter()
    await asyncio.gather(*(runner() for _ in range(concurrency)))
    return {"latencies": latencies, "tokens": float(tokens), "wall": time.perf_counter() - started}


async def measure(
    srv: Server, upstream: str, upstream_model: str, args: argparse.Namespace
) -> dict[str, Any]:
    common = {"messages": MESSAGES, "max_tokens": args.max_tokens, "temperature": 0}
    targets = {
        "direct": (f"{upstream}/v1/chat/completions", {"model": upstream_model, **common}, {}),
        # what the worker's proxy asks of the server: streamed (the server's own cost of SSE)
        "direct-stream": (
            f"{upstream}/v1/chat/completions",
            {"model": upstream_model, "stream": True, **common},
            {},
        ),
        "platform": (
            f"{srv.v1}/chat/completions",
            {"model": MODEL, **common},
            {"Authorization": f"Bearer {srv.admin_key}"},
        ),
    }
    results: dict[str, Any] = {}
    for concurrency in args.concurrency:
        merged: dict[str, dict[str, Any]] = {
            n: {"latencies": [], "tokens": 0.0, "wall": 0.0} for n in targets
        }
        per_round = max(1, args.requests // args.rounds)
        for _ in range(args.rounds):
            for name, (url, body, headers) in targets.items():
                async with httpx.AsyncClient(headers=headers, timeout=120) as client:
                    await one(client, url, body)  # warm the connection and the path
                    got = await burst(client, url, body, per_round, concurrency)
                merged[name]["latencies"] += got["latencies"]
                merged[name]["tokens"] += got["tokens"]
                merged[name]["wall"] += got["wall"]
        for name, tally in merged.items():
            results[f"{name} c={concurrency}"] = {
                "requests": len(tally["latencies"]),
                "p50_ms": round(percentile(tally["latencies"], 0.5) * 1000, 2),
                "p90_ms": round(percentile(tally["latencies"], 0.9) * 1000, 2),
                "tokens_per_s": round(tally["tokens"] / tally["wall"], 1),
            }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=40, help="requests per target and concurrency")
    parser.add_argument("--rounds", type=int, default=4, help="alternations between the targets")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--hidden-size", type=int, default=32, help="the tiny model's width")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gpucloud-bench-") as tmp:
        srv, upstream, upstream_model = start_platform(Path(tmp), args.hidden_size)
        try:
            results = asyncio.run(measure(srv, upstream, upstream_model, args))
        finally:
            srv.stop()
    print(f"{'target':<20}{'requests':>9}{'p50 ms':>10}{'p90 ms':>10}{'tokens/s':>10}")
    for name, row in results.items():
        print(
            f"{name:<20}{row['requests']:>9}{row['p50_ms']:>10}{row['p90_ms']:>10}{row['tokens_per_s']:>10}"
        )
    for concurrency in args.concurrency:
        direct, ours = results[f"direct c={concurrency}"], results[f"platform c={concurrency}"]
        print(
            f"c={concurrency}: platform adds {ours['p50_ms'] - direct['p50_ms']:+.2f} ms at p50; "
            f"tokens/s {ours['tokens_per_s'] / direct['tokens_per_s']:.2f} x direct"
        )
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
