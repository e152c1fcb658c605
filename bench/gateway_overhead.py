"""Gateway overhead: `gpucloud serve` against a bare FastAPI endpoint, side by side in one run.

Every target answers the same non-streamed `POST /v1/chat/completions` (model `gpucloud-sim-1`,
one short user message, `max_tokens=16`) with the same-shaped `chat.completion` JSON:

* bare — `bench/bare_app.py`: FastAPI + a pydantic request model + orjson, under uvicorn with the
  same options (uvloop, httptools, no log config, access log on, log level WARNING). The floor.
* embedded — the real `python -m gpucloud serve` in a subprocess: free port, fresh temporary
  `--data-dir` (SQLite), the in-process queue and local worker with the zero-delay simulated
  engine, log level WARNING, the admin key as Bearer. Every request goes key → limits →
  validation → queue → worker → engine → finalizer → ledger → JSON.
* redis — the same gateway in cluster mode (`--redis-url`, its own key prefix, the database of
  `--database-url` or a SQLite file) with one `gpucloud worker` process serving the model.
* redis2 — as redis, with `serve --workers 2`: two gateway processes on one port.

For each target it measures requests/s, p50 and p99 latency at `--concurrency` (default 32,
`--duration` s after `--warmup` s) and p50/p99 at concurrency 1 (`--c1-duration` s), plus the
server process's CPU time per request (all its threads; steadier than req/s on a shared machine).
Targets are measured alternately (each target in turn, for `--rounds` rounds) so that noise
on this shared machine falls on both; the summary is the median over rounds.

The load generator is `wrk` (one thread, keep-alive, a Lua script for the POST body, the
Authorization header and counting every non-200) when it is on PATH (`apt-get install -y wrk`),
else an httpx.AsyncClient with a keep-alive pool of the concurrency size (HTTP/1.1). The Python
client costs far more CPU per request than wrk, and on a 2-core machine it competes with the
server: its absolute numbers are lower, the output says which generator was used.

Targets: embedded ≥ 1,000 req/s and ≥ 30 % of bare at 32 concurrent, p99 ≤ 50 ms there, ≤ 1 ms
added p50 at 1; redis ≥ 0.8 × embedded req/s and ≤ 1 ms added over embedded at 1; and the
redis2/redis req/s ratio. Server CPU counts the gateway's whole process tree (not the worker).

    python bench/gateway_overhead.py [--duration 10] [--concurrency 32] [--rounds 2]
                                     [--targets bare,embedded,redis,redis2] [--client auto|wrk|python]
                                     [--redis-url URL] [--database-url URL] [--json out.json]

Exit status: 0, or 1 when any request failed (non-200 or a transport error), or when `--check`
is given and a target is missed. Subprocesses are stopped on exit, Ctrl-C and SIGTERM (and get
SIGTERM from the kernel if this process dies).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
MODEL = "gpucloud-sim-1"
BODY = {"model": MODEL, "messages": [{"role": "user", "content": "Say hello in one line."}], "max_tokens": 16}
PATH = "/v1/chat/completions"
TARGET_RATIO = 0.30  # embedded req/s ≥ 30 % of bare at `--concurrency`
TARGET_RPS = 1000.0  # embedded req/s at `--concurrency`
TARGET_P99_MS = 50.0  # embedded p99 at `--concurrency`
TARGET_ADDED_P50_MS = 1.0  # p50 added at concurrency 1 (embedded over bare, redis over embedded)
TARGET_REDIS_RATIO = 0.8  # redis req/s ≥ 80 % of embedded
TARGETS = ("bare", "embedded", "redis", "redis2")
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


# --------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM it when this benchmark process dies (Linux)."""
    os.setsid()  # its own session: a terminal's Ctrl-C reaches only us, and we stop it in order
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Target:
    name: str
    command: list[str]
    env: dict[str, str]
    port: int
    log_path: Path
    headers: dict[str, str] = field(default_factory=dict)
    ready_model: bool = False  # wait until /v1/models lists MODEL
    process: subprocess.Popen[bytes] | None = None
    companions: list[list[str]] = field(default_factory=list)  # e.g. a `gpucloud worker`
    running: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return self.base_url + PATH

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def logs(self, tail: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-tail:] if self.log_path.exists() else ""

    def _spawn(self, command: list[str]) -> subprocess.Popen[bytes]:
        with self.log_path.open("ab") as log:
            return subprocess.Popen(
                command,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
                start_new_session=sys.platform != "linux",
            )

    def start(self, timeout_s: float = 60.0) -> None:
        self.process = self._spawn(self.command)
        self.running = [self._spawn(command) for command in self.companions]
        deadline = time.monotonic() + timeout_s
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.name} server exited early:\n{self.logs()}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(self.base_url + "/ready").status_code == 200 and self._model_listed(client):
                        break
                time.sleep(0.1)
            else:
                raise RuntimeError(f"{self.name} server did not become ready:\n{self.logs()}")
            reply = client.post(self.url, json=BODY, headers=self.headers, timeout=10.0)
            if reply.status_code != 200 or reply.json().get("object") != "chat.completion":
                raise RuntimeError(
                    f"{self.name}: smoke request got {reply.status_code}: {reply.text[:500]}\n{self.logs()}"
                )

    def _model_listed(self, client: httpx.Client) -> bool:
        if not self.ready_model:
            return True
        reply = client.get(self.base_url + "/v1/models", headers=self.headers)
        return reply.status_code == 200 and MODEL in [m["id"] for m in reply.json().get("data", [])]

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server and its child processes (`--workers`), all their
        threads, from Linux /proc; a worker started beside it is not counted."""
        stats: dict[int, list[str]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError, IndexError):
                    stats[int(entry.name)] = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        if self.pid not in stats:
            return float("nan")
        tree, grew = {self.pid}, True
        while grew:
            children = {pid for pid, fields in stats.items() if int(fields[1]) in tree} - tree
            tree |= children
            grew = bool(children)
        # utime, stime (fields 14, 15 of stat)
        return sum(int(stats[pid][11]) + int(stats[pid][12]) for pid in tree) / CLK_TCK

    def stop(self) -> None:
        for companion in self.running:
            if companion.poll() is None:
                companion.send_signal(signal.SIGTERM)
        for companion in self.running:
            try:
                companion.wait(timeout=15)
            except subprocess.TimeoutExpired:
                companion.kill()
        self.running = []
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def make_targets(tmp: Path, redis_url: str, database_url: str | None) -> dict[str, Target]:
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("GPUCLOUD_")}
    base_env["PYTHONUNBUFFERED"] = "1"
    admin = "gc-bench-admin-" + secrets.token_hex(16)
    auth = {"Authorization": f"Bearer {admin}"}
    full_env = {
        **base_env,
        "GPUCLOUD_ADMIN_KEY": admin,
        "GPUCLOUD_LOG_LEVEL": "WARNING",
        "GPUCLOUD_LOCAL_WORKER__TTFT_MS": "0",
        "GPUCLOUD_LOCAL_WORKER__TOKENS_PER_S": "0",
    }
    bare_port = free_port()
    targets = {
        "bare": Target(
            name="bare",
            command=[sys.executable, str(ROOT / "bench" / "bare_app.py"), "--port", str(bare_port)],
            env=base_env,
            port=bare_port,
            log_path=tmp / "bare.log",
            headers=auth,  # sent but not checked: the same bytes on the wire
        ),
        "embedded": _gateway("embedded", tmp, full_env, auth),
    }
    for name, processes in (("redis", 1), ("redis2", 2)):
        env = {
            **full_env,
            "GPUCLOUD_REDIS_URL": redis_url,
            "GPUCLOUD_REDIS_PREFIX": f"gcbench-{name}-{secrets.token_hex(4)}",
        }
        if database_url:
            env["GPUCLOUD_DATABASE_URL"] = database_url
        worker = [sys.executable, "-m", "gpucloud", "worker", "--model", MODEL, "--slots", "64"]
        targets[name] = _gateway(name, tmp, env, auth, processes=processes, companions=[worker])
    return targets


def _gateway(
    name: str,
    tmp: Path,
    env: dict[str, str],
    auth: dict[str, str],
    *,
    processes: int = 1,
    companions: list[list[str]] | None = None,
) -> Target:
    port = free_port()
    command = [sys.executable, "-m", "gpucloud", "serve", "--port", str(port), "--data-dir", str(tmp / name)]
    if processes > 1:
        command += ["--workers", str(processes)]
    return Target(
        name=name,
        command=command,
        env=env,
        port=port,
        log_path=tmp / f"{name}.log",
        headers=auth,
        ready_model=True,
        companions=companions or [],
    )


# --------------------------------------------------------------------------- load generators


@dataclass
class Run:
    """One measured load run against one target."""

    requests: int
    elapsed_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: Counter[str] = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.requests / self.elapsed_s if self.elapsed_s > 0 else 0.0


WRK_LUA = r"""
wrk.method = "POST"
wrk.body = [==[%(body)s]==]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = [==[%(auth)s]==]

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non200 = 0
  sample = ""
