"""The edge input policy (gateway/inputs.py): control characters and oversize parts of a request are
refused before any route, naming the parameter; bodies refuse them field by field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import Field, ValidationError

from gpucloud.gateway.inputs import MAX_PATH, MAX_QUERY_VALUE, CleanInput, edge_problem, has_control


def scope(
    path: str = "/v1/models", query: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None
) -> Any:
    return {"path": path, "query_string": query, "headers": headers or []}


def test_a_plain_request_passes() -> None:
    assert edge_problem(scope(query=b"limit=10&after=job_1&empty=")) is None
    assert edge_problem(scope(headers=[(b"idempotency-key", b"abc-123"), (b"x-other", b"\x01")])) is None


@pytest.mark.parametrize(
    ("request_scope", "param"),
    [
        (scope(path="/v1/a\x00b"), "path"),
        (scope(path="/" + "a" * MAX_PATH), "path"),
        (scope(query=b"limit=1%00"), "limit"),
        (scope(query=b"x%07y=1"), "query"),
        (scope(query=b"after=" + b"a" * (MAX_QUERY_VALUE + 1)), "after"),
        (scope(query=b"a=%ff"), "query"),
        (scope(query=b"&".join(b"a=1" for _ in range(201))), "query"),
        (scope(headers=[(b"idempotency-key", b"a\nb")]), "Idempotency-Key"),
        (scope(headers=[(b"x-gpucloud-priority", b"high\x7f")]), "x-gpucloud-priority"),
    ],
)
def test_refusals_name_the_parameter(request_scope: Any, param: str) -> None:
    problem = edge_problem(request_scope)
    assert problem is not None
    assert problem[1] == param


def test_body_text_may_hold_tab_and_newlines_but_no_other_controls() -> None:
    assert not has_control("line one\n\tline two\r\n")
    assert has_control("nul\x00")
    assert has_control({"ok": ["fine", {"key\x1b": 1}]})
    assert has_control(("x", "\x0c"))
    assert not has_control(3)


class Body(CleanInput):
    name: str
    labels: dict[str, str] = Field(default_factory=dict)


def test_clean_input_refuses_controls_and_unknown_fields() -> None:
    assert Body(name="a\tb").name == "a\tb"
    with pytest.raises(ValidationError) as caught:
        Body(name="ok", labels={"zone": "a\x00"})
    assert caught.value.errors()[0]["loc"] == ("labels",)
    with pytest.raises(ValidationError, match="extra"):
        Body(name="ok", colour="red")  # type: ignore[call-arg]
