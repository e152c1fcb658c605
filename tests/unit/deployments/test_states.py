"""A deployment's state derived from its replicas: any ready replica makes it ready, loading wins
over the rest, all-failed is failed, and the reason names what a person can act on."""

from __future__ import annotations

from gpucloud.deployments.states import (
    REPORTABLE,
    SERVING,
    DeploymentState,
    ReplicaState,
    ReplicaStatus,
    derive,
)


def _r(index: int, state: ReplicaState, reason: str | None = None) -> ReplicaStatus:
    return ReplicaStatus(index, state, reason)


def test_without_replicas_the_verdict_decides() -> None:
    assert derive([], wanted=0, scheduled_once=True, unschedulable="x").state is DeploymentState.SCHEDULED
    unschedulable = derive([], wanted=2, scheduled_once=True, unschedulable="needs 80 GB")
    assert (unschedulable.state, unschedulable.reason) == (DeploymentState.UNSCHEDULABLE, "needs 80 GB")
    fresh = derive([], wanted=1, scheduled_once=False, unschedulable=None)
    assert (fresh.state, fresh.reason) == (DeploymentState.PENDING, "waiting for the scheduler")
    assert derive([], wanted=1, scheduled_once=True, unschedulable=None).reason is None


def test_one_ready_replica_makes_it_ready_and_the_shortfall_is_named() -> None:
    placed = [
        _r(1, ReplicaState.FAILED, "out of memory"),
        _r(0, ReplicaState.READY),
        _r(2, ReplicaState.LOADING),
    ]
    derived = derive(placed, wanted=4, scheduled_once=True, unschedulable="no room for 1")
    assert derived.state is DeploymentState.READY
    assert derived.ready_replicas == 1
    assert derived.reason == "1 of 4 replicas ready; no room for 1; replica 1: out of memory"


def test_loading_wins_over_failed_and_scheduled() -> None:
    placed = [_r(0, ReplicaState.FAILED, "bad"), _r(1, ReplicaState.LOADING), _r(2, ReplicaState.SCHEDULED)]
    assert derive(placed, wanted=3, scheduled_once=True, unschedulable=None).state is DeploymentState.LOADING


def test_all_failed_is_failed_with_every_reason_in_index_order() -> None:
    placed = [_r(1, ReplicaState.FAILED, "b"), _r(0, ReplicaState.FAILED, "a"), _r(2, ReplicaState.FAILED)]
    derived = derive(placed, wanted=3, scheduled_once=True, unschedulable=None)
    assert (derived.state, derived.reason) == (DeploymentState.FAILED, "replica 0: a; replica 1: b")


def test_on_demand_standby_says_it_loads_on_first_request() -> None:
    standby = derive([_r(0, ReplicaState.STANDBY)], wanted=1, scheduled_once=True, unschedulable=None)
    assert (standby.state, standby.reason) == (
        DeploymentState.SCHEDULED,
        "on demand: loads on the first request",
    )
    mixed = derive(
        [_r(0, ReplicaState.STANDBY), _r(1, ReplicaState.UNLOADING)],
        wanted=2,
        scheduled_once=True,
        unschedulable=None,
    )
    assert (mixed.state, mixed.reason) == (DeploymentState.SCHEDULED, None)


def test_all_ready_has_no_reason() -> None:
    derived = derive([_r(0, ReplicaState.READY)], wanted=1, scheduled_once=True, unschedulable=None)
    assert (derived.state, derived.reason, derived.ready_replicas) == (DeploymentState.READY, None, 1)


def test_workers_cannot_report_scheduled_and_failed_or_unloading_replicas_do_not_serve() -> None:
    assert ReplicaState.SCHEDULED not in REPORTABLE
    assert set(ReplicaState) - REPORTABLE == {ReplicaState.SCHEDULED}
    assert SERVING.isdisjoint({ReplicaState.FAILED, ReplicaState.UNLOADING})
