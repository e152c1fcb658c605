"""Every request parameter of OpenAI's specification is honoured or refused with a 400 naming it.

The parameters are the top-level properties of `CreateChatCompletionRequest`,
`CreateCompletionRequest` and `CreateResponse` in the vendored specification
(`tests/openai_spec`), gathered through their `allOf` parts (`CreateModelResponseProperties`,
`ModelResponseProperties`, `ResponseProperties`). The tables below give each one an example value
(with the companions it needs to show an effect, such as `tools` for `tool_choice`) and what the
platform does with it: honoured, with what the answer shows of it where it shows anything, or
refused (400, `code: "unsupported_parameter"`, `param` naming it). A parameter the specification
gains fails `test_every_parameter_has_an_example` until it is added here, and every example is
first validated as a request against the specification, so a refusal is the platform's and not a
malformed example.

One gateway (embedded, SQLite) serves the simulated engine, which honours every capability, and a
deployment of it that lacks them all. The official `openai` SDK sends each example to the first
(`extra_body` for a parameter the SDK does not know), and each capability-gated parameter alone to
the second, which must refuse it naming it (`code: "unsupported_parameter"`).
"""

from __future__ import annotations

import inspect
import json
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields
from functools import cache
from typing import Any

import httpx
import openai
import pytest
import yaml

from gpucloud.engines.capabilities import Capabilities
from gpucloud.engines.tokenizer import Tokenizer
from tests.integration.test_openai_conformance import SPEC, conforms
from tests.support import Server, make_server

MODEL = "gpucloud-sim-1"
LIMITED = "no-options-model"
LACKS = ",".join(f.name for f in fields(Capabilities))  # every optional parameter's capability

CHAT: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}]
WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1, "maximum": 5}},
    "required": ["city", "days"],
    "additionalProperties": False,
}
CHAT_TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}},
    {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}},
]
RESPONSE_TOOLS = [
    {"type": "function", "name": "get_weather", "parameters": WEATHER, "strict": True},
    {"type": "function", "name": "get_time", "parameters": {"type": "object"}, "strict": False},
]
SEEDED = {"seed": 21, "max_tokens": 60}  # long enough for a penalty or a bias to show
LOGPROBS = "message.output_text.logprobs"


@dataclass(frozen=True)
class Sent:
    """What a check sees: the answer (a stream's chunks or events, listed), and a way to send
    other requests to the same endpoint and model."""

    answer: Any
    body: dict[str, Any]
    send: Callable[[dict[str, Any]], Any]

    def without(self, *params: str) -> Any:
        return self.send({k: v for k, v in self.body.items() if k not in params})


@dataclass(frozen=True)
class Case:
    value: Any
    honoured: bool = True
    gated: bool = False  # needs a capability: a model without it refuses the parameter
    needs: dict[str, Any] = field(default_factory=dict)  # companions it takes effect with
    check: Callable[[Sent], object] | None = None  # asserts what the answer shows of it


def honoured(value: Any, check: Callable[[Sent], object] | None = None, **needs: Any) -> Case:
    return Case(value, needs=needs, check=check)


def gated(value: Any, check: Callable[[Sent], object] | None = None, **needs: Any) -> Case:
    return Case(value, gated=True, needs=needs, check=check)


def refused(value: Any, **needs: Any) -> Case:
    return Case(value, honoured=False, needs=needs)


# what the answers show --------------------------------------------------------------------------


def chat_text(answer: Any) -> str:
    return str(answer.choices[0].message.content or "")


def text_of(answer: Any) -> str:
    return str(answer.choices[0].text)


def response_text(answer: Any) -> str:
    return str(answer.output_text)


def the_token_limit(limit: int) -> Callable[[Sent], None]:
    def check(sent: Sent) -> None:
        assert sent.answer.usage.completion_tokens == limit
        assert sent.answer.choices[0].finish_reason == "length"

    return check


def the_output_limit(sent: Sent) -> None:
    assert sent.answer.usage.output_tokens == 16
    assert sent.answer.status == "incomplete"


def changes_the_seeded_answer(text: Callable[[Any], str], param: str) -> Callable[[Sent], None]:
    def check(sent: Sent) -> None:
        assert text(sent.answer) != text(sent.without(param))

    return check


def repeats_itself(text: Callable[[Any], str]) -> Callable[[Sent], None]:
    def check(sent: Sent) -> None:
        assert text(sent.answer) == text(sent.send(sent.body))

    return check


