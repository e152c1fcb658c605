"""Tables, sessions and migrations; no business rules live here."""

from gpucloud.db.database import Database
from gpucloud.db.models import (
    ApiKey,
    AuditEntry,
    Base,
    Deployment,
    DeploymentReplica,
    Job,
    JobStatus,
    Organization,
    OrgMember,
    SigningKey,
    UsageRecord,
    User,
    WorkerNode,
    WorkerToken,
)

__all__ = [
    "ApiKey",
    "AuditEntry",
    "Base",
    "Database",
    "Deployment",
    "DeploymentReplica",
    "Job",
    "JobStatus",
    "OrgMember",
    "Organization",
    "SigningKey",
    "UsageRecord",
    "User",
    "WorkerNode",
    "WorkerToken",
]
