"""The Files, Batch and Webhooks APIs' answers (OpenAI's fields): the models and their builders."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import Field

from gpucloud.batches.states import BatchStatus
from gpucloud.batches.store import Counts, unix
from gpucloud.db.models import Batch, StoredFile, WebhookDelivery, WebhookEndpoint
from gpucloud.db.models.offline import DeliveryStatus
from gpucloud.gateway.views.base import View


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
    org_id: str | None  # the organisation it serves (all its keys' events); None: its key's alone
    created_by: str  # the id of the key that made it


class WebhookEndpointList(View):
    object: Literal["list"]
    data: list[WebhookEndpointView]
    can_manage: bool = Field(
        description="whether this key may create and delete endpoints and ask for redeliveries"
    )


class WebhookDeliveryView(View):
    id: str
    object: Literal["webhook_delivery"]
    endpoint_id: str
    event_id: str
    event_type: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: int | None
    last_status_code: int | None
    last_error: str | None
    created_at: int
    delivered_at: int | None


class WebhookDeliveryList(View):
    object: Literal["list"]
    data: list[WebhookDeliveryView]


def file_view(row: StoredFile) -> FileObject:
    return FileObject(
        id=row.id,
        object="file",
        bytes=row.bytes,
        created_at=int(row.created_at.timestamp()),
        filename=row.filename,
        purpose=row.purpose,
        status="processed",
        status_details=None,
        expires_at=None,
    )


def file_list(rows: Sequence[StoredFile], limit: int) -> FileList:
    """A page of files: `rows` holds one more than `limit` when there is another page."""
    data = [file_view(r) for r in rows[:limit]]
    return FileList(
        object="list",
        data=data,
        first_id=data[0].id if data else None,
        last_id=data[-1].id if data else None,
        has_more=len(rows) > limit,
    )


def batch_list(rows: Sequence[Batch], counts: Mapping[str, Counts], limit: int) -> BatchList:
    """A page of batches: `rows` holds one more than `limit` when there is another page."""
    data = [batch_view(r, counts[r.id]) for r in rows[:limit]]
    return BatchList(
        object="list",
        data=data,
        first_id=data[0].id if data else None,
        last_id=data[-1].id if data else None,
        has_more=len(rows) > limit,
    )


def batch_view(row: Batch, counts: Counts) -> BatchObject:
    return BatchObject(
        id=row.id,
        object="batch",
        endpoint=row.endpoint,
        errors=BatchErrors(**row.errors) if row.errors else None,
        input_file_id=row.input_file_id,
        completion_window=row.completion_window,
        status=BatchStatus(row.status),
        output_file_id=row.output_file_id,
        error_file_id=row.error_file_id,
        created_at=int(row.created_at.timestamp()),
        in_progress_at=unix(row.in_progress_at),
        expires_at=unix(row.expires_at),
        finalizing_at=unix(row.finalizing_at),
        completed_at=unix(row.completed_at),
        failed_at=unix(row.failed_at),
        expired_at=unix(row.expired_at),
        cancelling_at=unix(row.cancelling_at),
        cancelled_at=unix(row.cancelled_at),
        request_counts=RequestCounts(**counts.view()),
        metadata=row.meta,
    )


def endpoint_view(row: WebhookEndpoint, secret: str | None = None) -> WebhookEndpointView:
    return WebhookEndpointView(
        id=row.id,
        object="webhook_endpoint",
        url=row.url,
        events=list(row.events),
        created_at=int(row.created_at.timestamp()),
        secret=secret,
        org_id=row.org_id,
        created_by=row.key_id,
    )


def delivery_view(row: WebhookDelivery, event_type: str) -> WebhookDeliveryView:
    return WebhookDeliveryView(
        id=row.id,
        object="webhook_delivery",
        endpoint_id=row.endpoint_id,
        event_id=row.event_id,
        event_type=event_type,
        status=DeliveryStatus(row.status),
        attempts=row.attempts,
        next_attempt_at=unix(row.next_attempt_at),
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        created_at=int(row.created_at.timestamp()),
        delivered_at=unix(row.delivered_at),
    )
