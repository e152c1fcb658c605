"""Response models of the Files, Batch and Webhooks APIs (for the OpenAPI schema only)."""

from __future__ import annotations

from typing import Any, Literal

from gpucloud.gateway.views.base import View

BatchStatus = Literal[
    "validating", "failed", "in_progress", "finalizing", "completed", "expired", "cancelling", "cancelled"
]


class FileObject(View):
    id: str
    object: Literal["file"]
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: Literal["processed"]
    status_details: str | None
    expires_at: int | None


class FileList(View):
    object: Literal["list"]
    data: list[FileObject]
    first_id: str | None
    last_id: str | None
    has_more: bool


class FileDeleted(View):
    id: str
    object: Literal["file"]
    deleted: bool


class RequestCounts(View):
    total: int
    completed: int
    failed: int


class BatchErrorItem(View):
    code: str
    message: str
    param: str | None
    line: int | None


class BatchErrors(View):
    object: Literal["list"]
    data: list[BatchErrorItem]


class BatchObject(View):
    id: str
    object: Literal["batch"]
    endpoint: str
    errors: BatchErrors | None
    input_file_id: str
    completion_window: str
    status: BatchStatus
    output_file_id: str | None
    error_file_id: str | None
    created_at: int
    in_progress_at: int | None
    expires_at: int | None
    finalizing_at: int | None
    completed_at: int | None
    failed_at: int | None
    expired_at: int | None
    cancelling_at: int | None
    cancelled_at: int | None
    request_counts: RequestCounts
    metadata: dict[str, Any] | None


class BatchList(View):
    object: Literal["list"]
    data: list[BatchObject]
    first_id: str | None
    last_id: str | None
    has_more: bool


class WebhookEndpointView(View):
    id: str
    object: Literal["webhook_endpoint"]
    url: str
    events: list[str]
    created_at: int
    secret: str | None  # only in the answer that creates it


class WebhookEndpointList(View):
    object: Literal["list"]
    data: list[WebhookEndpointView]


class WebhookDeliveryView(View):
    id: str
    object: Literal["webhook_delivery"]
    endpoint_id: str
    event_id: str
    event_type: str
    status: Literal["pending", "succeeded", "failed"]
    attempts: int
    next_attempt_at: int | None
    last_status_code: int | None
    last_error: str | None
    created_at: int
    delivered_at: int | None


class WebhookDeliveryList(View):
    object: Literal["list"]
    data: list[WebhookDeliveryView]
