"""The scratch ledger of one `schedule()` call (scheduler/capacity.py)."""

from __future__ import annotations

from gpucloud.scheduler.capacity import EPSILON_GB, GpuSlot, Ledger, gpu_type_matches, labels_match
from gpucloud.scheduler.spec import DeploymentSpec, Gpu, WorkerNode

H100 = Gpu("u0", "NVIDIA H100 80GB HBM3", 0, 80.0)
A10 = Gpu("u1", "NVIDIA A10", 1, 24.0)


def node(worker_id: str, *gpus: Gpu, reserved: dict[str, float] | None = None) -> WorkerNode:
    return WorkerNode(worker_id, "healthy", False, {}, gpus, reserved or {})


def test_decimal_sizes_fill_a_gpu_despite_rounding() -> None:
    slot = GpuSlot("w", Gpu("g", "x", 0, 0.3), used_gb=0.0)
    for _ in range(3):
        assert slot.fits(0.1)
        slot.used_gb += 0.1
    assert slot.free_gb != 0.0  # 0.3 - (0.1 + 0.1 + 0.1) is float noise...
    assert slot.free_key == 0.0  # ...that comparisons do not see
    assert not slot.fits(0.1)
    assert slot.fits(EPSILON_GB / 2)


def test_gpu_type_is_a_case_insensitive_substring() -> None:
    assert gpu_type_matches(None, A10)
    assert gpu_type_matches("h100", H100)
    assert not gpu_type_matches("a100", H100)


def test_labels_must_all_match() -> None:
    assert labels_match({}, {"zone": "a"})
    assert labels_match({"zone": "a"}, {"zone": "a", "rack": "1"})
    assert not labels_match({"zone": "a"}, {"zone": "b"})
    assert not labels_match({"zone": "a", "rack": "1"}, {"zone": "a"})


def test_the_ledger_starts_from_reserved_memory_and_counts_commits() -> None:
    ledger = Ledger(
        [node("w1", A10, H100, reserved={"u0": 10.0}), node("w2", Gpu("u0", "NVIDIA H100", 0, 80))]
    )
    assert [s.gpu.uuid for s in ledger.slots("w1")] == ["u0", "u1"]  # index order
    assert [s.gpu.uuid for s in ledger.slots("w1", "h100")] == ["u0"]
    assert ledger.slots("nobody") == []
    slot = ledger.slot("w1", "u0")
    assert slot is not None
    assert slot.free_gb == 70.0
    ledger.commit(DeploymentSpec("d", 2, 30.0), "w1", ["u0"])
    assert slot.free_gb == 40.0
    other = ledger.slot("w2", "u0")  # the same uuid on another worker is another GPU
    assert other is not None
    assert other.free_gb == 80.0
    assert (ledger.replicas_of("d", "w1"), ledger.load("w1"), ledger.load("w2")) == (1, 1, 0)
    ledger.commit(DeploymentSpec("cpu", 1, 0.0, gpu_count=0), "w1", [])
    assert (ledger.replicas_of("cpu", "w1"), ledger.load("w1")) == (1, 2)
    assert ledger.slot("w1", "missing") is None
