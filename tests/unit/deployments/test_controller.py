"""The controller's use of the scheduler (`deployments.plan`) and the derived deployment state,
on tables: no database, no processes — rows are built in memory."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from gpucloud.db import Deployment, DeploymentReplica, WorkerNode
from gpucloud.deployments import plan
from gpucloud.deployments.states import DeploymentState, ReplicaState, ReplicaStatus, derive

NOW = datetime(2026, 11, 23, tzinfo=UTC)


def worker(wid: str, *gb: float, state: str = "healthy", draining: bool = False) -> WorkerNode:
    gpus = [
        {"uuid": f"{wid}-g{i}", "name": "H100", "index": i, "memory_total_bytes": int(g * 1e9)}
        for i, g in enumerate(gb)
    ]
    return WorkerNode(
        id=wid,
        hostname=wid,
        labels={},
        inventory={"gpus": gpus},
        models=[],
        slots=8,
        state=state,
        draining=draining,
        registered_at=NOW,
        last_heartbeat_at=NOW,
        consecutive_beats=3,
    )


def deployment(did: str, gb: float, replicas: int = 1, **kw: Any) -> Deployment:
    values: dict[str, Any] = {
        "id": did,
        "name": did,
        "engine": "simulated",
        "source": None,
        "engine_options": {},
        "replicas": replicas,
        "gpu_memory_gb": gb,
        "gpu_memory_estimated": False,
        "gpu_count": 1,
        "labels": {},
        "gpu_type": None,
        "policy": "spread",
        "on_demand": False,
        "idle_unload_seconds": None,
        "state": "scheduled",
        "reason": None,
        "created_at": NOW,
        "updated_at": NOW,
    }
    values.update(kw)
    return Deployment(**values)


def replica(did: str, index: int, wid: str, gpu: int = 0) -> DeploymentReplica:
    return DeploymentReplica(
        deployment_id=did,
        index=index,
        worker_id=wid,
        gpu_uuids=[f"{wid}-g{gpu}"],
        state="ready",
        reason=None,
        updated_at=NOW,
    )


def places(
    workers: list[WorkerNode], deps: list[Deployment], current: list[DeploymentReplica] | None = None
) -> dict[tuple[str, int], str]:
    placed, _ = plan(workers, deps, current or [])
    return {(p.deployment, p.replica): p.worker_id for p in placed}


def test_an_unhealthy_worker_keeps_its_replicas_but_gets_no_new_ones() -> None:
    fleet = [worker("a", 80, state="unhealthy"), worker("b", 80)]
    got = places(fleet, [deployment("d", 10, replicas=2)], [replica("d", 0, "a")])
    assert got == {("d", 0): "a", ("d", 1): "b"}


@pytest.mark.parametrize("state", ["offline"])
def test_an_offline_workers_replicas_move(state: str) -> None:
    fleet = [worker("a", 80, state=state), worker("b", 80)]
    assert places(fleet, [deployment("d", 10)], [replica("d", 0, "a")]) == {("d", 0): "b"}


def test_a_gone_worker_is_like_an_offline_one() -> None:
    assert places([worker("b", 80)], [deployment("d", 10)], [replica("d", 0, "a")]) == {("d", 0): "b"}


def test_on_demand_deployments_share_memory_with_each_other_not_with_always_on() -> None:
    fleet = [worker("a", 80)]
    deps = [
        deployment("always", 40),
        deployment("od1", 40, on_demand=True),
        deployment("od2", 40, on_demand=True),
        deployment("od3", 41, on_demand=True),
    ]
    placed, short = plan(fleet, deps, [])
    got = {(p.deployment, p.replica): p.worker_id for p in placed}
    # od1 and od2 each fit beside `always` (40 + 40 = 80) and may share that room; od3 does not fit.
    assert got == {("always", 0): "a", ("od1", 0): "a", ("od2", 0): "a"}
    assert "40.0 GB free" in short.get("od3", ""), short


def test_nothing_fits_names_the_shortfall() -> None:
    _, short = plan([worker("a", 24, 24)], [deployment("big", 30)], [])
    assert "30.0 GB" in short["big"], short
    assert "24.0 GB" in short["big"], short


R = ReplicaState


@pytest.mark.parametrize(
    ("states", "wanted", "expected"),
    [
        ([], 1, DeploymentState.PENDING),
        ([R.SCHEDULED], 1, DeploymentState.SCHEDULED),
        ([R.LOADING, R.SCHEDULED], 2, DeploymentState.LOADING),
        ([R.READY, R.LOADING], 2, DeploymentState.READY),
        ([R.FAILED, R.FAILED], 2, DeploymentState.FAILED),
        ([R.FAILED, R.READY], 2, DeploymentState.READY),
        ([R.STANDBY], 1, DeploymentState.SCHEDULED),
    ],
)
def test_the_deployment_state_follows_from_its_replicas(
    states: list[ReplicaState], wanted: int, expected: DeploymentState
) -> None:
    placed = [ReplicaStatus(i, s, "boom" if s is R.FAILED else None) for i, s in enumerate(states)]
    got = derive(placed, wanted=wanted, scheduled_once=False, unschedulable=None)
    assert got.state is expected
    if R.FAILED in states:
        assert got.reason is not None
        assert "boom" in got.reason


def test_unschedulable_and_scaled_to_zero() -> None:
    got = derive([], wanted=1, scheduled_once=True, unschedulable="no GPU has 30 GB")
    assert got.state is DeploymentState.UNSCHEDULABLE
    assert got.reason == "no GPU has 30 GB"
    got = derive([], wanted=0, scheduled_once=True, unschedulable=None)
    assert got.state is DeploymentState.SCHEDULED
    assert "0 replicas" in (got.reason or "")
    partial = derive([ReplicaStatus(0, R.READY, None)], wanted=2, scheduled_once=True, unschedulable="short")
    assert partial.state is DeploymentState.READY
    assert partial.reason == "1 of 2 replicas ready; short"
