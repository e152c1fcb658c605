"""The base of the response models, the literal types they share, and `documented`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

Priority = Literal["high", "normal", "low"]
Role = Literal["admin", "user"]
BudgetPeriod = Literal["daily", "monthly"]
JobStatus = Literal["queued", "running", "completed", "failed", "cancelled", "dead"]
DeploymentState = Literal["pending", "scheduled", "loading", "ready", "failed", "unschedulable"]
ReplicaState = Literal["scheduled", "loading", "ready", "standby", "failed", "unloading"]
WorkerState = Literal["healthy", "unhealthy", "offline"]


class View(BaseModel):
    """A response body: exactly these fields, no others."""

    model_config = ConfigDict(extra="forbid")


def documented(model: type[BaseModel], status: int = 200, description: str = "") -> dict[int | str, Any]:
    """`responses=` for a route: its body is `model` (for the schema only; the route renders it)."""
    entry: dict[str, Any] = {"model": model}
    if description:
        entry["description"] = description
    return {status: entry}
