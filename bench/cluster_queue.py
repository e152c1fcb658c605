"""Cluster-mode benchmark: the Redis queue against the in-process one, worker scaling, recovery.

Three measurements, each side by side in one run (this machine is shared and noisy):

1. Added latency of the Redis path: p50/p99 of non-streamed chat completions at concurrency 1
   through an embedded gateway (in-process queue and worker) and through a cluster gateway (Redis
   queue, a separate `gpucloud worker` process), both with the zero-delay simulated engine.
2. Jobs/s through one gateway with 1, 2 and 4 workers of fixed capacity (each worker: `--slots`
   jobs at once, every job `--job-tokens` tokens at `--tokens-per-s`), against N × one worker.
3. Recovery: time from a worker's SIGKILL to its in-flight jobs starting again on another worker.

    python bench/cluster_queue.py [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import REDIS_URL, Server, make_server  # noqa: E402 - the repository's own harness

from bench.common import percentile  # noqa: E402

MODEL = "bench-sim"
BODY = {"model": MODEL, "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 16}


def server(tmp: Path, *, cluster: bool, extra_env: dict[str, str] | None = None) -> Server:
    env = {"GPUCLOUD_LOG_LEVEL": "WARNING", "GPUCLOUD_LOCAL_WORKER__MODELS": json.dumps([MODEL])}
    env.update(extra_env or {})
    srv = make_server(tmp, redis_url=REDIS_URL if cluster else None, env=env)
    srv.start()
    return srv


async def latency(srv: Server, seconds: float) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {srv.admin_key}"}
    samples: list[float] = []
    async with httpx.AsyncClient(base_url=srv.v1, headers=headers, timeout=30) as client:
        for _ in range(50):  # warm-up
            (await client.post("/chat/completions", json=BODY)).raise_for_status()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            start = time.perf_counter()
            (await client.post("/chat/completions", json=BODY)).raise_for_status()
            samples.append((time.perf_counter() - start) * 1000)
    return {"p50_ms": percentile(samples, 0.5), "p99_ms": percentile(samples, 0.99), "n": len(samples)}


async def throughput(srv: Server, body: dict[str, Any], concurrency: int, seconds: float) -> float:
    headers = {"Authorization": f"Bearer {srv.admin_key}"}
    done = 0
    end = time.monotonic() + seconds

    async def loop(client: httpx.AsyncClient) -> None:
        nonlocal done
        while time.monotonic() < end:
            (await client.post("/chat/completions", json=body)).raise_for_status()
            done += 1

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=srv.v1, headers=headers, timeout=60, limits=limits) as client:
        start = time.monotonic()
        await asyncio.gather(*(loop(client) for _ in range(concurrency)))
        return done / (time.monotonic() - start)


def worker_args(args: argparse.Namespace) -> list[str]:
    return [
        "--model",
        MODEL,
        "--slots",
        str(args.slots),
        "--engine-option",
        f"tokens_per_s={args.tokens_per_s}",
        "--engine-option",
        "natural_end=false",
    ]


def scaling(args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    body = {**BODY, "max_tokens": args.job_tokens}
    results: dict[str, float] = {}
    srv = server(tmp / "scaling", cluster=True)
    try:
        for count in (1, 2, 4):
            while len(srv.workers) < count:
                srv.add_worker(*worker_args(args), name=f"scale-{len(srv.workers)}")
            time.sleep(3)  # every worker announced and polling
            concurrency = count * args.slots * 2  # enough to keep every slot busy
            results[str(count)] = asyncio.run(throughput(srv, body, concurrency, args.duration))
    finally:
        srv.stop()
    return results


def recovery(args: argparse.Namespace, tmp: Path) -> float:
    """Seconds from SIGKILL of the worker holding a job to that job starting on the other worker."""
    env = {"GPUCLOUD_QUEUE__LEASE_TIMEOUT_S": str(args.lease_timeout)}
    srv = server(tmp / "recovery", cluster=True, extra_env=env)
    try:
        victim = srv.add_worker(
            "--model",
            MODEL,
            "--slots",
            "1",
            "--engine-option",
            "tokens_per_s=5",
            "--engine-option",
            "natural_end=false",
            "--worker-id",
            "victim",
        )
        srv.wait_for_model(MODEL)
        headers = {"Authorization": f"Bearer {srv.admin_key}"}
        job = httpx.post(
            f"{srv.v1}/jobs",
            headers=headers,
            json={"endpoint": "chat.completions", **BODY, "max_tokens": 200},
        ).json()["id"]
        while httpx.get(f"{srv.v1}/jobs/{job}", headers=headers).json()["status"] != "running":
            time.sleep(0.02)
        srv.add_worker("--model", MODEL, "--slots", "1", "--worker-id", "rescuer")
        time.sleep(1.0)  # the rescuer is up and polling before the crash
        killed = time.monotonic()
        victim.signal(signal.SIGKILL)
        while True:
            view = httpx.get(f"{srv.v1}/jobs/{job}", headers=headers).json()
            if view["attempts"] >= 2:
                return time.monotonic() - killed
            time.sleep(0.02)
    finally:
        srv.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per throughput point")
    parser.add_argument("--latency-seconds", type=float, default=6.0)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--job-tokens", type=int, default=20)
    parser.add_argument("--tokens-per-s", type=float, default=100.0)
    parser.add_argument("--lease-timeout", type=float, default=6.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gpucloud-bench-"))
    try:
        embedded = server(tmp / "embedded", cluster=False)
        cluster = server(tmp / "cluster", cluster=True)
        cluster.add_worker("--model", MODEL, "--slots", "64")
        cluster.wait_for_model(MODEL)
        try:
            lat_e = asyncio.run(latency(embedded, args.latency_seconds))
            lat_c = asyncio.run(latency(cluster, args.latency_seconds))
        finally:
            embedded.stop()
            cluster.stop()
        scale = scaling(args, tmp)
        rec = recovery(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    one = scale["1"]
    report = {
        "latency_embedded": lat_e,
        "latency_cluster": lat_c,
        "added_p50_ms": lat_c["p50_ms"] - lat_e["p50_ms"],
        "jobs_per_s": scale,
        "scaling_efficiency": {n: scale[n] / (int(n) * one) for n in scale},
        "recovery_s": rec,
        "worker_capacity_jobs_per_s": args.slots * args.tokens_per_s / args.job_tokens,
    }
    print(f"latency c=1   embedded p50 {lat_e['p50_ms']:.2f} ms  p99 {lat_e['p99_ms']:.2f} ms")
    print(
        f"              cluster  p50 {lat_c['p50_ms']:.2f} ms  p99 {lat_c['p99_ms']:.2f} ms"
        f"  (added p50 {report['added_p50_ms']:.2f} ms; target <= 1 ms)"
    )
    for n, rate in scale.items():
        eff = rate / (int(n) * one)
        print(f"workers {n}: {rate:7.1f} jobs/s   {eff:.2f} x N x one worker (target >= 0.9)")
    print(f"recovery after SIGKILL: {rec:.2f} s (lease timeout {args.lease_timeout} s; target <= 10 s)")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
