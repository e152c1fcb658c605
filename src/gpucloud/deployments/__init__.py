"""Model deployments: what operators ask to run, where the scheduler puts each replica, and the
state every replica is in. The API writes specs (`store`), the controller writes places
(`controller`), workers report replica states through their heartbeats."""

from gpucloud.deployments.controller import DeploymentController, plan
from gpucloud.deployments.spec import ENGINES, DeploymentRequest, validate
from gpucloud.deployments.states import DeploymentState, ReplicaState
from gpucloud.deployments.store import DeploymentStore, ReplicaReport

__all__ = [
    "ENGINES",
    "DeploymentController",
    "DeploymentRequest",
    "DeploymentState",
    "DeploymentStore",
    "ReplicaReport",
    "ReplicaState",
    "plan",
    "validate",
]
