"""An engine server receives the optional OpenAI parameters, and its tool calls come back intact.

A small real HTTP server in this process plays the engine server: it records every request body
and answers in OpenAI's streamed chunk format (tool-call pieces, logprobs, usage). A real
`gpucloud serve` and `gpucloud worker --engine openai --engine-option url=...` sit in front of it;
the `openai` SDK is the client. The recorded bodies must hold each parameter as the client sent
it, and the client must get the server's tool calls (plain and streamed) and logprobs.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import openai
import pytest

from tests.support import REDIS_URL, Server, make_server

MODEL = "recorded-model"
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
        },
    }
]
ARGUMENT_PIECES = ['{"q', '": "riv', 'ers"}']


def _chunk(choice: dict[str, Any], usage: dict[str, int] | None = None) -> bytes:
    body: dict[str, Any] = {"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    body["choices"] = [choice] if choice else []
    if usage is not None:
        body["usage"] = usage
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def _tool_answer() -> list[bytes]:
    first = {
        "index": 0,
        "id": "call_up1",
        "type": "function",
        "function": {"name": "lookup", "arguments": ""},
    }
    out = [_chunk({"index": 0, "delta": {"role": "assistant", "tool_calls": [first]}, "finish_reason": None})]
    for piece in ARGUMENT_PIECES:
        call = {"index": 0, "function": {"arguments": piece}}
        out.append(_chunk({"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": None}))
    out.append(_chunk({"index": 0, "delta": {}, "finish_reason": "tool_calls"}))
    return out


def _text_answer() -> list[bytes]:
    out = []
    for token, logprob in (("Hello", -0.5), (" world", -1.25)):
        entry = {"token": token, "logprob": logprob, "bytes": list(token.encode())}
        logprobs = {"content": [{**entry, "top_logprobs": [entry]}], "refusal": None}
        choice = {"index": 0, "delta": {"content": token}, "logprobs": logprobs, "finish_reason": None}
        out.append(_chunk(choice))
    out.append(_chunk({"index": 0, "delta": {}, "finish_reason": "stop"}))
    return out


class _Recorder(BaseHTTPRequestHandler):
    bodies: ClassVar[list[dict[str, Any]]] = []

    def log_message(self, *args: Any) -> None:  # keep the test output quiet
        pass

    def do_GET(self) -> None:
        self._send(200, "application/json", [b'{"object": "list", "data": []}'])

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        self.bodies.append(body)
        chunks = _tool_answer() if body.get("tools") and body.get("tool_choice") != "none" else _text_answer()
        usage = {"prompt_tokens": 11, "completion_tokens": len(chunks) - 1, "total_tokens": 10 + len(chunks)}
        self._send(200, "text/event-stream", [*chunks, _chunk({}, usage), b"data: [DONE]\n\n"])

    def _send(self, status: int, media: str, parts: list[bytes]) -> None:
        payload = b"".join(parts)
        self.send_response(status)
        self.send_header("content-type", media)
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def gateway(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = make_server(tmp_path_factory.mktemp("passthrough"), redis_url=REDIS_URL)
    srv.start()
    try:
        srv.add_worker("--model", MODEL, "--engine", "openai", "--engine-option", f"url={upstream}")
        srv.wait_for_model(MODEL, timeout_s=30)
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def client(gateway: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.v1, api_key=gateway.admin_key, max_retries=0)


def test_the_server_receives_every_optional_parameter(client: openai.OpenAI) -> None:
    _Recorder.bodies.clear()
    fmt: Any = {
        "type": "json_schema",
        "json_schema": {"name": "x", "schema": {"type": "object"}, "strict": True},
    }
    sent: dict[str, Any] = {
        "tools": TOOLS,
        "tool_choice": "none",
        "parallel_tool_calls": False,
        "response_format": fmt,
        "logprobs": True,
        "top_logprobs": 3,
        "presence_penalty": 0.5,
        "frequency_penalty": -0.25,
        "logit_bias": {"42": 7.0},
        "user": "someone",
    }
    answer = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], seed=5, **sent
    )
    (body,) = _Recorder.bodies
    for name, value in sent.items():
        assert body[name] == value, name
    assert body["seed"] == 5
    assert body["stream"] is True
    assert answer.choices[0].message.content == "Hello world"
    content = answer.choices[0].logprobs.content
    assert [(c.token, c.logprob) for c in content] == [("Hello", -0.5), (" world", -1.25)]
    assert answer.usage.prompt_tokens == 11  # the server's usage is what is billed


def test_completions_logprobs_pass_as_a_number(client: openai.OpenAI) -> None:
    _Recorder.bodies.clear()
    client.completions.create(model=MODEL, prompt="hi", logprobs=2, max_tokens=4)
    assert _Recorder.bodies[0]["logprobs"] == 2


def test_the_servers_tool_calls_are_relayed(client: openai.OpenAI) -> None:
    messages: Any = [{"role": "user", "content": "find rivers"}]
    answer = client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS, tool_choice="auto")
    tool_calls = answer.choices[0].message.tool_calls
    assert tool_calls is not None
    (call,) = tool_calls
    assert call.type == "function"
    assert (call.id, call.function.name, call.function.arguments) == ("call_up1", "lookup", '{"q": "rivers"}')
    assert answer.choices[0].finish_reason == "tool_calls"
    chunks = list(
        client.chat.completions.create(
            model=MODEL, messages=messages, tools=TOOLS, tool_choice="auto", stream=True
        )
    )
    pieces = [p for c in chunks for ch in c.choices for p in ch.delta.tool_calls or []]
    assert pieces[0].id == "call_up1"
    assert pieces[0].function is not None
    assert pieces[0].function.name == "lookup"
    assert [p.function.arguments for p in pieces if p.function and p.function.arguments] == ARGUMENT_PIECES
    assert [ch.finish_reason for c in chunks for ch in c.choices if ch.finish_reason] == ["tool_calls"]
