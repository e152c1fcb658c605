"""Domain errors. The gateway maps each to an HTTP status and an OpenAI error envelope
(`gateway.errors`); nothing here knows about HTTP beyond the intent each class names.
"""

from __future__ import annotations


class GpucloudError(Exception):
    """Base of every error a client may see; `message` is safe to show (no secrets, no paths)."""

    error_type = "server_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.headers = dict(headers or {})
        if code is not None:
            self.code = code


class InvalidRequest(GpucloudError):
    error_type = "invalid_request_error"


class AuthenticationFailed(GpucloudError):
    error_type = "invalid_request_error"
    code = "invalid_api_key"


class PermissionDenied(GpucloudError):
    error_type = "invalid_request_error"
    code = "permission_denied"


class NotFound(GpucloudError):
    error_type = "invalid_request_error"
    code = "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


class Conflict(GpucloudError):
    error_type = "invalid_request_error"
    code = "conflict"


class RetryableError(GpucloudError):
    """The request may succeed later; `retry_after_s` is an honest estimate (≤ 120 s)."""

    def __init__(
        self,
        message: str,
        *,
        retry_after_s: float,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, code=code, headers=headers)
        self.retry_after_s = max(1.0, min(120.0, retry_after_s))


class Overloaded(RetryableError):
    """Too many requests queued for the model: 429."""

    error_type = "rate_limit_error"
    code = "queue_full"


class RateLimited(RetryableError):
    """A per-key limit (requests, tokens or concurrency per minute) has no room now: 429."""

    error_type = "rate_limit_error"
    code = "rate_limit_exceeded"


class QuotaExceeded(GpucloudError):
    """The key's token quota or budget for the period is spent: 429, and retrying will not help."""

    error_type = "insufficient_quota"
    code = "insufficient_quota"


class Unavailable(RetryableError):
    """Nothing can serve the request right now (no worker, queue down, waited too long): 503."""

    error_type = "server_error"
    code = "service_unavailable"


class EngineFailed(GpucloudError):
    """The model failed while serving the request."""

    error_type = "server_error"
    code = "engine_error"