end

function response(status, headers, body)
  if status ~= 200 then
    non200 = non200 + 1
    if sample == "" then
      sample = status .. " " .. string.gsub(string.sub(body or "", 1, 300), "%%s+", " ")
    end
  end
end

function done(summary, latency, requests)
  local bad, first = 0, ""
  for _, t in ipairs(threads) do
    bad = bad + t:get("non200")
    local s = t:get("sample")
    if first == "" and s ~= nil then first = s end
  end
  local e = summary.errors
  io.write(string.format("WRK_RESULT %%d %%d %%.1f %%.1f %%.1f %%d %%d %%d %%d %%d %%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout, bad))
  io.write("WRK_SAMPLE " .. first .. "\n")
end
"""


def wrk_version(wrk: str) -> str:
    out = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False)
    first = (out.stdout or out.stderr).strip().splitlines()
    return first[0].split(" [")[0] if first else "wrk"


def run_wrk(wrk: str, script: Path, target: Target, concurrency: int, duration_s: float) -> Run:
    seconds = max(1, round(duration_s))
    command = [wrk, "-t1", f"-c{concurrency}", f"-d{seconds}s", "--timeout", "30s", "-s", str(script)]
    with subprocess.Popen(
        [*command, target.url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            out, err = process.communicate(timeout=seconds + 60)
        except BaseException:
            process.kill()
            process.wait()
            raise
    result = next((line.split()[1:] for line in out.splitlines() if line.startswith("WRK_RESULT ")), None)
    if process.returncode != 0 or result is None:
        raise RuntimeError(f"wrk failed ({process.returncode}):\n{out}\n{err}")
    requests, duration_us = int(result[0]), int(result[1])
    p50, p99, worst = (float(v) / 1000 for v in result[2:5])
    connect, read, write, status, timeout, non200 = (int(v) for v in result[5:11])
    errors: Counter[str] = Counter()
    for name, count in (("connect", connect), ("read", read), ("write", write), ("timeout", timeout)):
        if count:
            errors[f"socket {name}"] += count
    if non200 or status:
        errors["non-200"] += max(non200, status)
    sample = next(
        (line[len("WRK_SAMPLE ") :] for line in out.splitlines() if line.startswith("WRK_SAMPLE ")), ""
    )
    return Run(requests, duration_us / 1e6, p50, p99, worst, errors, [sample] if sample.strip() else [])


async def _python_load(target: Target, concurrency: int, warmup_s: float, duration_s: float) -> Run:
    body = json.dumps(BODY).encode()
    headers = {**target.headers, "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    samples: list[str] = []

    async with httpx.AsyncClient(limits=limits, timeout=30.0) as client:

        async def worker(deadline: float, record: bool) -> None:
            while (start := time.perf_counter()) < deadline:
                try:
                    reply = await client.post(target.url, content=body, headers=headers)
                    if reply.status_code != 200:
                        errors["non-200"] += 1
                        if len(samples) < 5:
                            samples.append(f"{reply.status_code} {reply.text[:300]}")
                except httpx.HTTPError as exc:
                    errors[type(exc).__name__] += 1
                    if len(samples) < 5:
                        samples.append(repr(exc))
                if record:
                    latencies.append(time.perf_counter() - start)

        begin = time.perf_counter()
        await asyncio.gather(*(worker(begin + warmup_s, False) for _ in range(concurrency)))
        begin = time.perf_counter()
        await asyncio.gather(*(worker(begin + duration_s, True) for _ in range(concurrency)))
        elapsed = time.perf_counter() - begin

    ordered = sorted(latencies) or [float("nan")]

    def pct(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return Run(len(latencies), elapsed, pct(0.50), pct(0.99), ordered[-1] * 1000, errors, samples)


def run_python(target: Target, concurrency: int, warmup_s: float, duration_s: float) -> Run:
    runner: Any = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop

        runner = uvloop.run
    result: Run = runner(_python_load(target, concurrency, warmup_s, duration_s))
    return result


# --------------------------------------------------------------------------- measurement


@dataclass
class Measurement:
    round: int
    target: str
    concurrency: int
    run: Run
    cpu_ms_per_request: float
    loadavg_1m: float

    def row(self) -> dict[str, Any]:
        return {
            "round": self.round,
            "target": self.target,
            "concurrency": self.concurrency,
            "requests": self.run.requests,
            "elapsed_s": round(self.run.elapsed_s, 3),
            "rps": round(self.run.rps, 1),
            "p50_ms": round(self.run.p50_ms, 3),
            "p99_ms": round(self.run.p99_ms, 3),
            "max_ms": round(self.run.max_ms, 3),
            "server_cpu_ms_per_request": round(self.cpu_ms_per_request, 4),
            "loadavg_1m_before": self.loadavg_1m,
            "errors": dict(self.run.errors),
            "error_samples": self.run.error_samples,
        }


class Bench:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.wrk = shutil.which("wrk") if args.client in ("auto", "wrk") else None
        if args.client == "wrk" and self.wrk is None:
            raise SystemExit("--client wrk: wrk is not on PATH (apt-get install -y wrk)")
        self.client = f"{wrk_version(self.wrk)} (1 thread)" if self.wrk else "python httpx.AsyncClient"
        self.tmp = tmp
        self.scripts: dict[str, Path] = {}

    def _script(self, target: Target) -> Path:
        if target.name not in self.scripts:
            path = self.tmp / f"{target.name}.lua"
            auth = target.headers.get("Authorization", "")
            path.write_text(WRK_LUA % {"body": json.dumps(BODY), "auth": auth})
            self.scripts[target.name] = path
        return self.scripts[target.name]

    def _load(
        self, target: Target, concurrency: int, warmup_s: float, duration_s: float
    ) -> tuple[Run, float]:
        """Warm up (discarded), then measure; returns the run and the server's CPU ms per request."""
        if self.wrk:
            script = self._script(target)
            if warmup_s > 0:
                warm = run_wrk(self.wrk, script, target, concurrency, warmup_s)
                if warm.errors:
                    print(f"  warm-up errors on {target.name}: {dict(warm.errors)} {warm.error_samples}")
            cpu0 = target.cpu_seconds()
            run = run_wrk(self.wrk, script, target, concurrency, duration_s)
        else:
            # The Python client warms up inside the same pool; its CPU window includes the warm-up.
            cpu0 = target.cpu_seconds()
            run = run_python(target, concurrency, warmup_s, duration_s)
        cpu = target.cpu_seconds() - cpu0
        if not self.wrk:  # CPU was read over warm-up + measurement: keep the measured window's share
            total_s = warmup_s + run.elapsed_s
            run_share = run.elapsed_s / total_s if total_s else 1.0
            cpu *= run_share
        return run, cpu * 1000 / run.requests if run.requests else float("nan")

    def measure(self, round_no: int, target: Target) -> list[Measurement]:
        a = self.args
        out = []
        for concurrency, warmup, duration in ((a.concurrency, a.warmup, a.duration), (1, 1.0, a.c1_duration)):
            load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
            run, cpu_ms = self._load(target, concurrency, warmup, duration)
            m = Measurement(round_no, target.name, concurrency, run, cpu_ms, round(load, 2))
            out.append(m)
            err = f"  errors {dict(run.errors)}" if run.errors else ""
            print(
                f"  round {round_no}  {target.name:<4}  c={concurrency:<3} {run.rps:8.0f} req/s  "
                f"p50 {run.p50_ms:7.2f} ms  p99 {run.p99_ms:7.2f} ms  "
                f"server CPU {cpu_ms:6.3f} ms/req  (load {load:.2f}){err}",
                flush=True,
            )
        return out


def summarise(measurements: list[Measurement], concurrency: int) -> dict[str, Any]:
    def med(target: str, conc: int, attr: str) -> float:
        values = [
            getattr(m.run, attr) if attr != "cpu" else m.cpu_ms_per_request
            for m in measurements
            if m.target == target and m.concurrency == conc
        ]
        return statistics.median(values) if values else float("nan")

    c = concurrency
    summary: dict[str, Any] = {}
    for target in dict.fromkeys(m.target for m in measurements):
        summary[target] = {
            f"c{c}_rps": med(target, c, "rps"),
            f"c{c}_p50_ms": med(target, c, "p50_ms"),
            f"c{c}_p99_ms": med(target, c, "p99_ms"),
            f"c{c}_cpu_ms_per_request": med(target, c, "cpu"),
            "c1_rps": med(target, 1, "rps"),
            "c1_p50_ms": med(target, 1, "p50_ms"),
            "c1_p99_ms": med(target, 1, "p99_ms"),
            "c1_cpu_ms_per_request": med(target, 1, "cpu"),
        }
    summary["comparison"] = _targets(summary, c)
    return summary


def _targets(summary: dict[str, Any], c: int) -> list[dict[str, Any]]:
    """Each target of the issue that the measured targets allow: (name, value, bound, met)."""

    def get(target: str, key: str) -> float | None:
        value = summary.get(target, {}).get(key)
        return None if value is None or value != value else float(value)  # NaN: not measured

    checks: list[tuple[str, float | None, float, bool]] = []  # (what, value, bound, higher is better)
    embedded, bare = get("embedded", f"c{c}_rps"), get("bare", f"c{c}_rps")
    checks.append((f"embedded req/s at c={c}", embedded, TARGET_RPS, True))
    if embedded is not None and bare:
        checks.append((f"embedded / bare req/s at c={c}", embedded / bare, TARGET_RATIO, True))
    checks.append((f"embedded p99 at c={c} (ms)", get("embedded", f"c{c}_p99_ms"), TARGET_P99_MS, False))
    e1, b1 = get("embedded", "c1_p50_ms"), get("bare", "c1_p50_ms")
    if e1 is not None and b1 is not None:
        checks.append(("embedded − bare p50 at c=1 (ms)", e1 - b1, TARGET_ADDED_P50_MS, False))
    redis = get("redis", f"c{c}_rps")
    if redis is not None and embedded:
        checks.append((f"redis / embedded req/s at c={c}", redis / embedded, TARGET_REDIS_RATIO, True))
    r1 = get("redis", "c1_p50_ms")
    if r1 is not None and e1 is not None:
        checks.append(("redis − embedded p50 at c=1 (ms)", r1 - e1, TARGET_ADDED_P50_MS, False))
    redis2 = get("redis2", f"c{c}_rps")
    if redis2 is not None and redis:
        checks.append((f"redis2 / redis req/s at c={c} (2 gateway processes)", redis2 / redis, 0.0, True))
    return [
        {
            "what": what,
            "value": value,
            "bound": bound,
            "met": value is not None and (value >= bound if higher else value <= bound),
        }
        for what, value, bound, higher in checks
        if value is not None
    ]


def print_summary(summary: dict[str, Any], args: argparse.Namespace, client: str) -> None:
    c = args.concurrency
    print()
    print(
        f"gateway overhead — load generator: {client}; median of {args.rounds} alternating round(s); "
        f"c={c}: {args.duration:g} s after {args.warmup:g} s warm-up; c=1: {args.c1_duration:g} s after 1 s"
    )
    head = (
        f"{'target':<9} {'c' + str(c) + ' req/s':>10} {'c' + str(c) + ' p50':>9} {'c' + str(c) + ' p99':>9} "
        f"{'c1 req/s':>9} {'c1 p50':>8} {'c1 p99':>8} {'CPU ms/req':>11}"
    )
    print(head)
    print("-" * len(head))
    for target, s in summary.items():
        if target == "comparison":
            continue
        print(
            f"{target:<9} {s[f'c{c}_rps']:10.0f} {s[f'c{c}_p50_ms']:7.2f}ms {s[f'c{c}_p99_ms']:7.2f}ms "
            f"{s['c1_rps']:9.0f} {s['c1_p50_ms']:6.2f}ms {s['c1_p99_ms']:6.2f}ms "
            f"{s[f'c{c}_cpu_ms_per_request']:11.3f}"
        )
    print()
    for check in summary["comparison"]:
        verdict = "MET" if check["met"] else "NOT MET"
        bound = f"target {'≥' if 'req/s' in check['what'] else '≤'} {check['bound']:g}"
        if check["bound"] == 0.0:
            verdict, bound = "", "(reported)"
        print(f"  {check['what']:<52} {check['value']:10.3f}   {bound} {verdict}")
    if not client.startswith("wrk"):
        print(
            "note: with the Python client the load generator, not the bare server, limits the bare "
            "req/s, which flatters the ratio; install wrk for the real one"
        )


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=10.0, help="seconds measured at --concurrency")
    p.add_argument("--concurrency", type=int, default=32, help="concurrent connections for throughput")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of discarded load before each run")
    p.add_argument("--c1-duration", type=float, default=5.0, help="seconds measured at concurrency 1")
    p.add_argument("--rounds", type=int, default=2, help="rounds, each target in turn")
    p.add_argument("--client", choices=("auto", "wrk", "python"), default="auto", help="load generator")
    p.add_argument("--targets", default=",".join(TARGETS), help="comma-separated, from " + ", ".join(TARGETS))
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0", help="Redis of the redis targets")
    p.add_argument("--database-url", help="database of the redis targets (default: a SQLite file)")
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (server logs, data dir)")
    args = p.parse_args(argv)
    if args.concurrency < 1 or args.rounds < 1 or args.duration <= 0 or args.c1_duration <= 0:
        p.error("--concurrency and --rounds must be ≥ 1, durations > 0")
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    if not args.targets or set(args.targets) - set(TARGETS):
        p.error(f"--targets: choose from {', '.join(TARGETS)}")
    return args


def _sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # unwinds through the `finally` that stops the servers


def run_rounds(args: argparse.Namespace, bench: Bench, targets: dict[str, Target]) -> list[Measurement]:
    """Starts the chosen servers, then measures each in turn, round after round."""
    print(
        f"python {platform.python_version()} on {os.cpu_count()} CPU(s); load generator: {bench.client}",
        flush=True,
    )
    for name in args.targets:
        targets[name].start()
        print(f"{name} server ready on :{targets[name].port} (pid {targets[name].pid})", flush=True)
    measurements: list[Measurement] = []
    for round_no in range(1, args.rounds + 1):
        for name in args.targets:
            measurements.extend(bench.measure(round_no, targets[name]))
    return measurements


def report_errors(measurements: list[Measurement]) -> bool:
    """Prints the non-200 answers (True when there were any) or the count of measured responses."""
    errors = [m for m in measurements if m.run.errors]
    if not errors:
        total = sum(m.run.requests for m in measurements)
        print(f"\nall {total} measured responses were 200")
        return False
    print("\nERRORS (every response must be 200):")
    for m in errors:
        print(f"  round {m.round} {m.target} c={m.concurrency}: {dict(m.run.errors)}")
        for sample in m.run.error_samples:
            print(f"    e.g. {sample}")
    return True


def result_document(args: argparse.Namespace, client: str, measurements: list[Measurement]) -> dict[str, Any]:
    """The --json document: settings, machine and every run (the summary is added by the caller)."""
    return {
        "load_generator": client,
        "settings": {
            "duration_s": args.duration,
            "concurrency": args.concurrency,
            "warmup_s": args.warmup,
            "c1_duration_s": args.c1_duration,
            "rounds": args.rounds,
            "body": BODY,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "runs": [m.row() for m in measurements],
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored
    tmp = Path(tempfile.mkdtemp(prefix="gc-gateway-bench-"))
    targets = make_targets(tmp, args.redis_url, args.database_url)
    try:
        bench = Bench(args, tmp)
        measurements = run_rounds(args, bench, targets)
    except KeyboardInterrupt:
        print("\ninterrupted: stopping servers", file=sys.stderr)
        return 130
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        for target in targets.values():
            target.stop()
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    failed = report_errors(measurements)
    result = result_document(args, bench.client, measurements)
    summary = summarise(measurements, args.concurrency)
    result["summary"] = summary
    print_summary(summary, args, bench.client)
    if args.check and not all(check["met"] for check in summary["comparison"]):
        failed = True
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str) + "\n")
        print(f"wrote {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
