"""The states of a deployment and of its replicas, and how a deployment's state follows from its
replicas' (derived when read, so it is never stale and never written twice).

A deployment goes `pending → scheduled → loading → ready`, or ends `failed` / `unschedulable` with
a reason a person can act on. Its replicas are placed by the controller (`scheduled`) and then
reported by the worker that holds them.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass


class DeploymentState(enum.StrEnum):
    PENDING = "pending"  # created; the controller has not placed it yet
    SCHEDULED = "scheduled"  # replicas have places; none is loading or ready (on-demand: standby)
    LOADING = "loading"  # at least one replica is loading, none is ready
    READY = "ready"  # at least one replica serves
    FAILED = "failed"  # every placed replica failed to load (or was taken out of rotation)
    UNSCHEDULABLE = "unschedulable"  # no replica could be placed; the reason names the shortfall


class ReplicaState(enum.StrEnum):
    SCHEDULED = "scheduled"  # placed on a worker that has not reported it yet
    LOADING = "loading"  # the worker is loading the model
    READY = "ready"  # serving
    STANDBY = "standby"  # on-demand and not loaded: loads on the first request
    FAILED = "failed"  # the load failed, or the breaker took it out of rotation; `reason` says which
    UNLOADING = "unloading"  # being unloaded (scaled down, moved, idle)


# What a worker may report; `scheduled` is the controller's alone.
REPORTABLE = frozenset(
    {
        ReplicaState.LOADING,
        ReplicaState.READY,
        ReplicaState.STANDBY,
        ReplicaState.FAILED,
        ReplicaState.UNLOADING,
    }
)
# Replica states in which requests for the model may be queued: they will be served.
SERVING = frozenset({ReplicaState.SCHEDULED, ReplicaState.LOADING, ReplicaState.READY, ReplicaState.STANDBY})


@dataclass(frozen=True, slots=True)
class ReplicaStatus:
    index: int
    state: ReplicaState
    reason: str | None


@dataclass(frozen=True, slots=True)
class Derived:
    state: DeploymentState
    reason: str | None
    ready_replicas: int


def derive(
    placed: Sequence[ReplicaStatus], *, wanted: int, scheduled_once: bool, unschedulable: str | None
) -> Derived:
    """The deployment's state from its replicas' states and the controller's last verdict."""
    ready = sum(1 for r in placed if r.state is ReplicaState.READY)
    if not placed:
        if wanted == 0:
            return Derived(DeploymentState.SCHEDULED, "scaled to 0 replicas", 0)
        if unschedulable:
            return Derived(DeploymentState.UNSCHEDULABLE, unschedulable, 0)
        return Derived(
            DeploymentState.PENDING, "waiting for the scheduler" if not scheduled_once else None, 0
        )
    state = _state_of(placed)
    return Derived(state, _reason(placed, wanted, ready, unschedulable, state), ready)


def _state_of(placed: Sequence[ReplicaStatus]) -> DeploymentState:
    states = {r.state for r in placed}
    if ReplicaState.READY in states:
        return DeploymentState.READY
    if ReplicaState.LOADING in states:
        return DeploymentState.LOADING
    if states == {ReplicaState.FAILED}:
        return DeploymentState.FAILED
    return DeploymentState.SCHEDULED


def _reason(
    placed: Sequence[ReplicaStatus],
    wanted: int,
    ready: int,
    unschedulable: str | None,
    state: DeploymentState,
) -> str | None:
    parts: list[str] = []
    if state is DeploymentState.READY and ready < wanted:
        parts.append(f"{ready} of {wanted} replicas ready")
    if unschedulable and len(placed) < wanted:
        parts.append(unschedulable)
    for replica in sorted(placed, key=lambda r: r.index):
        if replica.state is ReplicaState.FAILED and replica.reason:
            parts.append(f"replica {replica.index}: {replica.reason}")
    if state is DeploymentState.SCHEDULED and all(r.state is ReplicaState.STANDBY for r in placed):
        parts.append("on demand: loads on the first request")
    return "; ".join(parts) or None
