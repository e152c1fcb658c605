"""Domain errors: each carries its OpenAI error type and code, a per-instance code overrides
the class's, and retry hints stay within honest bounds."""

from __future__ import annotations

import pytest

from gpucloud.errors import (
    AuthenticationFailed,
    Conflict,
    EngineFailed,
    GpucloudError,
    InvalidRequest,
    ModelNotFound,
    NotFound,
    Overloaded,
    PermissionDenied,
    QuotaExceeded,
    RateLimited,
    Unavailable,
)


@pytest.mark.parametrize(
    ("error", "error_type", "code"),
    [
        (InvalidRequest, "invalid_request_error", None),
        (AuthenticationFailed, "invalid_request_error", "invalid_api_key"),
        (PermissionDenied, "invalid_request_error", "permission_denied"),
        (NotFound, "invalid_request_error", "not_found"),
        (ModelNotFound, "invalid_request_error", "model_not_found"),
        (Conflict, "invalid_request_error", "conflict"),
        (QuotaExceeded, "insufficient_quota", "insufficient_quota"),
        (EngineFailed, "server_error", "engine_error"),
    ],
)
def test_each_error_names_its_type_and_code(
    error: type[GpucloudError], error_type: str, code: str | None
) -> None:
    raised = error("message shown to the client")
    assert (raised.error_type, raised.code, raised.message) == (
        error_type,
        code,
        "message shown to the client",
    )
    assert str(raised) == "message shown to the client"
    assert raised.param is None
    assert raised.headers == {}


def test_a_code_given_overrides_the_class_code_for_that_instance_only() -> None:
    assert NotFound("x", code="batch_not_found").code == "batch_not_found"
    assert NotFound("x").code == "not_found"
    assert ModelNotFound("x").code == "model_not_found"


def test_param_and_headers_are_kept_and_the_headers_copied() -> None:
    given = {"x-a": "1"}
    error = InvalidRequest("bad", param="model", headers=given)
    given["x-b"] = "2"
    assert error.param == "model"
    assert error.headers == {"x-a": "1"}


@pytest.mark.parametrize(
    ("asked", "kept"), [(0.0, 1.0), (0.2, 1.0), (7.5, 7.5), (120.0, 120.0), (9999.0, 120.0)]
)
def test_retry_hints_are_clamped_between_one_second_and_two_minutes(asked: float, kept: float) -> None:
    for error in (Overloaded, RateLimited, Unavailable):
        assert error("later", retry_after_s=asked).retry_after_s == kept


def test_retryable_errors_keep_their_types() -> None:
    assert (Overloaded("x", retry_after_s=1).error_type, Overloaded("x", retry_after_s=1).code) == (
        "rate_limit_error",
        "queue_full",
    )
    assert RateLimited("x", retry_after_s=1).code == "rate_limit_exceeded"
    assert Unavailable("x", retry_after_s=1, code="no_worker").code == "no_worker"
    assert Unavailable("x", retry_after_s=1).error_type == "server_error"