def bans_the(text: Callable[[Any], str]) -> Callable[[Sent], None]:
    def check(sent: Sent) -> None:
        assert re.search(r" the\b", text(sent.without("logit_bias")))
        assert not re.search(r" the\b", text(sent.answer))

    return check


def stops_at_the(text: Callable[[Any], str]) -> Callable[[Sent], None]:
    def check(sent: Sent) -> None:
        assert " the" in text(sent.without("stop"))
        assert " the" not in text(sent.answer)

    return check


def two_choices(sent: Sent) -> None:
    assert [c.index for c in sent.answer.choices] == [0, 1]


def streamed_chat(sent: Sent) -> None:
    assert "".join(c.choices[0].delta.content or "" for c in sent.answer if c.choices)
    assert [c.choices[0].finish_reason for c in sent.answer if c.choices][-1] == "stop"


def streamed_usage(sent: Sent) -> None:
    assert sent.answer[-1].usage is not None
    assert sent.answer[-1].usage.completion_tokens > 0


def streamed_text(sent: Sent) -> None:
    assert "".join(c.choices[0].text for c in sent.answer if c.choices)


def streamed_response(sent: Sent) -> None:
    assert sent.answer[0].type == "response.created"
    assert sent.answer[-1].type == "response.completed"
    assert sent.answer[-1].response.output_text


def json_object(text: Callable[[Any], str]) -> Callable[[Sent], None]:
    def check(sent: Sent) -> None:
        assert isinstance(json.loads(text(sent.answer)), dict)

    return check


def chat_calls(count: int | None = None) -> Callable[[Sent], None]:
    def check(sent: Sent) -> None:
        choice = sent.answer.choices[0]
        assert choice.finish_reason == "tool_calls"
        calls = choice.message.tool_calls or []
        assert calls if count is None else len(calls) == count
        assert {c.function.name for c in calls} <= {"get_weather", "get_time"}

    return check


def response_calls(count: int | None = None) -> Callable[[Sent], None]:
    def check(sent: Sent) -> None:
        calls = [item for item in sent.answer.output if item.type == "function_call"]
        assert calls if count is None else len(calls) == count
        assert {c.name for c in calls} <= {"get_weather", "get_time"}

    return check


def chat_logprobs(top: int) -> Callable[[Sent], None]:
    def check(sent: Sent) -> None:
        content = sent.answer.choices[0].logprobs.content
        assert _joined(c.bytes for c in content) == chat_text(sent.answer)
        assert _alternatives([len(c.top_logprobs) for c in content], top)

    return check


def _alternatives(counts: list[int], top: int) -> bool:
    """`top` alternatives per token at most, and that many somewhere: a token that continues a
    word split over several may have fewer (the specification allows it)."""
    return bool(counts) and max(counts) == top


def _joined(pieces: Iterable[list[int] | None]) -> str:
    """The text of tokens from their bytes (a token alone may be part of a character)."""
    return b"".join(bytes(piece or []) for piece in pieces).decode()


def text_logprobs(sent: Sent) -> None:
    logprobs = sent.answer.choices[0].logprobs
    assert len(logprobs.tokens) == len(logprobs.token_logprobs) == sent.answer.usage.completion_tokens
    assert all(1 <= len(top) <= 2 for top in logprobs.top_logprobs)


def response_logprobs(top: int) -> Callable[[Sent], None]:
    def check(sent: Sent) -> None:
        (part,) = sent.answer.output[0].content
        assert _joined(lp.bytes for lp in part.logprobs) == part.text
        assert _alternatives([len(lp.top_logprobs) for lp in part.logprobs], top)

    return check


def instructions_are_in_the_prompt(sent: Sent) -> None:
    assert sent.answer.usage.input_tokens > sent.without("instructions").usage.input_tokens


def answers_as(model: str) -> Callable[[Sent], None]:
    def check(sent: Sent) -> None:
        assert sent.answer.model == model

    return check


def a_chat_answer(sent: Sent) -> None:
    assert chat_text(sent.answer)
    assert sent.answer.usage.prompt_tokens > 0


def echoes(field: str, value: str) -> Callable[[Sent], None]:
    def check(sent: Sent) -> None:
        assert getattr(sent.answer, field) == value
        a_response(sent)

    return check


def a_text_answer(sent: Sent) -> None:
    assert text_of(sent.answer)


def a_response(sent: Sent) -> None:
    assert response_text(sent.answer)
    assert sent.answer.status == "completed"


# the tables -------------------------------------------------------------------------------------

_THE = str(Tokenizer().encode(" the")[0])

