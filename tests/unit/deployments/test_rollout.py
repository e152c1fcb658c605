"""The rolling-update rules (`deployments.rollout.decide`) and the controller's planning of version
groups (`deployments.plan`), on in-memory rows: surge first, an old replica removed only when enough
are ready without it, a failed new replica stops the roll, no room for a surge replaces one at a
time, a rollback reuses the earlier version, and a retiring row's index is never reused."""

from __future__ import annotations

from typing import Any

from gpucloud.db import Deployment, DeploymentReplica
from gpucloud.deployments import plan
from gpucloud.deployments.rollout import decide, new_version, spec_of
from tests.unit.deployments.test_controller import deployment, replica, worker

V1: dict[str, Any] = {"engine": "simulated", "source": None, "engine_options": {}, "gpu_memory_gb": 10.0}
V2 = {**V1, "engine_options": {"load_s": "1"}}


def rolling(
    replicas: int = 3, surge: int = 1, unavailable: int = 0, rollout: dict[str, Any] | None = None
) -> Deployment:
    started = {"state": "progressing", "reason": None, "updated_replicas": 0}
    return deployment(
        "d", 10, replicas=replicas, engine_options={"load_s": "1"}, spec_version=2,
        spec_history={"1": V1, "2": V2}, max_surge=surge, max_unavailable=unavailable,
        rollout=rollout or {**started, "from_version": 1, "to_version": 2},
    )  # fmt: skip


def rows(*spec: tuple[int, str, str]) -> list[DeploymentReplica]:
    """(version, state, worker) per replica, indexed in order."""
    out = []
    for index, (version, state, wid) in enumerate(spec):
        row = replica("d", index, wid)
        row.spec_version, row.state = version, state
        out.append(row)
    return out


def test_the_roll_surges_first_and_removes_old_only_when_enough_are_ready() -> None:
    start = decide(rolling(), rows((1, "ready", "a"), (1, "ready", "b"), (1, "ready", "c")))
    assert (start.targets, start.remove) == ({2: 1, 1: 3}, [])
    loading = decide(
        rolling(), rows((1, "ready", "a"), (1, "ready", "b"), (1, "ready", "c"), (2, "loading", "a"))
    )
    assert (loading.targets, loading.remove) == ({2: 1, 1: 3}, [])
    one_new = decide(
        rolling(), rows((1, "ready", "a"), (1, "ready", "b"), (1, "ready", "c"), (2, "ready", "a"))
    )
    assert one_new.remove == [2]  # the highest old index goes
    assert one_new.targets == {2: 2, 1: 2}
    assert one_new.rollout is not None
    assert one_new.rollout["updated_replicas"] == 1


def test_max_unavailable_without_surge_takes_one_down_first() -> None:
    first = decide(
        rolling(surge=0, unavailable=1), rows((1, "ready", "a"), (1, "ready", "b"), (1, "ready", "c"))
    )
    assert first.remove == [2]
    assert first.targets == {2: 1, 1: 2}


def test_a_failed_new_replica_stops_the_roll_and_goes() -> None:
    got_rows = rows((1, "ready", "a"), (1, "ready", "b"), (1, "ready", "c"), (2, "failed", "a"))
    got_rows[3].reason = "load failed: unknown option"
    got = decide(rolling(), got_rows)
    assert got.remove == [3]
    assert got.targets == {2: 0, 1: 3}
    assert got.rollout is not None
    assert got.rollout["state"] == "failed"
    assert "load failed: unknown option" in got.rollout["reason"]
    stopped = rolling(rollout={**got.rollout})
    held = decide(stopped, rows((1, "ready", "a"), (1, "ready", "b"), (1, "ready", "c")))
    assert (held.targets, held.remove, held.rollout) == ({2: 0, 1: 3}, [], None)


def test_no_room_for_a_surge_replaces_one_at_a_time() -> None:
    got = decide(rolling(replicas=2), rows((1, "ready", "a"), (1, "ready", "b")), surge_blocked=True)
    assert got.remove == [1]
    assert got.targets == {2: 2, 1: 1}
    assert got.rollout is not None
    assert "one replica at a time" in got.rollout["reason"]


def test_the_roll_completes_when_no_old_replica_is_left() -> None:
    got = decide(rolling(), rows((2, "ready", "a"), (2, "ready", "b"), (2, "ready", "c")))
    assert got.targets == {2: 3}
    assert got.rollout is not None
    assert (got.rollout["state"], got.rollout["updated_replicas"]) == ("complete", 3)


def test_a_rollback_reuses_the_earlier_version_and_old_replicas_keep_their_spec() -> None:
    row = rolling()
    assert spec_of(row, 1) == V1
    assert spec_of(row, 2)["engine_options"] == {"load_s": "1"}
    version, history = new_version(row, V1, [1, 2])
    assert version == 1
    assert set(history) == {"1", "2"}
    version, history = new_version(row, {**V1, "gpu_memory_gb": 12.0}, [2])
    assert version == 3
    assert set(history) == {"2", "3"}


def test_a_retiring_replica_index_is_not_reused() -> None:
    fleet = [worker("a", 24, 24)]
    current = rows((1, "ready", "a"), (2, "ready", "a"))
    current[1].gpu_uuids = ["a-g1"]
    placed, _ = plan(fleet, [rolling(replicas=1)], current[1:], {"d": {2: 2}}, retiring=current[:1])
    assert sorted((p.replica, p.spec_version) for p in placed) == [(1, 2), (2, 2)]


def test_standby_on_demand_replicas_count_as_available() -> None:
    got = decide(rolling(replicas=1), rows((1, "ready", "a"), (2, "standby", "b")))
    assert got.remove == [0]  # the new standby replica loads on the first request: the old one may go
