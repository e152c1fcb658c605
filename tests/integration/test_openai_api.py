"""The OpenAI-compatible API through the official `openai` SDK, on every backend (architecture §5, §6).

Models, chat and text completions, streaming (with and without usage), `n`, `stop`, token limits,
seeds, request ids; every error as the SDK's matching exception carrying the OpenAI envelope with the
right status, code and `param`; the routes that need no key and every route that does.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from gpucloud.gateway.app import create_app
from gpucloud.gateway.permissions import ROUTES, Need
from gpucloud.settings import Settings
from tests.conftest import MODEL, create_key
from tests.support import Server

CHAT: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Tell me about the river."}]
ANY = object()  # "any value" for the envelope checks
_LEAK = re.compile(r"Traceback|/src/|\.py\b|site-packages|File \"")


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class HttpResponse(Protocol):
    """What the envelope checks read of a response: httpx's, or the SDK's (its own httpx fork)."""

    @property
    def status_code(self) -> int: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def text(self) -> str: ...
    def json(self, **kwargs: Any) -> Any: ...


def assert_envelope(
    response: HttpResponse,
    status: int,
    *,
    code: object = ANY,
    param: object = ANY,
) -> dict[str, Any]:
    """The OpenAI error envelope with `status`, a request id, and nothing that leaks internals."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers.get("x-request-id"), "every response carries x-request-id"
    assert not _LEAK.search(response.text), response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert set(error) >= {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str)
    assert error["message"]
    assert isinstance(error["type"], str)
    if code is not ANY:
        assert error["code"] == code, error
    if param is not ANY:
        assert error["param"] == param, error
    return error


def assert_sdk_error(
    exc: openai.APIStatusError,
    status: int,
    *,
    code: object = ANY,
    param: object = ANY,
) -> dict[str, Any]:
    """An SDK exception whose response is the envelope (and whose parsed fields agree with it)."""
    error = assert_envelope(exc.response, status, code=code, param=param)
    assert exc.status_code == status
    assert exc.body == error
    assert exc.code == error["code"]
    assert exc.param == error["param"]
    assert exc.request_id == exc.response.headers["x-request-id"]
    return error


@pytest.fixture
def client(user_client: openai.OpenAI) -> openai.OpenAI:
    return user_client


def _chat(client: openai.OpenAI, **kwargs: Any) -> Any:
    kwargs.setdefault("model", MODEL)
    kwargs.setdefault("messages", CHAT)
    return client.chat.completions.create(**kwargs)


def _stream(client: openai.OpenAI, **kwargs: Any) -> list[Any]:
    return list(_chat(client, stream=True, **kwargs))


def _texts_by_index(chunks: list[Any]) -> dict[int, str]:
    texts: dict[int, str] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content or "")
    return texts


def _finishes_by_index(chunks: list[Any]) -> dict[int, list[str]]:
    finishes: dict[int, list[str]] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            if choice.finish_reason is not None:
                finishes.setdefault(choice.index, []).append(choice.finish_reason)
    return finishes


# models ---------------------------------------------------------------------------------------


def test_models_list_and_retrieve(client: openai.OpenAI) -> None:
    models = client.models.list()
    ids = [m.id for m in models.data]
    assert MODEL in ids
    card = next(m for m in models.data if m.id == MODEL)
    assert card.object == "model"
    assert isinstance(card.created, int)
    assert card.owned_by
    one = client.models.retrieve(MODEL)
    assert (one.id, one.object, one.created) == (MODEL, "model", card.created)


def test_retrieve_unknown_model_is_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("no-such-model")
    assert_sdk_error(caught.value, 404, code="model_not_found", param="model")


# chat and text completions --------------------------------------------------------------------


