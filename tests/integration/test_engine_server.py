"""The engine-server path end to end: a real `transformers serve` launched by a real worker.

`gpucloud serve` (gateway, Redis queue) and `gpucloud worker --engine openai --engine-option
preset=transformers --source tiny` run as subprocesses, as in production; the worker starts
`transformers serve` on the tiny Llama of `tests/tiny_models.py` (CPU, offline) and proxies jobs
to it. The tests look at the child through the OS (psutil): its listening address, its CPU time
after a cancellation, its death and its successor. The official `openai` SDK is the client, and the
same requests sent straight to the child give the upstream usage to compare with.

A second model reaches the same child through a recording proxy (test code, loopback): a worker
attached to the proxy's URL with the transformers preset. What the client sends must arrive in
the body the child gets, what the child answers must be what the client gets, what the preset says
`transformers serve` ignores must be refused before it gets there, and an error the child reports
must come back as an OpenAI error carrying its message.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import openai
import psutil
import pytest

from tests.conftest import create_key
from tests.integration.test_openai_conformance import conforms
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


# pass-through to the real server, through a recording proxy ------------------------------------

PROXIED = "tiny-proxied"
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
        },
    }
]


@dataclass
class Exchange:
    path: str
    body: dict[str, Any]
    status: int
    answer: bytes  # the server's body, as it sent it


@dataclass
class RecordingProxy:
    """A loopback HTTP proxy to the engine server: each POST's body and the server's answer are
    recorded, and everything is relayed unchanged. The server is looked up at each request, so
    that a restarted child (on a new port) is followed."""

    upstream: Callable[[], str]
    exchanges: list[Exchange] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    def start(self) -> RecordingProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep the test output quiet
                pass

            def do_GET(self) -> None:
                self._relay(httpx.get(proxy.upstream() + self.path, timeout=30))

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["content-length"]))
                headers = {"content-type": self.headers.get("content-type", "application/json")}
                answer = httpx.post(proxy.upstream() + self.path, content=raw, headers=headers, timeout=120)
                proxy.exchanges.append(
                    Exchange(self.path, json.loads(raw), answer.status_code, answer.content)
                )
                self._relay(answer)

            def _relay(self, answer: httpx.Response) -> None:
                self.send_response(answer.status_code)
                self.send_header("content-type", answer.headers.get("content-type", "application/json"))
                self.send_header("content-length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()

    def posted(self, since: int) -> list[Exchange]:
        return [e for e in self.exchanges[since:] if e.path.startswith("/v1/")]


def _upstream_events(answer: bytes) -> list[dict[str, Any]]:
    lines = answer.decode().splitlines()
    return [json.loads(line[6:]) for line in lines if line.startswith("data: ") and line != "data: [DONE]"]


@pytest.fixture(scope="module")
def proxy(platform: Platform) -> Iterator[RecordingProxy]:
    """The proxy, and a worker serving PROXIED through it: `transformers serve`'s preset (its
    capabilities), attached by URL, without the model's directory (so no tokenizer of its own)."""
    recorder = RecordingProxy(platform.upstream).start()
    try:
        platform.server.add_worker(
            *("--model", PROXIED, "--engine", "openai", "--engine-option", "preset=transformers"),
            *(
                "--engine-option",
                f"url={recorder.url}",
                "--engine-option",
                f"served_model={platform.model_dir}",
            ),
            name="proxied-worker",
        )
        platform.server.wait_for_model(PROXIED, timeout_s=60)
        yield recorder
    finally:
        recorder.stop()


