"""What several benchmark scripts share: percentiles and a closed loop of interactive chat
completions, timed per request and reported as p50/p99.

The percentile is the product's own (`gpucloud bench`'s, numpy's linear one), so every figure in
the README is computed the same way.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import httpx

from gpucloud.bench.metrics import percentile as _percentile

MESSAGES = [{"role": "user", "content": "hello there"}]


def percentile(values: list[float], q: float) -> float:
    """The `q` quantile (0–1) of `values`; NaN when there are none."""
    return _percentile(values, q * 100) if values else float("nan")


def chat_body(model: str, max_tokens: int = 16) -> dict[str, Any]:
    return {"model": model, "messages": MESSAGES, "max_tokens": max_tokens}


async def interactive(
    base_url: str, api_key: str, model: str, stop: threading.Event | float, concurrency: int
) -> list[float]:
    """Latencies (ms) of chat completions sent `concurrency` at a time (each loop sends its next
    when its last is answered), for `stop` seconds or until the event `stop` is set."""
    body = chat_body(model)
    samples: list[float] = []
    end = time.monotonic() + stop if isinstance(stop, float) else float("inf")

    def done() -> bool:
        return time.monotonic() >= end or (isinstance(stop, threading.Event) and stop.is_set())

    headers = {"Authorization": f"Bearer {api_key}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60) as client:

        async def loop() -> None:
            while not done():
                start = time.perf_counter()
                (await client.post("/chat/completions", json=body)).raise_for_status()
                samples.append((time.perf_counter() - start) * 1000)

        await asyncio.gather(*(loop() for _ in range(concurrency)))
    return samples


def report(name: str, samples: list[float], width: int = 22) -> dict[str, float]:
    """Print and return the samples' count, p50 and p99 (ms)."""
    row = {"n": len(samples), "p50_ms": percentile(samples, 0.5), "p99_ms": percentile(samples, 0.99)}
    print(f"{name:>{width}}: n={row['n']:6d}  p50={row['p50_ms']:7.1f} ms  p99={row['p99_ms']:7.1f} ms")
    return row
