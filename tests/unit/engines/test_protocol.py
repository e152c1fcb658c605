"""The engine protocol's data (engines/protocol.py): requests, tool-call pieces and log probabilities
survive the queue's JSON, and the protocols recognise real engines."""

from __future__ import annotations

import json

import msgspec

from gpucloud.engines.protocol import (
    EmbeddingEngine,
    Engine,
    EngineError,
    GenerationRequest,
    TokenLogprob,
    ToolCallDelta,
)
from gpucloud.engines.simulated import SimulatedEngine


def through_json(data: dict[str, object]) -> dict[str, object]:
    loaded: dict[str, object] = json.loads(json.dumps(data))
    return loaded


def test_a_request_survives_the_queue() -> None:
    request = GenerationRequest(
        kind="completion",
        model="m",
        prompt="p",
        max_tokens=5,
        stop=("a", "b"),
        n=3,
        temperature=0.2,
        top_p=0.9,
        seed=4,
        user="u",
        extra={"dimensions": 2},
        logprobs=True,
        top_logprobs=2,
    )
    document = through_json(msgspec.to_builtins(request))  # as a job row stores it
    assert msgspec.convert(document, GenerationRequest) == request


def test_a_minimal_payload_gets_the_defaults() -> None:
    request = msgspec.convert({"kind": "chat", "model": "m"}, GenerationRequest)
    assert request.n == 1
    assert request.stop == ()
    assert request.extra == {}
    assert request.logprobs is False


def test_json_schema_of_the_response_format() -> None:
    schema = {"type": "array"}
    fmt = {"type": "json_schema", "json_schema": {"name": "s", "schema": schema}}
    assert GenerationRequest(kind="chat", model="m", response_format=fmt).json_schema() == schema
    no_schema = {"type": "json_schema", "json_schema": {"name": "s"}}
    assert GenerationRequest(kind="chat", model="m", response_format=no_schema).json_schema() == {
        "type": "object"
    }
    assert (
        GenerationRequest(kind="chat", model="m", response_format={"type": "json_object"}).json_schema()
        is None
    )


def test_tool_call_pieces_and_logprobs_round_trip() -> None:
    first = ToolCallDelta(0, '{"a"', "call_1", "f")
    assert msgspec.convert(through_json(msgspec.to_builtins(first)), ToolCallDelta) == first
    assert msgspec.convert({"index": 1}, ToolCallDelta) == ToolCallDelta(1, "")
    logprob = TokenLogprob("é", -0.5, [195, 169], [("é", -0.5, [195, 169]), ("e", -1.5, [101])])
    assert msgspec.convert(through_json(msgspec.to_builtins(logprob)), TokenLogprob) == logprob


def test_engine_error_carries_retryable_and_code() -> None:
    error = EngineError("boom", retryable=True, code="invalid_request")
    assert (str(error), error.retryable, error.code) == ("boom", True, "invalid_request")
    assert EngineError("x").retryable is False


def test_the_simulated_engine_is_both_kinds_of_engine() -> None:
    engine = SimulatedEngine("m")
    assert isinstance(engine, Engine)
    assert isinstance(engine, EmbeddingEngine)
    assert not isinstance(object(), Engine)