def test_parameters_reach_a_real_transformers_serve_and_its_answer_comes_back(
    platform: Platform, proxy: RecordingProxy
) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(platform.model_dir), local_files_only=True)
    biased = tokenizer.encode(" river", add_special_tokens=False)[0]
    # What the transformers preset declares: tools (rendered, called as the model sees fit),
    # logit_bias and seed; stop, temperature and user pass too.
    sent: dict[str, Any] = {
        "tools": TOOLS,
        "tool_choice": "auto",
        "logit_bias": {str(biased): 100},
        "seed": 5,
        "stop": ["never written"],
        "user": "end-user-1",
    }
    since = len(proxy.exchanges)
    raw = platform.client().chat.completions.with_raw_response.create(
        model=PROXIED, messages=MESSAGES, max_tokens=6, temperature=0, **sent
    )
    conforms(raw.http_response.json(), "CreateChatCompletionResponse")
    answer = raw.parse()
    (exchange,) = proxy.posted(since)
    assert exchange.path == "/v1/chat/completions"
    for name, value in sent.items():
        assert exchange.body[name] == value, name
    assert exchange.body["model"] == str(platform.model_dir)
    assert (exchange.body["max_tokens"], exchange.body["temperature"]) == (6, 0)
    assert exchange.body["messages"] == MESSAGES

    # The answer is the server's: its text, its finish reason, its usage.
    events = _upstream_events(exchange.answer)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in events if c.get("choices"))
    (usage,) = [c["usage"] for c in events if c.get("usage")]
    assert answer.choices[0].message.content == text
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (
        usage["prompt_tokens"],
        usage["completion_tokens"],
    )
    # ...and shows the parameters at work: the bias wins every greedy step, and the prompt the
    # server counted is the conversation with the tools rendered by the model's chat template.
    assert text == tokenizer.decode([biased]) * 6
    template: dict[str, Any] = {"add_generation_prompt": True, "tokenize": True, "return_dict": False}
    with_tools = tokenizer.apply_chat_template(MESSAGES, tools=TOOLS, **template)
    plain = tokenizer.apply_chat_template(MESSAGES, **template)
    assert usage["prompt_tokens"] == len(with_tools) > len(plain)

    # A response goes up as the same chat request, its tools in chat's shape.
    since = len(proxy.exchanges)
    tool: Any = {"type": "function", "name": "lookup", "parameters": TOOLS[0]["function"]["parameters"]}
    response = platform.client().responses.create(
        model=PROXIED, input=MESSAGES[0]["content"], tools=[tool], max_output_tokens=16
    )
    (exchange,) = proxy.posted(since)
    assert exchange.body["tools"] == TOOLS
    assert exchange.body["max_tokens"] == 16
    (usage,) = [c["usage"] for c in _upstream_events(exchange.answer) if c.get("usage")]
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (
        usage["prompt_tokens"],
        usage["completion_tokens"],
    )


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"tools": TOOLS, "tool_choice": "required"}, "tool_choice"),
        (
            {"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "lookup"}}},
            "tool_choice",
        ),
        ({"tools": TOOLS, "parallel_tool_calls": False}, "parallel_tool_calls"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"logprobs": True, "top_logprobs": 2}, "logprobs"),
        ({"presence_penalty": 0.5}, "presence_penalty"),
        ({"frequency_penalty": 0.5}, "frequency_penalty"),
    ],
)
def test_what_transformers_serve_would_ignore_is_refused_before_it(
    platform: Platform, proxy: RecordingProxy, extra: dict[str, Any], param: str
) -> None:
    """`transformers serve` accepts these and drops them (its UNUSED_CHAT_COMPLETION_FIELDS): the
    gateway refuses them by name instead, and the server never sees the request."""
    since = len(proxy.exchanges)
    with pytest.raises(openai.BadRequestError) as caught:
        platform.client().chat.completions.create(model=PROXIED, messages=MESSAGES, max_tokens=3, **extra)
    assert (caught.value.param, caught.value.code) == (param, "unsupported_parameter")
    assert proxy.posted(since) == []


def test_responses_refuse_what_transformers_serve_would_ignore(
    platform: Platform, proxy: RecordingProxy
) -> None:
    since = len(proxy.exchanges)
    tool: Any = {"type": "function", "name": "lookup", "parameters": TOOLS[0]["function"]["parameters"]}
    refusals: list[tuple[dict[str, Any], str]] = [
        ({"text": {"format": {"type": "json_object"}}}, "text.format"),
        ({"include": ["message.output_text.logprobs"], "top_logprobs": 2}, "include"),
        ({"tools": [tool], "tool_choice": "required"}, "tool_choice"),
    ]
    for extra, param in refusals:
        with pytest.raises(openai.BadRequestError) as caught:
            platform.client().responses.create(model=PROXIED, input="hi", extra_body=extra)
        assert (caught.value.param, caught.value.code) == (param, "unsupported_parameter")
    assert proxy.posted(since) == []


def test_an_error_the_server_reports_comes_back_as_an_openai_error(
    platform: Platform, proxy: RecordingProxy
) -> None:
    """A token beyond the vocabulary in `logit_bias`: `transformers serve` fails it mid-stream
    (HTTP 200, then `data: {"error": ...}`), which cannot be told from its own failure, so it
    comes back as a server error carrying the server's message; a worker that has the model's
    directory knows the vocabulary and refuses it first, naming the parameter."""
    since = len(proxy.exchanges)
    with pytest.raises(openai.InternalServerError) as failed:
        platform.client().chat.completions.create(
            model=PROXIED, messages=MESSAGES, max_tokens=3, logit_bias={"100000": 5}
        )
    (exchange,) = proxy.posted(since)
    (reported,) = [e["error"] for e in _upstream_events(exchange.answer) if "error" in e]
    error = failed.value.body
    assert isinstance(error, dict)
    assert error["type"] == "server_error"
    assert reported in error["message"]  # the server's own words, as it said them
    conforms({"error": error}, "ErrorResponse")

    with pytest.raises(openai.BadRequestError) as refused:
        platform.client().chat.completions.create(
            model=MODEL, messages=MESSAGES, max_tokens=3, logit_bias={"100000": 5}
        )
    assert (refused.value.param, refused.value.code) == ("logit_bias", "invalid_value")
    assert "vocabulary" in refused.value.message