CHAT_PARAMETERS: dict[str, Case] = {
    "audio": refused({"voice": "alloy", "format": "wav"}),
    "frequency_penalty": gated(1.5, changes_the_seeded_answer(chat_text, "frequency_penalty"), **SEEDED),
    "function_call": refused("auto"),  # deprecated for tools
    "functions": refused([CHAT_TOOLS[0]["function"]]),
    "logit_bias": gated({_THE: -100}, bans_the(chat_text), **SEEDED),
    "logprobs": gated(True, chat_logprobs(0)),
    "max_completion_tokens": honoured(3, the_token_limit(3)),
    "max_tokens": honoured(3, the_token_limit(3)),
    "messages": honoured(CHAT, a_chat_answer),
    "metadata": refused({"topic": "weather"}),  # kept only with stored answers
    "modalities": honoured(["text"], a_chat_answer),  # the neutral value; others: NEUTRAL_ONLY
    "model": honoured(MODEL, answers_as(MODEL)),
    "moderation": refused({"model": "omni-moderation-latest"}),
    "n": honoured(2, two_choices),
    "parallel_tool_calls": gated(False, chat_calls(1), tools=CHAT_TOOLS, tool_choice="required"),
    "prediction": refused({"type": "content", "content": "It is sunny."}),
    "presence_penalty": gated(1.5, changes_the_seeded_answer(chat_text, "presence_penalty"), **SEEDED),
    "prompt_cache_key": honoured("weather-questions", a_chat_answer),  # a hint, as `user` is
    "prompt_cache_options": refused({}),
    "prompt_cache_retention": refused("24h"),
    "reasoning_effort": refused("low"),
    "response_format": gated({"type": "json_object"}, json_object(chat_text)),
    "safety_identifier": honoured("user-1234", a_chat_answer),  # `user`'s successor
    "seed": gated(21, repeats_itself(chat_text)),
    "service_tier": honoured("auto", a_chat_answer),
    "stop": honoured([" the"], stops_at_the(chat_text), seed=21),
    "store": refused(True),  # answers are not kept for later retrieval
    "stream": honoured(True, streamed_chat),
    "stream_options": honoured({"include_usage": True}, streamed_usage, stream=True),
    "temperature": honoured(0, changes_the_seeded_answer(chat_text, "temperature"), **SEEDED),
    "tool_choice": gated("required", chat_calls(), tools=CHAT_TOOLS),
    "tools": gated(CHAT_TOOLS, chat_calls()),  # "auto" calls them after the user's message
    "top_logprobs": gated(2, chat_logprobs(2), logprobs=True),
    "top_p": honoured(0.5, changes_the_seeded_answer(chat_text, "top_p"), **SEEDED),
    "user": honoured("end-user-1"),
    "verbosity": refused("low"),
    "web_search_options": refused({}),
}

COMPLETION_PARAMETERS: dict[str, Case] = {
    "best_of": refused(2),  # only best_of == n (the default) is served
    "echo": refused(True),
    "frequency_penalty": gated(1.5, changes_the_seeded_answer(text_of, "frequency_penalty"), **SEEDED),
    "logit_bias": gated({_THE: -100}, bans_the(text_of), **SEEDED),
    "logprobs": gated(2, text_logprobs),
    "max_tokens": honoured(3, the_token_limit(3)),
    "model": honoured(MODEL, answers_as(MODEL)),
    "n": honoured(2, two_choices),
    "presence_penalty": gated(1.5, changes_the_seeded_answer(text_of, "presence_penalty"), **SEEDED),
    "prompt": honoured("Once upon a time", a_text_answer),
    "seed": gated(21, repeats_itself(text_of)),
    "stop": honoured([" the"], stops_at_the(text_of), seed=21, max_tokens=60),
    "stream": honoured(True, streamed_text),
    "stream_options": honoured({"include_usage": True}, streamed_usage, stream=True),
    "suffix": refused(" The end."),
    "temperature": honoured(0, changes_the_seeded_answer(text_of, "temperature"), **SEEDED),
    "top_p": honoured(0.5, changes_the_seeded_answer(text_of, "top_p"), **SEEDED),
    "user": honoured("end-user-1"),
}

