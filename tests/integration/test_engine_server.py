"""The engine-server path end to end: a real `transformers serve` launched by a real worker.

`gpucloud serve` (gateway, Redis queue) and `gpucloud worker --engine openai --engine-option
preset=transformers --source tiny` run as subprocesses, as in production; the worker starts
`transformers serve` on the tiny Llama of `tests/tiny_models.py` (CPU, offline) and proxies jobs
to it. The tests look at the child through the OS (psutil): its listening address, its CPU time
after a cancellation, its death and its successor. The official `openai` SDK is the client, and the
same requests sent straight to the child give the upstream usage to compare with.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import psutil
import pytest

from tests.conftest import create_key
from tests.support import REDIS_URL, Server, Worker, make_server
from tests.tiny_models import make_tiny_llama

MODEL = "tiny-served"
MESSAGES: list[Any] = [{"role": "user", "content": "Hello there, how are you today?"}]


@dataclass
class Platform:
    server: Server
    worker: Worker
    model_dir: Path

    def child(self, timeout_s: float = 60.0) -> psutil.Process:
        """The worker's engine server process, once it listens."""
        assert self.worker.process is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for child in psutil.Process(self.worker.process.pid).children():
                if _listening(child):
                    return child
            time.sleep(0.2)
        raise AssertionError(f"no engine server child:\n{self.worker.logs()[-3000:]}")

    def upstream(self) -> str:
        host, port = _listening(self.child())[0]
        return f"http://{host}:{port}"

    def client(self, key: str | None = None) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.server.v1, api_key=key or self.server.admin_key, max_retries=0)


def _listening(process: psutil.Process) -> list[tuple[str, int]]:
    try:
        return [
            (c.laddr.ip, c.laddr.port)
            for c in process.net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN
        ]
    except psutil.Error:
        return []


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    tmp = tmp_path_factory.mktemp("engine-server")
    models = tmp / "models"
    model_dir = make_tiny_llama(models / "tiny")
    srv = make_server(tmp / "gateway", redis_url=REDIS_URL)
    srv.start()
    try:
        worker = srv.add_worker(
            *("--model", MODEL, "--engine", "openai", "--source", "tiny", "--models-dir", str(models)),
            *("--engine-option", "preset=transformers", "--engine-option", "restart_backoff_s=0.5"),
            *("--slots", "8"),
            name="engine-worker",
        )
        srv.wait_for_model(MODEL, timeout_s=120)
        yield Platform(srv, worker, model_dir)
    finally:
        srv.stop()


def _usage_totals(server: Server, key_id: object, requests: int) -> dict[str, Any]:
    """The key's ledger totals once `requests` rows are there."""
    auth = {"Authorization": f"Bearer {server.admin_key}"}
    deadline = time.monotonic() + 10
    while True:
        r = httpx.get(
            f"{server.base_url}/api/usage", headers=auth, params={"key_id": str(key_id)}, timeout=10
        )
        totals: dict[str, Any] = r.json()["totals"]
        if totals["requests"] >= requests or time.monotonic() > deadline:
            return totals
        time.sleep(0.1)


def test_engine_server_child_is_ready_and_bound_to_loopback(platform: Platform) -> None:
    addresses = _listening(platform.child())
    assert addresses
    assert all(host == "127.0.0.1" for host, _ in addresses), addresses
    assert httpx.get(platform.upstream() + "/health", timeout=5).status_code == 200
    assert "engine server ready" in platform.worker.logs()


