"""Errors become HTTP in one place (gateway/errors.py): status, OpenAI envelope, Retry-After, and a
500 that names only the request id. Exercised through a FastAPI app with the handlers installed."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict
from starlette.requests import Request

from gpucloud import errors
from gpucloud.gateway.errors import envelope, error_response, install, param_of, status_of
from gpucloud.gateway.middleware import BodyTooLarge


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.AuthenticationFailed("x"), 401),
        (errors.PermissionDenied("x"), 403),
        (errors.ModelNotFound("x"), 404),
        (errors.Conflict("x"), 409),
        (errors.Overloaded("x", retry_after_s=1), 429),
        (errors.QuotaExceeded("x"), 429),
        (errors.Unavailable("x", retry_after_s=1), 503),
        (errors.InvalidRequest("x"), 400),
        (errors.EngineFailed("x"), 500),
        (errors.GpucloudError("x"), 500),
    ],
)
def test_each_error_has_its_status(error: errors.GpucloudError, status: int) -> None:
    assert status_of(error) == status


def test_retry_after_is_whole_seconds_and_quota_says_do_not_retry() -> None:
    limited = error_response(errors.RateLimited("slow down", retry_after_s=2.1, headers={"x-a": "1"}))
    assert limited.headers["retry-after"] == "3"
    assert limited.headers["x-a"] == "1"
    quota = error_response(errors.QuotaExceeded("spent"))
    assert quota.headers["x-should-retry"] == "false"
    assert "retry-after" not in quota.headers
    assert envelope("m", "t") == {"error": {"message": "m", "type": "t", "param": None, "code": None}}


@pytest.mark.parametrize(
    ("loc", "param"),
    [
        (("body", "messages", 0, "content"), "messages[0].content"),
        (("body", "input", "list[str]", 2), "input[2]"),
        (("body", "tool_choice", "ToolChoice", "function", "name"), "tool_choice.function.name"),
        (("query", "limit"), "limit"),
        (("body",), None),
    ],
)
def test_params_are_request_paths(loc: tuple[Any, ...], param: str | None) -> None:
    assert param_of(loc) == param


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: int


def app() -> FastAPI:
    application = FastAPI()
    install(application)

    @application.post("/body")
    async def body(value: Body) -> dict[str, int]:
        return {"count": value.count}

    @application.get("/domain")
    async def domain() -> None:
        raise errors.Unavailable("no worker", retry_after_s=7, code="no_worker")

    @application.get("/boom")
    async def boom(request: Request) -> None:
        request.state.request_id = "req_123"
        raise RuntimeError("/srv/secret/path exploded")

    @application.get("/large")
    async def large() -> None:
        raise BodyTooLarge(10)

    return application


async def call(method: str, path: str, **kwargs: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.request(method, path, **kwargs)


async def test_validation_errors_name_the_field() -> None:
    wrong = await call("POST", "/body", json={"count": "many"})
    assert wrong.status_code == 400
    error = wrong.json()["error"]
    assert (error["param"], error["code"], error["type"]) == (
        "count",
        "invalid_value",
        "invalid_request_error",
    )
    assert error["message"].startswith("Invalid value for 'count'")
    unknown = (await call("POST", "/body", json={"count": 1, "verbosity": "low"})).json()["error"]
    assert (unknown["param"], unknown["code"]) == ("verbosity", "unsupported_parameter")
    assert unknown["message"] == "Unsupported parameter: 'verbosity' is not supported."
    broken = await call("POST", "/body", content=b"{not json", headers={"content-type": "application/json"})
    assert broken.json()["error"]["message"] == "We could not parse the JSON body of your request."
    missing = await call("POST", "/body")
    assert missing.json()["error"]["message"] == "The request needs a JSON body."


async def test_domain_errors_routing_errors_and_surprises() -> None:
    domain = await call("GET", "/domain")
    assert (domain.status_code, domain.headers["retry-after"]) == (503, "7")
    assert domain.json()["error"]["code"] == "no_worker"
    assert (await call("GET", "/nowhere")).json()["error"]["code"] == "not_found"
    wrong_method = await call("DELETE", "/domain")
    assert (wrong_method.status_code, wrong_method.json()["error"]["code"]) == (405, "method_not_allowed")
    boom = await call("GET", "/boom")
    assert boom.status_code == 500
    assert boom.json()["error"]["message"] == (
        "The server had an error while processing your request (request id req_123)."
    )
    assert "/srv" not in boom.text
    large = await call("GET", "/large")
    assert (large.status_code, large.json()["error"]["code"]) == (413, "request_too_large")
