"""The base of the response models, the types they share, and `documented`.

Every status and priority is the one enum its owner defines (the queue's `Priority`, the job
table's `JobStatus`, the deployments' and the fleet's states), re-exported here so that a view, the
code that sets it and the OpenAPI schema name the same values.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from gpucloud.cluster.health import WorkerState
from gpucloud.db.models.core import JobStatus
from gpucloud.deployments.states import DeploymentState, ReplicaState
from gpucloud.queue.messages import Priority

Role = Literal["admin", "user"]
BudgetPeriod = Literal["daily", "monthly"]

__all__ = [
    "BudgetPeriod",
    "DeploymentState",
    "JobStatus",
    "Priority",
    "ReplicaState",
    "Role",
    "View",
    "WorkerState",
    "documented",
]


class View(BaseModel):
    """A response body: exactly these fields, no others."""

    model_config = ConfigDict(extra="forbid")


def documented(model: type[BaseModel], status: int = 200, description: str = "") -> dict[int | str, Any]:
    """`responses=` for a route: its body is `model` (for the schema only; the route renders it)."""
    entry: dict[str, Any] = {"model": model}
    if description:
        entry["description"] = description
    return {status: entry}