RESPONSE_PARAMETERS: dict[str, Case] = {
    "background": honoured(False, a_response),
    "context_management": refused([{"type": "compaction"}]),
    "conversation": refused("conv_123"),  # responses and conversations are not stored
    "include": gated([LOGPROBS], response_logprobs(0)),
    "input": honoured("What is the weather in Paris?", a_response),
    "instructions": honoured("Answer in one sentence.", instructions_are_in_the_prompt),
    "max_output_tokens": honoured(16, the_output_limit),
    "max_tool_calls": refused(1),  # a limit on built-in (hosted) tools, which there are none of
    "metadata": refused({"topic": "weather"}),
    "model": honoured(MODEL, answers_as(MODEL)),
    "moderation": refused({"model": "omni-moderation-latest"}),
    "parallel_tool_calls": gated(False, response_calls(1), tools=RESPONSE_TOOLS, tool_choice="required"),
    "previous_response_id": refused("resp_123"),
    "prompt": refused({"id": "pmpt_123"}),  # stored prompt templates
    "prompt_cache_key": honoured("weather-questions", echoes("prompt_cache_key", "weather-questions")),
    "prompt_cache_options": refused({}),
    "prompt_cache_retention": refused("24h"),
    "reasoning": refused({"effort": "low"}),
    "safety_identifier": honoured("user-1234", echoes("safety_identifier", "user-1234")),
    "service_tier": honoured("auto", echoes("service_tier", "default")),  # the tier it ran on
    "store": refused(True),  # the specification's default is true: a client must say false
    "stream": honoured(True, streamed_response),
    "stream_options": honoured({"include_obfuscation": False}, streamed_response, stream=True),
    "temperature": honoured(0),  # no seed here to compare answers by
    "text": gated({"format": {"type": "json_object"}}, json_object(response_text)),
    "tool_choice": gated("required", response_calls(), tools=RESPONSE_TOOLS),
    "tools": gated(RESPONSE_TOOLS, response_calls()),
    "top_logprobs": gated(2, response_logprobs(2), include=[LOGPROBS]),
    "top_p": honoured(0.5),
    "truncation": honoured("disabled", a_response),
    "user": honoured("end-user-1"),
}


# Parameters accepted with their neutral value only: any other value asks for what is not here.
NEUTRAL_ONLY: dict[str, dict[str, Case]] = {
    "chat": {
        "modalities": refused(["text", "audio"]),
        "service_tier": refused("flex"),
        "stream_options": refused({"include_obfuscation": True}, stream=True),
    },
    "completions": {},
    "responses": {
        "background": refused(True),
        "service_tier": refused("priority"),
        "stream_options": refused({"include_obfuscation": True}, stream=True),
        "truncation": refused("auto"),
    },
}


@dataclass(frozen=True)
class Endpoint:
    name: str
    schema: str  # the request's schema in the specification
    table: dict[str, Case]
    minimal: dict[str, Any]  # beside `model`: the input it cannot do without
    create: Callable[[openai.OpenAI], Callable[..., Any]]


ENDPOINTS = [
    Endpoint(
        "chat",
        "CreateChatCompletionRequest",
        CHAT_PARAMETERS,
        {"messages": CHAT},
        lambda c: c.chat.completions.create,
    ),
    Endpoint(
        "completions",
        "CreateCompletionRequest",
        COMPLETION_PARAMETERS,
        {"prompt": "Once upon a time"},
        lambda c: c.completions.create,
    ),
    Endpoint(
        "responses",
        "CreateResponse",
        RESPONSE_PARAMETERS,
        {"input": CHAT[0]["content"]},
        lambda c: c.responses.create,
    ),
]


@cache
def request_parameters(schema: str) -> frozenset[str]:
    """The top-level properties of a request schema, its `allOf` parts' included."""
    schemas = yaml.safe_load(SPEC.read_text())["components"]["schemas"]

    def properties(name: str) -> set[str]:
        node = schemas[name]
        found = set(node.get("properties", {}))
        for part in node.get("allOf", []):
            found |= (
                properties(part["$ref"].rsplit("/", 1)[1])
                if "$ref" in part
                else set(part.get("properties", {}))
            )
        return found

    return frozenset(properties(schema))


def send(client: openai.OpenAI, endpoint: Endpoint, body: dict[str, Any]) -> Any:
    """`body` through the SDK: its keyword arguments where it has them, `extra_body` for the rest.
    A stream is read to its end (chunks or events, listed)."""
    create = endpoint.create(client)
    known = set(inspect.signature(create).parameters)
    kwargs = {k: v for k, v in body.items() if k in known}
    extra = {k: v for k, v in body.items() if k not in known}
    answer = create(**kwargs, extra_body=extra or None)
    return list(answer) if body.get("stream") else answer