def test_engine_server_usage_equals_upstream(platform: Platform) -> None:
    key = create_key(platform.server)
    client = platform.client(str(key["key"]))
    ours = client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=12, temperature=0)
    direct = httpx.post(
        platform.upstream() + "/v1/chat/completions",
        json={"model": str(platform.model_dir), "messages": MESSAGES, "max_tokens": 12, "temperature": 0},
        timeout=60,
    ).json()
    assert ours.usage is not None
    assert ours.usage.prompt_tokens == direct["usage"]["prompt_tokens"]
    assert ours.usage.completion_tokens == direct["usage"]["completion_tokens"]
    assert ours.choices[0].finish_reason == direct["choices"][0]["finish_reason"]

    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=MESSAGES,
            max_tokens=12,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    streamed = [c.usage for c in chunks if c.usage is not None]
    assert streamed == [ours.usage]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

    prompt = "The quick brown fox"
    text = client.completions.create(model=MODEL, prompt=prompt, max_tokens=7, temperature=0)
    upstream = httpx.post(
        platform.upstream() + "/v1/completions",
        json={"model": str(platform.model_dir), "prompt": prompt, "max_tokens": 7, "temperature": 0},
        timeout=60,
    ).json()
    assert text.usage is not None
    assert text.usage.prompt_tokens == upstream["usage"]["prompt_tokens"]
    assert text.usage.completion_tokens == upstream["usage"]["completion_tokens"]

    totals = _usage_totals(platform.server, key["id"], 3)
    assert totals["requests"] == 3
    assert totals["prompt_tokens"] == 2 * ours.usage.prompt_tokens + text.usage.prompt_tokens
    expected = 2 * ours.usage.completion_tokens + text.usage.completion_tokens
    assert totals["completion_tokens"] == expected


def test_engine_server_upstream_4xx_maps_to_our_error(platform: Platform) -> None:
    """A server that refuses the request (here: it is pinned to another model name) is a 400."""
    platform.server.add_worker(
        *("--model", "tiny-misnamed", "--engine", "openai"),
        *("--engine-option", f"url={platform.upstream()}", "--engine-option", "served_model=no-such-model"),
        name="attached-worker",
    )
    platform.server.wait_for_model("tiny-misnamed", timeout_s=60)
    with pytest.raises(openai.BadRequestError) as caught:
        platform.client().chat.completions.create(model="tiny-misnamed", messages=MESSAGES, max_tokens=3)
    error = caught.value.body
    assert isinstance(error, dict)
    assert error["type"] == "invalid_request_error"
    assert "pinned" in caught.value.message
    assert "no-such-model" in caught.value.message
    assert str(platform.model_dir) not in caught.value.message  # no filesystem paths to clients


def test_engine_server_cancellation_closes_the_upstream_stream(platform: Platform) -> None:
    key = create_key(platform.server)
    child = platform.child()
    stream = platform.client(str(key["key"])).chat.completions.create(
        model=MODEL, messages=MESSAGES, max_tokens=20000, stream=True
    )
    received = 0
    for chunk in stream:
        received += bool(chunk.choices and chunk.choices[0].delta.content)
        if received >= 5:
            break
    stream.close()
    time.sleep(1.5)  # the cancellation reaches the worker, which closes its HTTP stream
    before = child.cpu_times()
    time.sleep(1.5)
    after = child.cpu_times()
    busy = (after.user + after.system) - (before.user + before.system)
    assert busy < 0.5, f"the engine server kept generating: {busy:.2f}s of CPU in 1.5s"
    totals = _usage_totals(platform.server, key["id"], 1)
    assert totals["requests"] == 1
    assert 5 <= totals["completion_tokens"] < 20000  # what was generated until the cancel is billed
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(platform.model_dir), local_files_only=True)
    counted = tokenizer.apply_chat_template(
        MESSAGES, add_generation_prompt=True, tokenize=True, return_dict=False
    )
    assert totals["prompt_tokens"] == len(counted)  # the model's tokenizer, as the server counts


def test_engine_server_restarts_a_killed_child(platform: Platform) -> None:
    client = platform.client()
    old = platform.child()
    stream = client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=20000, stream=True)
    next(iter(stream))
    old.kill()
    with pytest.raises(openai.APIError):
        for _ in stream:  # the request in flight ends with an error event
            pass
    answer = client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=4, timeout=90)
    assert answer.usage is not None
    assert answer.usage.completion_tokens > 0
    new = platform.child()
    assert new.pid != old.pid
    assert all(host == "127.0.0.1" for host, _ in _listening(new))
    assert "restarting in" in platform.worker.logs()
