"""Tables, sessions and migrations; no business rules live here."""

from gpucloud.db.database import Database
from gpucloud.db.models import (
    ApiKey,
    AuditEntry,
    Base,
    Deployment,
    DeploymentReplica,
    Invitation,
    Job,
    JobStatus,
    Organization,
    OrgMember,
    SigningKey,
    SsoCode,
    SsoLogin,
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
    "Invitation",
    "Job",
    "JobStatus",
    "OrgMember",
    "Organization",
    "SigningKey",
    "SsoCode",
    "SsoLogin",
    "UsageRecord",
    "User",
    "WorkerNode",
    "WorkerToken",
]