def names(reported: str | None, param: str) -> bool:
    """Whether an error's `param` is `param` or a path inside it (`text.format`, `include[0]`)."""
    return reported is not None and (reported == param or reported.startswith((f"{param}.", f"{param}[")))


def refusal_problem(
    client: openai.OpenAI, endpoint: Endpoint, body: dict[str, Any], param: str, code: str
) -> str:
    """Sends `body`, which must be refused with a 400 naming `param` with `code`; what went
    otherwise, or "" when it was."""
    conforms(body, endpoint.schema)  # a valid request: a refusal is the platform's choice
    try:
        send(client, endpoint, body)
    except openai.BadRequestError as exc:
        if names(exc.param, param) and exc.code == code:
            return ""
        return f"{param}: refused as {exc.param!r} ({exc.code}: {exc.message})"
    return f"{param}: {body[param]!r} accepted"


# the gateway --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """An embedded gateway serving the simulated model, and a deployment of it lacking every
    capability (its engine's `lacks` option)."""
    server = make_server(tmp_path_factory.mktemp("parameters"))
    server.start()
    try:
        headers = {"Authorization": f"Bearer {server.admin_key}"}
        body = {"name": LIMITED, "engine": "simulated", "engine_options": {"lacks": LACKS}}
        r = httpx.post(f"{server.base_url}/api/deployments", json=body, headers=headers, timeout=10)
        assert r.status_code == 201, r.text
        deadline = time.monotonic() + 60
        while (state := _state(server, headers)) != "ready":
            assert time.monotonic() < deadline, f"the deployment never became ready: {state}"
            time.sleep(0.2)
        yield server
    finally:
        server.stop()


def _state(server: Server, headers: dict[str, str]) -> str:
    r = httpx.get(f"{server.base_url}/api/deployments/{LIMITED}", headers=headers, timeout=10)
    return str(r.json()["state"])


@pytest.fixture(scope="module")
def client(gateway: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.v1, api_key=gateway.admin_key, max_retries=0, timeout=60)


# the tests ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_every_parameter_has_an_example(endpoint: Endpoint) -> None:
    spec = request_parameters(endpoint.schema)
    assert len(spec) > 10  # the schema was found, its allOf parts followed
    assert not spec - set(endpoint.table), f"parameters of {endpoint.schema} without an example"
    assert not set(endpoint.table) - spec, f"examples of parameters {endpoint.schema} does not have"


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_each_parameter_is_honoured_or_refused_by_name(client: openai.OpenAI, endpoint: Endpoint) -> None:
    base = {"model": MODEL, **endpoint.minimal}
    problems: list[str] = []
    for param, case in sorted(endpoint.table.items()):
        body = {**base, **case.needs, param: case.value}
        conforms(body, endpoint.schema)  # a valid request: a refusal is the platform's choice
        try:
            answer = send(client, endpoint, body)
        except openai.BadRequestError as exc:
            if case.honoured:
                problems.append(f"{param}: refused ({exc.message})")
            elif not names(exc.param, param) or exc.code != "unsupported_parameter":
                problems.append(f"{param}: refused as {exc.param!r} ({exc.code}: {exc.message})")
            continue
        if not case.honoured:
            problems.append(f"{param}: accepted, but the table says it is refused")
        elif case.check is not None:
            sent = Sent(answer, body, lambda other: send(client, endpoint, other))
            try:
                case.check(sent)
            except AssertionError as exc:
                problems.append(f"{param}: accepted, but the answer does not show it: {exc!r}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_a_model_without_the_capabilities_refuses_each_gated_parameter_alone(
    client: openai.OpenAI, endpoint: Endpoint
) -> None:
    base = {"model": LIMITED, **endpoint.minimal}
    problems = []
    for param, case in sorted(endpoint.table.items()):
        if not case.gated:
            continue
        body = {**base, param: case.value}
        if problem := refusal_problem(client, endpoint, body, param, "unsupported_parameter"):
            problems.append(problem)
    assert not problems, "\n".join(problems)
    assert send(client, endpoint, base)  # the model itself serves what it can


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_a_neutral_only_parameter_refuses_any_other_value_by_name(
    client: openai.OpenAI, endpoint: Endpoint
) -> None:
    base = {"model": MODEL, **endpoint.minimal}
    problems = []
    for param, case in sorted(NEUTRAL_ONLY[endpoint.name].items()):
        assert endpoint.table[param].honoured  # its neutral value is served
        body = {**base, **case.needs, param: case.value}
        if problem := refusal_problem(client, endpoint, body, param, "unsupported_value"):
            problems.append(problem)
    assert not problems, "\n".join(problems)
