"""The Responses API's answers (gateway/responses_api/output.py): the response object and its
typed event stream, built from a job's DELTA events and its final result."""

from __future__ import annotations

from typing import Any

import msgspec
import orjson

from gpucloud.errors import RateLimited
from gpucloud.gateway.responses_api.output import ResponseStream, echoed, response_object
from gpucloud.gateway.responses_api.schemas import ResponsesRequest
from gpucloud.queue.protocol import DeltaEvent


def events(raw: bytes) -> list[dict[str, Any]]:
    out = []
    for block in raw.decode().split("\n\n"):
        if block:
            kind, data = block.split("\n")
            body = orjson.loads(data.removeprefix("data: "))
            assert kind == f"event: {body['type']}"
            out.append(body)
    return out


def delta(attempt: int = 1, **data: Any) -> DeltaEvent:
    return msgspec.convert({**data, "job_id": "job", "attempt": attempt}, DeltaEvent)


def final(
    text: str | None, finish: str = "stop", calls: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    choice = {"text": text, "finish_reason": finish, "tool_calls": calls}
    return {"choices": [choice], "prompt_tokens": 3, "completion_tokens": 4}


ECHO = echoed(ResponsesRequest(model="m", input="x"))


def test_echo_repeats_the_settings_with_their_defaults() -> None:
    assert (ECHO["temperature"], ECHO["top_p"], ECHO["tool_choice"], ECHO["store"]) == (
        1.0,
        1.0,
        "auto",
        False,
    )
    assert ECHO["text"] == {"format": {"type": "text"}}
    assert "user" not in ECHO
    body = ResponsesRequest.model_validate(
        {
            "model": "m",
            "input": "x",
            "user": "u",
            "parallel_tool_calls": False,
            "tools": [{"type": "function", "name": "f"}],
        }
    )
    echo = echoed(body)
    assert (echo["user"], echo["parallel_tool_calls"]) == ("u", False)
    assert echo["tools"] == [{"type": "function", "name": "f", "strict": False}]


def test_a_cut_answer_is_incomplete_and_tool_calls_are_items() -> None:
    cut = response_object("s", 1, "m", ECHO, final("abc", "length"))
    assert (cut["status"], cut["incomplete_details"]) == ("incomplete", {"reason": "max_output_tokens"})
    assert cut["usage"]["total_tokens"] == 7
    call = {"id": "call_1", "name": "f", "arguments": "{}"}
    done = response_object("s", 1, "m", ECHO, final(None, "tool_calls", [call]))
    assert done["status"] == "completed"
    assert [item["type"] for item in done["output"]] == ["function_call"]
    assert done["output"][0]["call_id"] == "call_1"
    shell = response_object("s", 1, "m", ECHO, None)
    assert shell["status"] == "in_progress"
    assert "usage" not in shell


def test_a_stream_opens_items_closes_them_and_numbers_every_event() -> None:
    stream = ResponseStream("s", 1, "m", ECHO)
    raw = stream.opening()
    raw += stream.delta(delta(text="Hel"))
    raw += stream.delta(delta(attempt=2, text="stale"))  # another attempt: ignored
    raw += stream.delta(delta(index=1, text="second choice"))  # only the first choice is relayed
    raw += stream.delta(delta(text="lo"))
    raw += stream.delta(delta(tool_calls=[{"index": 0, "id": "call_1", "name": "f", "arguments": '{"a"'}]))
    raw += stream.delta(delta(tool_calls=[{"index": 0, "arguments": ":1}"}]))
    raw += stream.closing(
        final("Hello", "tool_calls", [{"id": "call_1", "name": "f", "arguments": '{"a":1}'}])
    )
    got = events(raw)
    assert [e["sequence_number"] for e in got] == list(range(len(got)))
    assert [e["type"] for e in got] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert got[6]["text"] == "Hello"
    assert got[12]["arguments"] == '{"a":1}'
    assert got[13]["output_index"] == 1
    assert got[-1]["response"]["output"][0]["content"][0]["text"] == "Hello"


def test_an_empty_answer_is_still_one_message() -> None:
    stream = ResponseStream("s", 1, "m", ECHO)
    got = events(stream.closing(final("", "length")))
    assert [e["type"] for e in got][-1] == "response.incomplete"
    assert got[0]["type"] == "response.output_item.added"
    assert got[-1]["response"]["output"][0]["content"][0]["text"] == ""


def test_errors_are_events_without_internals() -> None:
    stream = ResponseStream("s", 1, "m", ECHO)
    limited = events(stream.error(RateLimited("slow down", retry_after_s=1)))[0]
    assert (limited["code"], limited["message"]) == ("rate_limit_exceeded", "slow down")
    hidden = events(stream.error(RuntimeError("/srv/secret")))[0]
    assert hidden["message"] == "The server had an error."


def _logprob(token: str, logprob: float, top: list[tuple[str, float]]) -> dict[str, Any]:
    tops = [(t, lp, list(t.encode())) for t, lp in top]
    return {"token": token, "logprob": logprob, "bytes": list(token.encode()), "top": tops}


def test_logprobs_go_in_the_text_and_on_its_delta_and_done_events() -> None:
    first, second = _logprob("Hel", -0.5, [("Hel", -0.5), ("Hi", -1.0)]), _logprob("lo", -0.25, [])
    plain = response_object("s", 1, "m", ECHO, final("Hello"))
    assert plain["output"][0]["content"][0]["logprobs"] == []
    answer = final("Hello")
    answer["choices"][0]["logprobs"] = [first, second]
    part = response_object("s", 1, "m", ECHO, answer)["output"][0]["content"][0]
    assert part["logprobs"] == [
        {
            "token": "Hel",
            "logprob": -0.5,
            "bytes": list(b"Hel"),
            "top_logprobs": [
                {"token": "Hel", "logprob": -0.5, "bytes": list(b"Hel")},
                {"token": "Hi", "logprob": -1.0, "bytes": list(b"Hi")},
            ],
        },
        {"token": "lo", "logprob": -0.25, "bytes": list(b"lo"), "top_logprobs": []},
    ]

    stream = ResponseStream("s", 1, "m", ECHO)
    raw = stream.delta(delta(logprobs=[first]))  # a token without text yet: held for the next delta
    raw += stream.delta(delta(text="Hello", logprobs=[second]))
    got = events(raw + stream.closing(final(None)))
    (text_delta,) = [e for e in got if e["type"] == "response.output_text.delta"]
    tokens = [
        {
            "token": "Hel",
            "logprob": -0.5,
            "top_logprobs": [{"token": "Hel", "logprob": -0.5}, {"token": "Hi", "logprob": -1.0}],
        },
        {"token": "lo", "logprob": -0.25, "top_logprobs": []},
    ]
    assert text_delta["logprobs"] == tokens  # the events' shape: no bytes
    (done,) = [e for e in got if e["type"] == "response.output_text.done"]
    assert done["logprobs"] == tokens
    completed = got[-1]["response"]["output"][0]["content"][0]
    assert completed["logprobs"] == part["logprobs"]
