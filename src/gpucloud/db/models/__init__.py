"""The tables, one module per area. Times are timezone-aware UTC on every database (SQLite stores
them naive, `UTCDateTime` restores the zone); ids are prefixed random strings so they say what
they name in logs."""

from gpucloud.db.models.accounts import (
    AuditEntry,
    Invitation,
    Organization,
    OrgMember,
    SigningKey,
    SsoCode,
    SsoLogin,
    User,
)
from gpucloud.db.models.base import DEFAULT_ORG_ID, Base, UTCDateTime, utcnow
from gpucloud.db.models.core import ApiKey, Job, JobStatus, UsageRecord
from gpucloud.db.models.fleet import Deployment, DeploymentReplica, WorkerNode, WorkerToken
from gpucloud.db.models.offline import (
    Batch,
    BatchLine,
    OutboxEvent,
    StoredFile,
    WebhookDelivery,
    WebhookEndpoint,
)

__all__ = [
    "DEFAULT_ORG_ID",
    "ApiKey",
    "AuditEntry",
    "Base",
    "Batch",
    "BatchLine",
    "Deployment",
    "DeploymentReplica",
    "Invitation",
    "Job",
    "JobStatus",
    "OrgMember",
    "Organization",
    "OutboxEvent",
    "SigningKey",
    "SsoCode",
    "SsoLogin",
    "StoredFile",
    "UTCDateTime",
    "UsageRecord",
    "User",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WorkerNode",
    "WorkerToken",
    "utcnow",
]
