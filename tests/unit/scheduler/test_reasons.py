"""Why a deployment did not get its replicas (scheduler/reasons.py), walking the planner's filters
in order and naming the first that leaves nothing."""

from __future__ import annotations

from gpucloud.scheduler.capacity import Ledger
from gpucloud.scheduler.reasons import explain, format_labels
from gpucloud.scheduler.spec import DeploymentSpec, Gpu, WorkerNode


def node(
    worker_id: str, *sizes: float, state: str = "healthy", draining: bool = False, **labels: str
) -> WorkerNode:
    gpus = tuple(
        Gpu(f"{worker_id}-g{i}", "NVIDIA L4" if size == 24 else "NVIDIA H100", i, size)
        for i, size in enumerate(sizes)
    )
    return WorkerNode(worker_id, state, draining, labels, gpus)  # type: ignore[arg-type]


def why(spec: DeploymentSpec, workers: list[WorkerNode], placed: int = 0) -> str:
    return explain(spec, workers, Ledger(workers), placed)


def test_no_workers_and_no_open_workers() -> None:
    spec = DeploymentSpec("d", 2, 10.0)
    assert why(spec, []) == "no workers registered; 0 of 2 replicas placed"
    text = why(spec, [node("b", 80, draining=True), node("a", 80, state="offline")])
    assert text == (
        "no healthy worker accepts new replicas; 0 of 2 replicas placed; "
        "not taking new replicas: a (offline), b (draining)"
    )


def test_at_most_five_closed_workers_are_named() -> None:
    workers = [node(f"w{i}", 80, state="unhealthy") for i in range(7)] + [node("open", 10)]
    assert why(DeploymentSpec("d", 1, 20.0), workers).endswith(
        "w0 (unhealthy), w1 (unhealthy), w2 (unhealthy), w3 (unhealthy), w4 (unhealthy) and 2 more"
    )


def test_labels_type_and_count_are_checked_in_order() -> None:
    workers = [node("a", 24, 24, zone="x"), node("b", 80, zone="y")]
    assert why(DeploymentSpec("d", 1, 1.0, labels={"zone": "z", "disk": "ssd"}), workers).startswith(
        "no healthy worker matches labels {disk: ssd, zone: z}"
    )
    assert why(DeploymentSpec("d", 1, 1.0, gpu_type="a100"), workers).startswith(
        "no GPU matches type 'a100' (eligible workers have: NVIDIA H100, NVIDIA L4)"
    )
    assert why(DeploymentSpec("d", 1, 1.0, gpu_count=3), workers).startswith(
        "needs 3 GPUs on one worker; the most on one eligible worker is 2 (worker a)"
    )
    assert why(DeploymentSpec("d", 1, 1.0), [node("c")]).startswith("no eligible worker has a GPU")


def test_memory_shortfall_says_whether_waiting_would_help() -> None:
    workers = [node("a", 24, 24), node("b", 80)]
    too_big = why(DeploymentSpec("d", 1, 100.0), workers)
    assert too_big.startswith(
        "needs 1 GPU with 100.0 GB free; no eligible GPU is that large: the largest has 80.0 GB"
    )
    assert "(worker b, GPU 0, NVIDIA H100)" in too_big
    ledger = Ledger(workers)
    ledger.commit(DeploymentSpec("other", 1, 70.0), "b", ["b-g0"])
    full = explain(DeploymentSpec("d", 3, 30.0), workers, ledger, placed=1)
    assert full == (
        "needs 1 GPU with 30.0 GB free; best available: 24.0 GB free on worker a "
        "(GPU 0, NVIDIA L4, 24.0 GB total); 1 of 3 replicas placed"
    )
    pair = explain(DeploymentSpec("d", 1, 30.0, gpu_count=2), workers, ledger, placed=0)
    assert "needs 2 GPUs on one worker with 30.0 GB free each" in pair
    assert "at most 24.0 GB free on each of 2 GPUs on worker a" in pair


def test_labels_are_formatted_sorted() -> None:
    assert format_labels({"b": "2", "a": "1"}) == "{a: 1, b: 2}"
    assert format_labels({}) == "{}"
