"""The scheduler's input and output types (scheduler/spec.py): what they refuse and what they derive."""

from __future__ import annotations

import math

import pytest

from gpucloud.scheduler.spec import DeploymentSpec, Gpu, Placement, ScheduleResult, WorkerNode


def worker(**fields: object) -> WorkerNode:
    values: dict[str, object] = {"id": "w", "state": "healthy", "draining": False, "labels": {}, "gpus": ()}
    return WorkerNode(**(values | fields))  # type: ignore[arg-type]


@pytest.mark.parametrize("memory", [-1.0, math.nan, math.inf])
def test_gpu_memory_is_a_finite_size(memory: float) -> None:
    with pytest.raises(ValueError, match="GPU g memory_total_gb must be a finite number >= 0"):
        Gpu("g", "H100", 0, memory)


def test_workers_refuse_unknown_states_duplicate_gpus_and_bad_reservations() -> None:
    with pytest.raises(ValueError, match="unknown state 'sleeping'"):
        worker(state="sleeping")
    gpu = Gpu("g", "H100", 0, 80)
    with pytest.raises(ValueError, match="duplicate GPU uuid"):
        worker(gpus=(gpu, Gpu("g", "H100", 1, 80)))
    with pytest.raises(ValueError, match="reserved memory on g"):
        worker(gpus=(gpu,), memory_reserved_gb={"g": math.nan})
    worker(memory_reserved_gb={"unknown-uuid": 3.0})  # ignored by the planner, but still a size


@pytest.mark.parametrize(
    ("state", "draining", "accepts"),
    [
        ("healthy", False, True),
        ("healthy", True, False),
        ("unhealthy", False, False),
        ("offline", False, False),
    ],
)
def test_only_healthy_open_workers_take_new_replicas(state: str, draining: bool, accepts: bool) -> None:
    assert worker(state=state, draining=draining).accepts_new_replicas is accepts


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"replicas": -1}, "replicas must be >= 0"),
        ({"gpu_count": -1}, "gpu_count must be >= 0"),
        ({"gpu_memory_gb": math.nan}, "gpu_memory_gb must be a finite number"),
        ({"policy": "random"}, "unknown policy 'random'"),
    ],
)
def test_deployment_specs_refuse_meaningless_values(fields: dict[str, object], message: str) -> None:
    values: dict[str, object] = {"name": "d", "replicas": 1, "gpu_memory_gb": 10.0}
    with pytest.raises(ValueError, match=message):
        DeploymentSpec(**(values | fields))  # type: ignore[arg-type]


def test_demand_counts_every_gpu_of_a_replica() -> None:
    assert DeploymentSpec("d", 1, 10.0, gpu_count=4).demand_gb == 40.0
    assert DeploymentSpec("cpu", 3, 0.0, gpu_count=0).demand_gb == 0.0


def test_a_result_lists_one_deployments_placements() -> None:
    placements = (
        Placement("a", 0, "w1", ("g0",)),
        Placement("b", 0, "w1", ()),
        Placement("a", 1, "w2", ("g1",)),
    )
    result = ScheduleResult(placements, {})
    assert [p.replica for p in result.for_deployment("a")] == [0, 1]
    assert result.for_deployment("missing") == ()
