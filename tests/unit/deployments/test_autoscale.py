"""The autoscaler's sizing rule (`deployments.autoscale.desired`) and its hysteresis (`Autoscaler`
with a fake clock), on in-memory rows and the real in-process queue."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry

from gpucloud.deployments.autoscale import Autoscaler, Policy, Signals, desired
from gpucloud.queue.memory import MemoryJobQueue
from tests.unit.deployments.test_controller import deployment

POLICY = Policy(min_replicas=1, max_replicas=3, target_queue_per_replica=4, target_wait_s=2.0)


def test_queue_depth_sets_the_size_within_bounds() -> None:
    assert desired(POLICY, Signals(1, 0, None))[0] == 1
    assert desired(POLICY, Signals(1, 8, None))[0] == 2
    size, why = desired(POLICY, Signals(1, 100, None))
    assert size == 3
    assert "bounded to [1, 3]" in why


def test_a_slow_queue_adds_a_replica() -> None:
    size, why = desired(POLICY, Signals(1, 1, 5.0))
    assert size == 2
    assert "queue wait 5.0 s" in why


def test_zero_wakes_on_the_first_job() -> None:
    policy = Policy(min_replicas=0, max_replicas=2)
    assert desired(policy, Signals(0, 0, None))[0] == 0
    size, why = desired(policy, Signals(0, 1, None))
    assert size == 1
    assert why.startswith("1 queued")  # any job at all asks for a replica


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _scaler(clock: Clock) -> Autoscaler:
    return Autoscaler(MemoryJobQueue(), db=None, registry=CollectorRegistry(), clock=clock)  # type: ignore[arg-type]


async def test_scale_down_waits_for_the_calm_delay() -> None:
    clock = Clock()
    scaler = _scaler(clock)
    scale: dict[str, Any] = {"min_replicas": 1, "max_replicas": 3, "scale_down_delay_s": 10}
    row = deployment("d", 10, replicas=3, autoscale=scale, autoscale_status=None)
    first = await scaler.step([row])
    assert first["d"][1]["action"] == "hold"  # an empty queue calls for 1, but not yet
    assert "after 10 s calm" in first["d"][1]["reason"]
    clock.now += 10
    later = await scaler.step([row])
    assert later["d"] == (1, later["d"][1])
    assert later["d"][1]["action"] == "scale_down"
