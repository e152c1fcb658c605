"""`DeploymentStore` on a real database: names are unique, a change to what runs makes a new spec
version and a rollout (a rollback returns to the previous one), placements replace rows in one
step, and worker reports change only their own replicas, only when something changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpucloud.db import Database
from gpucloud.deployments.spec import DeploymentRequest, validate
from gpucloud.deployments.states import ReplicaState
from gpucloud.deployments.store import DeploymentStore, PlacedReplica, ReplicaReport
from gpucloud.errors import Conflict, NotFound
from gpucloud.wire import ReplicaIn


async def _create(store: DeploymentStore, name: str = "m", **fields: object) -> str:
    request = DeploymentRequest(name=name, engine="simulated", **fields)  # type: ignore[arg-type]
    return (await store.create(validate(request, Path("/nonexistent")))).id


async def _place(store: DeploymentStore, deployment_id: str, *workers: str) -> None:
    placed = [PlacedReplica(deployment_id, i, w, (f"{w}-g0",)) for i, w in enumerate(workers)]
    await store.replace_placements(placed, [], {deployment_id: ("scheduled", None)})


def test_a_report_reads_from_a_heartbeat_entry() -> None:
    entry = ReplicaIn.model_validate(
        {"deployment_id": "dep_1", "index": "2", "state": "ready", "last_used_at": 5.0}
    )
    report = ReplicaReport.from_wire(entry)
    assert report == ReplicaReport("dep_1", 2, ReplicaState.READY, None, 5.0)
    with pytest.raises(ValueError, match="exploded"):
        ReplicaIn.model_validate({"deployment_id": "dep_1", "index": 0, "state": "exploded"})


async def test_a_deployment_is_found_by_id_or_name_and_names_are_unique(db: Database) -> None:
    store = DeploymentStore(db)
    dep_id = await _create(store, "org/model", labels={"zone": "a"})
    by_name = await store.get("org/model")
    assert by_name.id == dep_id
    assert (by_name.state, by_name.spec_version, by_name.labels) == ("pending", 1, {"zone": "a"})
    with pytest.raises(Conflict):
        await _create(store, "org/model")
    with pytest.raises(NotFound) as missing:
        await store.get("dep_missing")
    assert missing.value.code == "deployment_not_found"
    await _create(store, "a-first")
    assert [d.name for d in await store.all()] == ["a-first", "org/model"]


async def test_changing_what_runs_starts_a_rollout_and_rollback_returns(db: Database) -> None:
    store = DeploymentStore(db)
    dep_id = await _create(store)
    with pytest.raises(Conflict) as nothing_before:
        await store.rollback(dep_id)
    assert nothing_before.value.code == "no_previous_spec"
    scaled = await store.update(dep_id, {"replicas": 3, "name": "ignored"})
    assert (scaled.replicas, scaled.name, scaled.spec_version, scaled.rollout) == (3, "m", 1, None)
    changed = await store.update(dep_id, {"engine_options": {"seed": "7"}})
    assert changed.spec_version == 2
    assert changed.rollout is not None
    assert (changed.rollout["from_version"], changed.rollout["to_version"]) == (1, 2)
    back = await store.rollback(dep_id)
    assert back.engine_options == {}
    assert back.spec_version == 1  # the same spec keeps its number
    assert back.rollout is not None
    assert back.rollout["to_version"] == 1


async def test_placements_and_verdicts_are_replaced_in_one_step(db: Database) -> None:
    store = DeploymentStore(db)
    dep_id = await _create(store, replicas=2)
    await _place(store, dep_id, "w1", "w2")
    rows = await store.replicas(dep_id)
    assert [(r.index, r.worker_id, r.state, r.gpu_uuids) for r in rows] == [
        (0, "w1", "scheduled", ["w1-g0"]),
        (1, "w2", "scheduled", ["w2-g0"]),
    ]
    await store.replace_placements(
        [], [(dep_id, 1)], {dep_id: ("unschedulable", "no room")}, {dep_id: {"state": "x"}}
    )
    row = await store.get(dep_id)
    assert (row.state, row.reason, row.rollout) == ("unschedulable", "no room", {"state": "x"})
    assert [r.index for r in await store.replicas()] == [0]
    assert await store.replica_counts() == {("m", "scheduled"): 1}


async def test_reports_change_only_the_reporting_workers_replicas(db: Database) -> None:
    store = DeploymentStore(db)
    dep_id = await _create(store, replicas=2)
    await _place(store, dep_id, "w1", "w2")
    placed = await store.apply_reports(
        "w1",
        [
            ReplicaReport(dep_id, 0, ReplicaState.READY, last_used_at=1_800_000_000.0),
            ReplicaReport(dep_id, 1, ReplicaState.FAILED, "not mine"),  # w2's replica
            ReplicaReport(dep_id, 0, ReplicaState.SCHEDULED),  # never reportable
        ],
    )
    assert [(r.index, d.id) for r, d in placed] == [(0, dep_id)]
    states = {r.index: (r.state, r.reason) for r in await store.replicas(dep_id)}
    assert states == {0: ("ready", None), 1: ("scheduled", None)}
    (ready,) = [r for r in await store.replicas(dep_id) if r.index == 0]
    assert ready.last_used_at is not None
    assert ready.last_used_at.timestamp() == 1_800_000_000.0


async def test_an_unchanged_report_does_not_rewrite_the_row(db: Database) -> None:
    store = DeploymentStore(db)
    dep_id = await _create(store)
    await _place(store, dep_id, "w1")
    await store.apply_reports("w1", [ReplicaReport(dep_id, 0, ReplicaState.READY, last_used_at=100.0)])
    (first,) = await store.replicas(dep_id)
    await store.apply_reports("w1", [ReplicaReport(dep_id, 0, ReplicaState.READY, last_used_at=100.5)])
    (again,) = await store.replicas(dep_id)
    assert again.updated_at == first.updated_at  # under a second of use: not worth a write
    await store.apply_reports("w1", [ReplicaReport(dep_id, 0, ReplicaState.READY, last_used_at=102.0)])
    (later,) = await store.replicas(dep_id)
    assert later.updated_at > first.updated_at


async def test_autoscaling_and_deleting(db: Database) -> None:
    store = DeploymentStore(db)
    dep_id = await _create(store, autoscale={"min_replicas": 0, "max_replicas": 4})
    await _place(store, dep_id, "w1")
    await store.autoscaled({dep_id: (3, {"reason": "queue is deep"})})
    row = await store.get(dep_id)
    assert (row.replicas, row.autoscale_status) == (3, {"reason": "queue is deep"})
    await store.delete(dep_id)
    assert await store.replicas() == []
    with pytest.raises(NotFound):
        await store.delete(dep_id)
