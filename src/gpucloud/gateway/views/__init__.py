"""The JSON bodies the HTTP API answers with, as pydantic models, and the functions that build them.

A route builds its answer as one of these models (keyword construction, so mypy checks every
field name and type against the model) and renders it with orjson (`gateway.responses`). The
models are attached to the routes with `responses={200: {"model": …}}`, so the schema, and the
dashboard's client generated from it, types what each route returns. `extra="forbid"` lets
tests/integration/test_response_schemas.py prove each model matches the wire. The OpenAI
inference answers are the exception: `gateway.formats` renders them as dicts on the hot path,
and the models here (`views.openai`) document them.
"""

from gpucloud.gateway.views.accounts import (
    AccessToken,
    AuditList,
    AuditRow,
    AuthConfig,
    InvitationList,
    InvitationView,
    MemberList,
    MemberRemoved,
    MemberView,
    OrgList,
    OrgView,
    SignedOut,
    UserDeleted,
    UserList,
    UserView,
)
from gpucloud.gateway.views.base import View, documented
from gpucloud.gateway.views.deployments import (
    DeploymentDeleted,
    DeploymentList,
    DeploymentView,
    ReplicaView,
)
from gpucloud.gateway.views.fleet import (
    ClusterDeployment,
    ClusterGpus,
    ClusterView,
    ClusterWorkers,
    GpuView,
    WorkerList,
    WorkerReplica,
    WorkerTokenCreated,
    WorkerTokenList,
    WorkerTokenView,
    WorkerView,
)
from gpucloud.gateway.views.keys import (
    ApiKeyCreated,
    ApiKeyDetail,
    ApiKeyList,
    ApiKeyView,
    KeyStatus,
    KeyWindow,
)
from gpucloud.gateway.views.observe import (
    Health,
    Readiness,
    Stats,
    StatsCurrent,
    StatsMinute,
    UsageReport,
    UsageRow,
    UsageTotals,
)
from gpucloud.gateway.views.openai import (
    AssistantMessage,
    ChatChoice,
    ChatCompletion,
    CompletionUsage,
    Embedding,
    EmbeddingList,
    EmbeddingUsage,
    JobError,
    JobList,
    JobView,
    ModelCard,
    ModelList,
    TextChoice,
    TextCompletion,
)
from gpucloud.gateway.views.responses import ResponseObject

# The answer to a worker's registration and heartbeats is the worker API's (shared with the worker).
from gpucloud.wire import Assignment, WorkerOrders

__all__ = [
    "AccessToken",
    "ApiKeyCreated",
    "ApiKeyDetail",
    "ApiKeyList",
    "ApiKeyView",
    "Assignment",
    "AssistantMessage",
    "AuditList",
    "AuditRow",
    "AuthConfig",
    "ChatChoice",
    "ChatCompletion",
    "ClusterDeployment",
    "ClusterGpus",
    "ClusterView",
    "ClusterWorkers",
    "CompletionUsage",
    "DeploymentDeleted",
    "DeploymentList",
    "DeploymentView",
    "Embedding",
    "EmbeddingList",
    "EmbeddingUsage",
    "GpuView",
    "Health",
    "InvitationList",
    "InvitationView",
    "JobError",
    "JobList",
    "JobView",
    "KeyStatus",
    "KeyWindow",
    "MemberList",
    "MemberRemoved",
    "MemberView",
    "ModelCard",
    "ModelList",
    "OrgList",
    "OrgView",
    "Readiness",
    "ReplicaView",
    "ResponseObject",
    "SignedOut",
    "Stats",
    "StatsCurrent",
    "StatsMinute",
    "TextChoice",
    "TextCompletion",
    "UsageReport",
    "UsageRow",
    "UsageTotals",
    "UserDeleted",
    "UserList",
    "UserView",
    "View",
    "WorkerList",
    "WorkerOrders",
    "WorkerReplica",
    "WorkerTokenCreated",
    "WorkerTokenList",
    "WorkerTokenView",
    "WorkerView",
    "documented",
]
