"""Deployments' derived state: the view carries it, a worker is told the spec of the version its
replica runs, and the catalog lists what may take requests (the views are built in
`gateway.views.deployments`)."""

from __future__ import annotations

from pathlib import Path

from gpucloud.db import Database
from gpucloud.deployments.spec import DeploymentRequest, validate
from gpucloud.deployments.states import ReplicaState
from gpucloud.deployments.store import DeploymentStore, PlacedReplica, ReplicaReport
from gpucloud.deployments.views import by_deployment, catalog
from gpucloud.gateway.views.deployments import assignment_view, deployment_view


async def _deployment(store: DeploymentStore, name: str, **fields: object) -> str:
    request = DeploymentRequest(name=name, engine="simulated", **fields)  # type: ignore[arg-type]
    return (await store.create(validate(request, Path("/nonexistent")))).id


async def test_the_view_shows_the_derived_state_and_the_replicas(db: Database) -> None:
    store = DeploymentStore(db)
    dep_id = await _deployment(store, "m", replicas=2)
    await store.replace_placements(
        [PlacedReplica(dep_id, 0, "w1", ("g0",))], [], {dep_id: ("scheduled", None)}
    )
    await store.apply_reports("w1", [ReplicaReport(dep_id, 0, ReplicaState.READY)])
    view = deployment_view(await store.get(dep_id), await store.replicas(dep_id))
    assert (view.object, view.state, view.ready_replicas) == ("deployment", "ready", 1)
    assert view.reason == "1 of 2 replicas ready"
    assert [(r.index, r.worker_id, r.state) for r in view.replica_states] == [(0, "w1", "ready")]
    assert view.autoscale is None


async def test_a_pending_deployment_waits_for_the_scheduler(db: Database) -> None:
    store = DeploymentStore(db)
    dep_id = await _deployment(store, "m", autoscale={"min_replicas": 0, "max_replicas": 2})
    decision = {"at": "2030-01-01T00:00:00+00:00", "action": "hold", "from_replicas": 0, "to_replicas": 0}
    await store.autoscaled({dep_id: (1, {**decision, "reason": "r"})})
    view = deployment_view(await store.get(dep_id), [])
    assert (view.state, view.reason) == ("pending", "waiting for the scheduler")
    assert view.autoscale is not None
    assert (view.autoscale.min_replicas, view.autoscale.max_replicas) == (0, 2)
    assert view.autoscale.last_decision is not None
    assert (view.autoscale.last_decision.action, view.autoscale.last_decision.reason) == ("hold", "r")


async def test_a_worker_is_told_the_spec_of_its_replicas_version(db: Database) -> None:
    store = DeploymentStore(db)
    dep_id = await _deployment(store, "m", engine_options={"seed": "1"})
    await store.replace_placements([PlacedReplica(dep_id, 0, "w1", ("g0",), 1)], [], {})
    await store.update(dep_id, {"engine_options": {"seed": "2"}})
    await store.replace_placements([PlacedReplica(dep_id, 1, "w1", ("g1",), 2)], [], {})
    deployment = await store.get(dep_id)
    old, new = await store.replicas(dep_id)
    assert assignment_view(old, deployment).engine_options == {"seed": "1"}
    told = assignment_view(new, deployment)
    assert (told.engine_options, told.gpu_uuids, told.index, told.name) == (
        {"seed": "2"},
        ["g1"],
        1,
        "m",
    )


async def test_the_catalog_lists_serving_and_waking_deployments(db: Database) -> None:
    store = DeploymentStore(db)
    placed = await _deployment(store, "placed")
    await _deployment(store, "unplaced")
    await _deployment(store, "scales-from-zero", replicas=0, autoscale={"min_replicas": 0, "max_replicas": 2})
    failed = await _deployment(store, "failed", engine_options={"lacks": "tools"})
    await store.replace_placements(
        [PlacedReplica(placed, 0, "w1", ()), PlacedReplica(failed, 0, "w1", ())],
        [],
        {placed: ("scheduled", None), failed: ("scheduled", None)},
    )
    await store.apply_reports("w1", [ReplicaReport(failed, 0, ReplicaState.FAILED, "load failed")])
    listed = await catalog(store)
    assert {name: entry.serving for name, entry in listed.items()} == {
        "placed": True,
        "unplaced": False,
        "scales-from-zero": True,
        "failed": False,
    }
    assert listed["failed"].reason == "replica 0: load failed"
    assert listed["unplaced"].reason == "waiting for the scheduler"
    assert listed["placed"].capabilities is not None
    assert listed["failed"].capabilities is not None
    assert not listed["failed"].capabilities.tools
    assert listed["placed"].capabilities.tools


async def test_replicas_group_by_deployment(db: Database) -> None:
    store = DeploymentStore(db)
    a, b = await _deployment(store, "a"), await _deployment(store, "b")
    await store.replace_placements(
        [PlacedReplica(a, 0, "w", ()), PlacedReplica(b, 0, "w", ()), PlacedReplica(a, 1, "w", ())], [], {}
    )
    grouped = by_deployment(await store.replicas())
    assert {k: [r.index for r in v] for k, v in grouped.items()} == {a: [0, 1], b: [0]}
