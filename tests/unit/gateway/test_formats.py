"""`gateway.formats`: OpenAI bodies and SSE chunks, rendered from events and finals alone."""

from __future__ import annotations

from typing import Any

import msgspec
import orjson

from gpucloud.engines.protocol import TokenLogprob
from gpucloud.errors import EngineFailed, Unavailable
from gpucloud.gateway.formats import (
    DONE,
    ChunkWriter,
    StoredJob,
    completion_body,
    error_chunk,
    replay,
    text_logprobs,
)
from gpucloud.gateway.responses_api.output import ResponseStream
from gpucloud.queue.protocol import DeltaEvent

CHAT = StoredJob("job_abc", "chat", "m", 1700000000, 2)
TEXT = StoredJob("job_abc", "completion", "m", 1700000000, 1)
FINAL = {
    "prompt_tokens": 5,
    "completion_tokens": 3,
    "choices": [
        {"index": 1, "text": "Yo", "finish_reason": "length"},
        {"index": 0, "text": "Hi!", "finish_reason": "stop"},
    ],
}


def frames(data: bytes) -> list[Any]:
    out = []
    for frame in data.split(b"\n\n")[:-1]:
        assert frame.startswith(b"data: ")
        body = frame.removeprefix(b"data: ")
        out.append(body.decode() if body == b"[DONE]" else orjson.loads(body))
    return out


def delta(text: str, index: int = 0, attempt: int = 1, finish: str | None = None) -> DeltaEvent:
    return DeltaEvent("job_abc", attempt, index=index, text=text, finish_reason=finish)


def test_chat_stream_opens_each_choice_then_relays_deltas_and_ends_with_usage_and_done() -> None:
    writer = ChunkWriter(CHAT, include_usage=True)
    opening = frames(writer.opening())
    assert [c["choices"][0]["index"] for c in opening] == [0, 1]
    assert opening[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert opening[0]["id"] == "chatcmpl-abc"
    assert opening[0]["object"] == "chat.completion.chunk"
    assert opening[0]["usage"] is None  # include_usage: null on every chunk but the last
    piece, finish = frames(writer.delta(delta("Hi", finish="stop")))
    assert piece["choices"][0]["delta"] == {"content": "Hi"}
    assert finish["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    closing = writer.closing(FINAL)
    assert closing.endswith(DONE)
    usage = frames(closing)[0]
    assert usage["choices"] == []
    assert usage["usage"] == {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}


def test_deltas_of_another_attempt_are_dropped() -> None:
    writer = ChunkWriter(CHAT, include_usage=False)
    assert writer.delta(delta("a", attempt=1))
    assert writer.delta(delta("b", attempt=2)) == b""  # a stale attempt that woke up late
    assert writer.closing(FINAL) == DONE  # without include_usage, no usage chunk


def test_completion_chunks_carry_text_offsets_per_choice() -> None:
    writer = ChunkWriter(TEXT, include_usage=False)
    assert writer.opening() == b""  # completions have no role chunk
    lp = [TokenLogprob("ab", -0.1, [97, 98], [])]
    first = DeltaEvent("job_abc", 1, index=0, text="ab", logprobs=lp)
    second = DeltaEvent("job_abc", 1, index=0, text="c", logprobs=lp)
    writer.delta(first)
    (chunk,) = frames(writer.delta(second))
    assert chunk["object"] == "text_completion"
    assert chunk["choices"][0]["logprobs"]["text_offset"] == [2]
    assert text_logprobs(msgspec.to_builtins(lp * 2), 3)["text_offset"] == [3, 5]  # type: ignore[index]


def test_error_chunk_is_the_openai_envelope_with_the_status() -> None:
    (body,) = frames(error_chunk(Unavailable("later", retry_after_s=1, code="queue_timeout")))
    assert body["error"]["code"] == "queue_timeout"
    assert body["error"]["status"] == 503
    assert body["error"]["type"]
    (hidden,) = frames(error_chunk(ValueError("a path /secret")))
    assert "secret" not in hidden["error"]["message"]
    assert hidden["error"]["type"] == "server_error"
    (failed,) = frames(ChunkWriter(CHAT, include_usage=False).error(EngineFailed("boom")))
    assert failed["error"]["status"] == 500


def test_replay_is_the_stream_of_the_stored_final() -> None:
    replayed = frames(replay(ChunkWriter(CHAT, include_usage=True), "job_abc", FINAL))
    pieces = [c["choices"][0] for c in replayed[2:6]]  # after the two openings: text, finish per choice
    assert [(p["index"], p["delta"].get("content"), p["finish_reason"]) for p in pieces] == [
        (0, "Hi!", None),
        (0, None, "stop"),
        (1, "Yo", None),
        (1, None, "length"),
    ]
    assert replayed[-1] == "[DONE]"
    assert replayed[-2]["usage"]["total_tokens"] == 8
    body = completion_body(CHAT, FINAL)
    assert [c["message"]["content"] for c in body["choices"]] == ["Hi!", "Yo"]
    assert body["object"] == "chat.completion"
    assert body["choices"][1]["finish_reason"] == "length"


def test_replay_renders_tool_calls_whole_and_any_writer_can_replay() -> None:
    call = {"id": "call_1", "name": "f", "arguments": '{"x": 1}'}
    final = {"choices": [{"index": 0, "text": "", "tool_calls": [call], "finish_reason": "tool_calls"}]}
    chunks = frames(replay(ChunkWriter(StoredJob("job_abc", "chat", "m", 0, 1), False), "job_abc", final))
    (piece,) = chunks[1]["choices"][0]["delta"]["tool_calls"]
    assert piece == {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "f", "arguments": '{"x": 1}'},
    }
    stream = replay(ResponseStream("abc", 0, "m", {}), "job_abc", final).decode()
    assert "response.function_call_arguments.done" in stream
    assert stream.rstrip().splitlines()[-2] == "event: response.completed"
