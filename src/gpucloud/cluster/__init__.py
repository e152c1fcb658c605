"""The GPU cluster as the control plane sees it: worker tokens, registration, heartbeats, health
with hysteresis, drain, and the fleet views. Workers reach it over HTTP (`worker/control.py`)."""

from gpucloud.cluster.directory import Transition, WorkerDirectory
from gpucloud.cluster.health import HealthPolicy, WorkerState, next_state
from gpucloud.cluster.monitor import WorkerMonitor
from gpucloud.cluster.tokens import WorkerCaller, WorkerTokenService

__all__ = [
    "HealthPolicy",
    "Transition",
    "WorkerCaller",
    "WorkerDirectory",
    "WorkerMonitor",
    "WorkerState",
    "WorkerTokenService",
    "next_state",
]