def test_chat_completion_shape(client: openai.OpenAI) -> None:
    answer = _chat(client, seed=1, max_tokens=30)
    assert answer.id.startswith("chatcmpl-")
    assert answer.object == "chat.completion"
    assert answer.model == MODEL
    assert abs(answer.created - time.time()) < 120
    assert len(answer.choices) == 1
    choice = answer.choices[0]
    assert choice.index == 0
    assert choice.message.role == "assistant"
    assert isinstance(choice.message.content, str)
    assert choice.message.content
    assert choice.finish_reason in ("stop", "length")
    usage = answer.usage
    assert usage is not None
    assert usage.prompt_tokens > 0
    assert 0 < usage.completion_tokens <= 30
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_text_completion(client: openai.OpenAI) -> None:
    answer = client.completions.create(model=MODEL, prompt="Once upon a time", seed=3)
    assert answer.id.startswith("cmpl-")
    assert answer.object == "text_completion"
    assert answer.model == MODEL
    assert len(answer.choices) == 1
    assert answer.choices[0].index == 0
    assert answer.choices[0].text
    # OpenAI's default max_tokens for /v1/completions is 16; a simulated answer is never shorter than 20
    assert answer.choices[0].finish_reason == "length"
    assert answer.usage is not None
    assert answer.usage.completion_tokens == 16
    assert answer.usage.prompt_tokens > 0
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + 16

    again = client.completions.create(model=MODEL, prompt="Once upon a time", seed=3, stream=True)
    streamed = "".join(c.choices[0].text for c in again if c.choices)
    assert streamed == answer.choices[0].text


def test_same_seed_same_answer_different_seed_different_answer(client: openai.OpenAI) -> None:
    first = _chat(client, seed=11, max_tokens=40)
    second = _chat(client, seed=11, max_tokens=40)
    other = _chat(client, seed=12, max_tokens=40)
    assert first.choices[0].message.content == second.choices[0].message.content
    assert first.usage.completion_tokens == second.usage.completion_tokens
    assert first.choices[0].message.content != other.choices[0].message.content


def test_max_tokens_ends_with_length(client: openai.OpenAI) -> None:
    answer = _chat(client, max_tokens=5, seed=5)
    assert answer.choices[0].finish_reason == "length"
    assert answer.usage.completion_tokens == 5


def test_max_completion_tokens(client: openai.OpenAI) -> None:
    answer = _chat(client, max_completion_tokens=7, seed=5)
    assert answer.choices[0].finish_reason == "length"
    assert answer.usage.completion_tokens == 7
    # when both are given, max_completion_tokens is the one that counts
    both = _chat(client, max_tokens=30, max_completion_tokens=4, seed=5)
    assert both.choices[0].finish_reason == "length"
    assert both.usage.completion_tokens == 4


def test_n_choices(client: openai.OpenAI) -> None:
    answer = _chat(client, n=3, seed=21, max_tokens=20)
    assert [c.index for c in answer.choices] == [0, 1, 2]
    texts = [c.message.content for c in answer.choices]
    assert all(texts)
    assert len(set(texts)) == 3, "each choice is its own sample"
    assert all(c.message.role == "assistant" for c in answer.choices)
    assert answer.usage.completion_tokens == 60  # 3 choices of exactly 20 tokens each

    chunks = _stream(client, n=3, seed=21, max_tokens=20)
    assert _texts_by_index(chunks) == dict(enumerate(texts))
    assert _finishes_by_index(chunks) == {0: ["length"], 1: ["length"], 2: ["length"]}
    opened = {c.choices[0].index for c in chunks if c.choices and c.choices[0].delta.role == "assistant"}
    assert opened == {0, 1, 2}


def test_stop_cuts_before_the_first_occurrence(client: openai.OpenAI) -> None:
    full = _chat(client, seed=31, max_tokens=80)
    text = full.choices[0].message.content
    words = [w.strip(",.?!") for w in text.split()]
    middle = next(w for w in words[len(words) // 2 :] if len(w) >= 3)
    stop = " " + middle
    cut = text.index(stop)
    assert cut > 0
    expected = text[:cut]

    stopped = _chat(client, seed=31, max_tokens=80, stop=stop)
    assert stopped.choices[0].message.content == expected
    assert stopped.choices[0].finish_reason == "stop"
    assert stopped.usage.completion_tokens < full.usage.completion_tokens

    listed = _chat(client, seed=31, max_tokens=80, stop=["\u2603 not in the text", stop])
    assert listed.choices[0].message.content == expected

    chunks = _stream(client, seed=31, max_tokens=80, stop=[stop])
    assert _texts_by_index(chunks) == {0: expected}
    assert _finishes_by_index(chunks) == {0: ["stop"]}


# streaming ------------------------------------------------------------------------------------


def test_stream_with_usage_matches_the_plain_answer(client: openai.OpenAI) -> None:
    plain = _chat(client, seed=41, max_tokens=50)
    chunks = _stream(client, seed=41, max_tokens=50, stream_options={"include_usage": True})
    assert len(chunks) >= 3
    first = chunks[0]
    assert first.object == "chat.completion.chunk"
    assert first.id.startswith("chatcmpl-")
    assert first.choices[0].delta.role == "assistant"
    assert len({c.id for c in chunks}) == 1, "every chunk of one answer has the same id"
    assert all(c.model == MODEL for c in chunks)

    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.completion_tokens == plain.usage.completion_tokens
    assert last.usage.prompt_tokens == plain.usage.prompt_tokens
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    assert all(c.usage is None for c in chunks[:-1]), "only the last chunk carries usage"
    assert all(c.choices for c in chunks[:-1])

    assert _texts_by_index(chunks) == {0: plain.choices[0].message.content}
    assert _finishes_by_index(chunks) == {0: [plain.choices[0].finish_reason]}


def test_stream_without_usage_has_no_usage_chunk(client: openai.OpenAI) -> None:
    chunks = _stream(client, seed=42, max_tokens=12)
    assert chunks
    assert all(c.usage is None for c in chunks)
    assert all(c.choices for c in chunks), "no empty usage chunk"
    assert _finishes_by_index(chunks) == {0: ["length"]}


def test_raw_sse_framing(server: Server, user_key: str) -> None:
    body = {"model": MODEL, "messages": CHAT, "max_tokens": 6, "stream": True, "seed": 1}
    with httpx.stream("POST", f"{server.v1}/chat/completions", json=body, headers=_auth(user_key)) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers.get("x-request-id")
        raw = r.read().decode()
    events = [e for e in raw.split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events), raw
    assert events[-1] == "data: [DONE]"
    assert raw.endswith("data: [DONE]\n\n")


def test_stream_error_before_the_first_token_keeps_its_status(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        _stream(client, model="no-such-model")
    assert_sdk_error(caught.value, 404, code="model_not_found")


async def test_concurrent_requests_with_the_async_client(server: Server, user_key: str) -> None:
    sync = openai.OpenAI(base_url=server.v1, api_key=user_key, max_retries=0)
    seeds = range(100, 108)
    expected = {s: _chat(sync, seed=s, max_tokens=25).choices[0].message.content for s in seeds}

    async with openai.AsyncOpenAI(base_url=server.v1, api_key=user_key, max_retries=0) as aclient:

        async def plain(seed: int) -> tuple[str, str]:
            answer = await aclient.chat.completions.create(
                model=MODEL, messages=CHAT, seed=seed, max_tokens=25
            )
            return answer.id, answer.choices[0].message.content or ""

        async def streamed(seed: int) -> str:
            stream = await aclient.chat.completions.create(
                model=MODEL, messages=CHAT, seed=seed, max_tokens=25, stream=True
            )
            return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

        results = await asyncio.gather(*(plain(s) for s in seeds), *(streamed(s) for s in seeds))
    plains, streams = results[: len(seeds)], results[len(seeds) :]
    assert [text for _, text in plains] == [expected[s] for s in seeds]
    assert list(streams) == [expected[s] for s in seeds]
    assert len({answer_id for answer_id, _ in plains}) == len(seeds)


# request ids ----------------------------------------------------------------------------------


def test_request_id_on_success_and_error(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=CHAT, max_tokens=2)
    assert raw.status_code == 200
    generated = raw.headers.get("x-request-id")
    assert generated
    assert raw.parse().choices[0].message.role == "assistant"

    mine = "trace-1234.abc:xyz_9"
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=CHAT, max_tokens=2, extra_headers={"x-request-id": mine}
    )
    assert raw.headers["x-request-id"] == mine

    with pytest.raises(openai.BadRequestError) as caught:
        _chat(client, temperature=5, extra_headers={"x-request-id": mine})
    assert caught.value.response.headers["x-request-id"] == mine

    with pytest.raises(openai.BadRequestError) as caught:
        _chat(client, temperature=5)
    assert caught.value.request_id

    # an id that is not short and plain is replaced, not echoed (it goes into logs)
    for unsafe in ("has spaces in it", "x" * 200, "bad\\id;drop"):
        raw = client.chat.completions.with_raw_response.create(
            model=MODEL, messages=CHAT, max_tokens=2, extra_headers={"x-request-id": unsafe}
        )
        assert raw.headers["x-request-id"] not in (unsafe, "")


# authentication and authorization errors ------------------------------------------------------


def test_bad_key(server: Server) -> None:
    for key in ("sk-not-a-key", "gc_" + "A" * 49, "x" * 60):
        bad = openai.OpenAI(base_url=server.v1, api_key=key, max_retries=0)
        with pytest.raises(openai.AuthenticationError) as caught:
            _chat(bad)
        error = assert_sdk_error(caught.value, 401, code="invalid_api_key")
        assert key not in error["message"]


def test_malformed_key_with_wrong_checksum(server: Server, user_key: str) -> None:
    good = openai.OpenAI(base_url=server.v1, api_key=user_key, max_retries=0)
    assert good.models.list().data
    last = user_key[-1]
    wrong = user_key[:-1] + ("A" if last != "A" else "B")
    with pytest.raises(openai.AuthenticationError) as caught:
        openai.OpenAI(base_url=server.v1, api_key=wrong, max_retries=0).models.list()
    assert_sdk_error(caught.value, 401, code="invalid_api_key")
    truncated = user_key[:-1]
    r = httpx.get(f"{server.v1}/models", headers=_auth(truncated))
    assert_envelope(r, 401, code="invalid_api_key")


def test_missing_key(server: Server) -> None:
    r = httpx.post(f"{server.v1}/chat/completions", json={"model": MODEL, "messages": CHAT})
    assert_envelope(r, 401, code="invalid_api_key")
    for header in ("Basic abc", "Bearer", "Bearer x y z", "token-without-scheme"):
        r = httpx.get(f"{server.v1}/models", headers={"Authorization": header})
        assert_envelope(r, 401, code="invalid_api_key")


def test_revoked_key_is_refused_on_the_next_request(server: Server) -> None:
    created = create_key(server, name="to revoke")
    key_client = openai.OpenAI(base_url=server.v1, api_key=str(created["key"]), max_retries=0)
    assert _chat(key_client, max_tokens=2).choices
    r = httpx.delete(f"{server.base_url}/api/keys/{created['id']}", headers=_auth(server.admin_key))
    assert r.status_code == 200, r.text
    with pytest.raises(openai.AuthenticationError) as caught:
        _chat(key_client, max_tokens=2)
    assert_sdk_error(caught.value, 401, code="invalid_api_key")


def test_expired_key(server: Server) -> None:
    expires = datetime.now(UTC) + timedelta(seconds=1)
    created = create_key(server, name="short-lived", expires_at=expires.isoformat())
    key_client = openai.OpenAI(base_url=server.v1, api_key=str(created["key"]), max_retries=0)
    assert key_client.models.list().data  # valid until it expires
    time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.1)
    with pytest.raises(openai.AuthenticationError) as caught:
        key_client.models.list()
    assert_sdk_error(caught.value, 401, code="invalid_api_key")


def test_unknown_model(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        _chat(client, model="no-such-model")
    assert_sdk_error(caught.value, 404, code="model_not_found", param="model")
    with pytest.raises(openai.NotFoundError) as caught:
        client.completions.create(model="no-such-model", prompt="x")
    assert_sdk_error(caught.value, 404, code="model_not_found", param="model")


def test_model_not_allowed_for_the_key(server: Server) -> None:
    created = create_key(server, name="other model only", allowed_models=["some-other-model"])
    restricted = openai.OpenAI(base_url=server.v1, api_key=str(created["key"]), max_retries=0)
    with pytest.raises(openai.PermissionDeniedError) as caught:
        _chat(restricted)
    assert_sdk_error(caught.value, 403, param="model")
    with pytest.raises(openai.PermissionDeniedError):
        restricted.completions.create(model=MODEL, prompt="x")


def test_priority_above_the_keys_ceiling(client: openai.OpenAI) -> None:
    with pytest.raises(openai.PermissionDeniedError) as caught:
        _chat(client, max_tokens=2, extra_headers={"x-gpucloud-priority": "high"})
    assert_sdk_error(caught.value, 403, code="priority_not_allowed", param="priority")
    with pytest.raises(openai.PermissionDeniedError):
        _chat(client, max_tokens=2, extra_body={"priority": "high"})
    # at or below the ceiling is fine
    assert _chat(client, max_tokens=2, extra_headers={"x-gpucloud-priority": "low"}).choices
    assert _chat(client, max_tokens=2, extra_headers={"x-gpucloud-priority": "normal"}).choices
    with pytest.raises(openai.BadRequestError) as bad:
        _chat(client, max_tokens=2, extra_headers={"x-gpucloud-priority": "urgent"})
    assert_sdk_error(bad.value, 400, param="priority")


# validation errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "param"),
    [
        ({"temperature": 5}, "temperature"),
        ({"top_p": 1.5}, "top_p"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": "hi"}, {"content": "no role"}]}, "messages[1].role"),
        ({"n": 17}, "n"),
        ({"n": 0}, "n"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 10**9}, "max_tokens"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"extra_body": {"bogus": 1}}, "bogus"),
        ({"model": ""}, "model"),
    ],
)
def test_validation_errors_name_the_field(
    client: openai.OpenAI, overrides: dict[str, Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        _chat(client, **overrides)
    error = assert_sdk_error(caught.value, 400, param=param)
    assert error["type"] == "invalid_request_error"


def test_completion_validation(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model=MODEL, prompt="x", temperature=-1)
    assert_sdk_error(caught.value, 400, param="temperature")
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model=MODEL, prompt="x", extra_body={"messages": CHAT})
    assert_sdk_error(caught.value, 400, param="messages")


def test_invalid_json_body(server: Server, user_key: str) -> None:
    headers = {**_auth(user_key), "content-type": "application/json"}
    r = httpx.post(f"{server.v1}/chat/completions", content=b'{"model": "x", ', headers=headers)
    assert_envelope(r, 400)
    r = httpx.post(f"{server.v1}/chat/completions", content=b"[1, 2]", headers=headers)
    assert_envelope(r, 400)
    r = httpx.post(f"{server.v1}/chat/completions", headers=headers)
    assert_envelope(r, 400)


def test_unknown_route_and_wrong_method(server: Server, user_key: str) -> None:
    assert_envelope(httpx.get(f"{server.v1}/nope", headers=_auth(user_key)), 404)
    assert_envelope(httpx.post(f"{server.v1}/nope/deeper", headers=_auth(user_key)), 404)
    r = httpx.get(f"{server.v1}/chat/completions", headers=_auth(user_key))
    assert_envelope(r, 405)
    r = httpx.delete(f"{server.v1}/completions", headers=_auth(user_key))
    assert_envelope(r, 405)


def test_body_over_the_limit_is_refused_fast(server: Server, user_key: str) -> None:
    big = {"model": MODEL, "messages": [{"role": "user", "content": "x" * (5 * 1024 * 1024)}]}
    body = json.dumps(big).encode()
    headers = {**_auth(user_key), "content-type": "application/json"}
    started = time.monotonic()
    r = httpx.post(f"{server.v1}/chat/completions", content=body, headers=headers, timeout=30)
    assert time.monotonic() - started < 5
    assert_envelope(r, 413, code="request_too_large")

    def chunks() -> Iterator[bytes]:  # no Content-Length: the bound applies while reading
        yield body[:1024]
        for at in range(1024, len(body), 256 * 1024):
            yield body[at : at + 256 * 1024]

    r = httpx.post(f"{server.v1}/chat/completions", content=chunks(), headers=headers, timeout=30)
    assert_envelope(r, 413, code="request_too_large")

    # just under the limit is read (and then judged on its content)
    small = {"model": MODEL, "messages": [{"role": "user", "content": "y" * (3 * 1024 * 1024)}], "n": 99}
    r = httpx.post(f"{server.v1}/chat/completions", json=small, headers=_auth(user_key), timeout=30)
    assert_envelope(r, 400, param="n")


# health and deny-by-default -------------------------------------------------------------------


def test_health_and_ready_need_no_key(server: Server) -> None:
    r = httpx.get(f"{server.base_url}/health")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"
    assert r.headers.get("x-request-id")
    r = httpx.get(f"{server.base_url}/ready")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"


def _route_table() -> list[tuple[str, str]]:
    """Every (method, path) the gateway serves, from its own OpenAPI schema."""
    schema = create_app(Settings()).openapi()
    table: list[tuple[str, str]] = []
    for path, operations in schema["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        table.extend((method.upper(), concrete) for method in sorted(operations))
    return table


def test_every_route_but_health_needs_a_key(server: Server) -> None:
    table = _route_table()
    paths = {path for _, path in table}
    assert {"/v1/models", "/v1/chat/completions", "/api/keys", "/api/me", "/api/usage"} <= paths
    # health, readiness, sign-in and the other public routes of the permission table
    open_routes = {route for route, need in ROUTES.items() if need is Need.PUBLIC}
    assert {("GET", "/health"), ("GET", "/ready"), ("POST", "/api/auth/login")} <= open_routes <= set(table)
    for method, path in table:
        if (method, path) in open_routes:
            continue
        r = httpx.request(method, f"{server.base_url}{path}", timeout=10)
        assert_envelope(r, 401, code="invalid_api_key")
