"""The deployment scheduler: placement by GPU memory, policies, rescheduling, reasons, estimates."""

from __future__ import annotations

import copy
import math
import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import replace

import pytest

from gpucloud.scheduler import (
    EPSILON_GB,
    DeploymentSpec,
    Gpu,
    Placement,
    Policy,
    ScheduleResult,
    WorkerNode,
    WorkerState,
    schedule,
)

H100 = ("NVIDIA H100 80GB HBM3", 80.0)
A10 = ("NVIDIA A10", 24.0)
A100_40 = ("NVIDIA A100-SXM4-40GB", 40.0)
L4 = ("NVIDIA L4", 24.0)
STATES: tuple[WorkerState, ...] = ("healthy", "unhealthy", "offline")
POLICIES: tuple[Policy, ...] = ("binpack", "spread")


def gpus(worker_id: str, *kinds: tuple[str, float]) -> tuple[Gpu, ...]:
    return tuple(Gpu(f"{worker_id}-g{i}", name, i, memory) for i, (name, memory) in enumerate(kinds))


def node(
    worker_id: str,
    *kinds: tuple[str, float],
    state: WorkerState = "healthy",
    draining: bool = False,
    labels: Mapping[str, str] | None = None,
    reserved: Mapping[str, float] | None = None,
) -> WorkerNode:
    return WorkerNode(worker_id, state, draining, labels or {}, gpus(worker_id, *kinds), reserved or {})


def dep(
    name: str = "llm",
    replicas: int = 1,
    memory: float = 10.0,
    *,
    count: int = 1,
    labels: Mapping[str, str] | None = None,
    gpu_type: str | None = None,
    policy: Policy = "spread",
) -> DeploymentSpec:
    return DeploymentSpec(name, replicas, memory, count, labels or {}, gpu_type, policy)


def where(result: ScheduleResult, name: str = "llm") -> list[tuple[str, tuple[str, ...]]]:
    return [(p.worker_id, p.gpu_uuids) for p in result.for_deployment(name)]


def assert_valid(
    workers: Sequence[WorkerNode],
    deployments: Sequence[DeploymentSpec],
    result: ScheduleResult,
    current: Sequence[Placement] = (),
) -> None:
    """The invariants every result must hold, whatever the input."""
    by_id = {w.id: w for w in workers}
    specs = {d.name: d for d in deployments}
    used: dict[tuple[str, str], float] = defaultdict(float)
    seen: set[tuple[str, int]] = set()
    for p in result.placements:
        spec, worker = specs[p.deployment], by_id[p.worker_id]
        assert (p.deployment, p.replica) not in seen
        seen.add((p.deployment, p.replica))
        assert 0 <= p.replica < spec.replicas
        assert worker.state == "healthy"
        assert p in current or worker.accepts_new_replicas, "new replica on a draining worker"
        assert all(worker.labels.get(k) == v for k, v in spec.labels.items())
        assert len(p.gpu_uuids) == spec.gpu_count == len(set(p.gpu_uuids))
        on_worker = {g.uuid: g for g in worker.gpus}
        for uuid in p.gpu_uuids:
            gpu = on_worker[uuid]
            assert spec.gpu_type is None or spec.gpu_type.lower() in gpu.name.lower()
            used[(worker.id, uuid)] += spec.gpu_memory_gb
    for (worker_id, uuid), total in used.items():
        worker = by_id[worker_id]
        capacity = next(g.memory_total_gb for g in worker.gpus if g.uuid == uuid)
        assert total + worker.memory_reserved_gb.get(uuid, 0.0) <= capacity + EPSILON_GB, "over-committed"
    for spec in deployments:
        complete = len(result.for_deployment(spec.name)) == spec.replicas
        assert complete == (spec.name not in result.unschedulable)
    assert list(result.placements) == sorted(result.placements, key=lambda p: (p.deployment, p.replica))


# --- placing by memory -------------------------------------------------------------------------


def test_fits_on_one_gpu() -> None:
    result = schedule([node("w1", H100)], [dep(memory=40.0)])
    assert result == ScheduleResult((Placement("llm", 0, "w1", ("w1-g0",)),), {})


@pytest.mark.parametrize("policy", POLICIES)
def test_a_model_too_big_for_the_a10_lands_on_the_h100(policy: Policy) -> None:
    workers = [node("a", A10), node("b", H100), node("c", L4)]
    result = schedule(workers, [dep(memory=40.0, policy=policy)])
    assert where(result) == [("b", ("b-g0",))]


@pytest.mark.parametrize(
    ("workers", "deployment", "reason"),
    [
        pytest.param(
            [node("w1", H100, reserved={"w1-g0": 50.0}), node("w2", A10)],
            dep(memory=40.0),
            "needs 1 GPU with 40.0 GB free; best available: 30.0 GB free on worker w1 "
            "(GPU 0, NVIDIA H100 80GB HBM3, 80.0 GB total); 0 of 1 replicas placed",
            id="memory-best-candidate",
        ),
        pytest.param(
            [node("w1", H100, reserved={"w1-g0": 20.0})],
            dep(replicas=2, memory=50.0),
            "needs 1 GPU with 50.0 GB free; best available: 10.0 GB free on worker w1 "
            "(GPU 0, NVIDIA H100 80GB HBM3, 80.0 GB total); 1 of 2 replicas placed",
            id="memory-partial",
        ),
        pytest.param(
            [node("w1", A10), node("w2", L4)],
            dep(memory=40.0),
            "needs 1 GPU with 40.0 GB free; no eligible GPU is that large: the largest has 24.0 GB total "
            "(worker w1, GPU 0, NVIDIA A10); 0 of 1 replicas placed",
            id="larger-than-any-gpu",
        ),
        pytest.param(
            [node("w1", H100, labels={"zone": "us"}), node("w2", H100, labels={"zone": "eu"})],
            dep(labels={"zone": "ap"}),
            "no healthy worker matches labels {zone: ap}; 0 of 1 replicas placed",
            id="labels",
        ),
        pytest.param(
            [node("w1", H100), node("w2", A10)],
            dep(gpu_type="H200"),
            "no GPU matches type 'H200' (eligible workers have: NVIDIA A10, NVIDIA H100 80GB HBM3); "
            "0 of 1 replicas placed",
            id="gpu-type",
        ),
        pytest.param(
            [node("w1", H100, H100), node("w2", H100)],
            dep(count=4),
            "needs 4 GPUs on one worker; the most on one eligible worker is 2 (worker w1); "
            "0 of 1 replicas placed",
            id="gpu-count",
        ),
        pytest.param(
            [node("w1", H100, H100, state="offline"), node("w2", H100, draining=True)],
            dep(),
            "no healthy worker accepts new replicas; 0 of 1 replicas placed; "
            "not taking new replicas: w1 (offline), w2 (draining)",
            id="no-open-worker",
        ),
        pytest.param([], dep(replicas=3), "no workers registered; 0 of 3 replicas placed", id="no-workers"),
        pytest.param(
            [node("w1")], dep(), "no eligible worker has a GPU; 0 of 1 replicas placed", id="cpu-only-workers"
        ),
        pytest.param(
            [node("w1", H100, H100, reserved={"w1-g0": 45.0, "w1-g1": 50.0}), node("w2", H100, A10)],
            dep(memory=40.0, count=2),
            "needs 2 GPUs on one worker with 40.0 GB free each; best available: at most 30.0 GB free on "
            "each of 2 GPUs on worker w1 (GPU 0 NVIDIA H100 80GB HBM3 35.0 GB, GPU 1 NVIDIA H100 80GB HBM3 "
            "30.0 GB); 0 of 1 replicas placed",
            id="multi-gpu-memory",
        ),
    ],
)
def test_unschedulable_reason_names_the_shortfall(
    workers: list[WorkerNode], deployment: DeploymentSpec, reason: str
) -> None:
    result = schedule(workers, [deployment])
    assert result.unschedulable == {deployment.name: reason}
    assert_valid(workers, [deployment], result)


def test_reason_lists_workers_not_taking_new_replicas() -> None:
    workers = [node("w1", A10), node("w2", H100, draining=True), node("w3", H100, state="unhealthy")]
    result = schedule(workers, [dep(memory=40.0)])
    assert result.unschedulable["llm"].endswith(
        "0 of 1 replicas placed; not taking new replicas: w2 (draining), w3 (unhealthy)"
    )


def test_reason_lists_at_most_five_closed_workers() -> None:
    workers = [node(f"w{i}", H100, state="offline") for i in range(8)]
    result = schedule(workers, [dep()])
    assert result.unschedulable["llm"].endswith(
        "not taking new replicas: w0 (offline), w1 (offline), w2 (offline), w3 (offline), w4 (offline) "
        "and 3 more"
    )


def test_a_fully_placed_deployment_has_no_reason() -> None:
    result = schedule([node("w1", H100)], [dep(replicas=0), dep("small", replicas=2)])
    assert result.unschedulable == {}
    assert result.for_deployment("llm") == ()


# --- policies ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        # w1 has 30 GB reserved: binpack fills it (least free that fits), spread goes to w2 first
        # (most free), then to w1 because w2 already holds a replica of this deployment.
        ("binpack", [("w1", ("w1-g0",)), ("w1", ("w1-g0",))]),
        ("spread", [("w2", ("w2-g0",)), ("w1", ("w1-g0",))]),
    ],
)
def test_binpack_fills_up_and_spread_spreads_across_workers(
    policy: Policy, expected: list[tuple[str, tuple[str, ...]]]
) -> None:
    workers = [node("w1", H100, reserved={"w1-g0": 30.0}), node("w2", H100)]
    assert where(schedule(workers, [dep(replicas=2, memory=20.0, policy=policy)])) == expected


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        # g0 has 80 GB free, g1 50 GB. Binpack fills g1 (50 → 30 → 10) until the next 20 GB replica
        # no longer fits, then starts on g0; spread always takes the GPU with the most free memory.
        ("binpack", ["w1-g1", "w1-g1", "w1-g0", "w1-g0"]),
        ("spread", ["w1-g0", "w1-g0", "w1-g1", "w1-g0"]),
    ],
)
def test_policies_choose_gpus_within_a_worker(policy: Policy, expected: list[str]) -> None:
    workers = [node("w1", H100, H100, reserved={"w1-g1": 30.0})]
    result = schedule(workers, [dep(replicas=4, memory=20.0, policy=policy)])
    assert [uuids[0] for _, uuids in where(result)] == expected


@pytest.mark.parametrize("policy", POLICIES)
def test_ties_break_by_worker_id_then_gpu_index(policy: Policy) -> None:
    workers = [node("w3", H100, H100), node("w1", H100, H100), node("w2", H100, H100)]
    assert where(schedule(workers, [dep(policy=policy)])) == [("w1", ("w1-g0",))]


def test_larger_requests_are_placed_first() -> None:
    # In name order, a-small would go first and spread would put it on the emptiest GPU, the H100,
    # leaving nowhere for z-big.
    workers = [node("w1", H100), node("w2", A10)]
    deployments = [dep("a-small", memory=20.0, policy="spread"), dep("z-big", memory=70.0)]
    result = schedule(workers, deployments)
    assert result.unschedulable == {}
    assert where(result, "z-big") == [("w1", ("w1-g0",))]
    assert where(result, "a-small") == [("w2", ("w2-g0",))]


# --- constraints -------------------------------------------------------------------------------


def test_labels_are_honoured() -> None:
    workers = [
        node("w1", H100, labels={"zone": "us", "tier": "prod"}),
        node("w2", H100, labels={"zone": "eu"}),
        node("w3", H100, labels={"zone": "eu", "tier": "prod"}),
    ]
    result = schedule(workers, [dep(replicas=2, labels={"zone": "eu", "tier": "prod"})])
    assert result.unschedulable == {}  # only w3 matches, so spread puts both replicas there
    assert where(result) == [("w3", ("w3-g0",)), ("w3", ("w3-g0",))]


@pytest.mark.parametrize(
    ("gpu_type", "worker"),
    [("h100", "w2"), ("H100", "w2"), ("a100", "w1"), ("40GB", "w1"), ("nvidia a10", "w3")],
)
def test_gpu_type_matches_a_case_insensitive_substring(gpu_type: str, worker: str) -> None:
    workers = [node("w1", A100_40), node("w2", H100), node("w3", A10)]
    result = schedule(workers, [dep(memory=10.0, gpu_type=gpu_type, policy="binpack")])
    assert [w for w, _ in where(result)] == [worker]


@pytest.mark.parametrize(
    ("memory", "count", "capacity"),
    # 0.1 + 0.1 + 0.1 is 0.30000000000000004 in floats: the epsilon is what lets it fill 0.3 GB.
    [(10.0, 8, 80.0), (0.1, 3, 0.3), (0.7, 10, 7.0), (20.0, 4, 80.0), (80.0, 1, 80.0)],
)
def test_never_over_commits_a_gpu(memory: float, count: int, capacity: float) -> None:
    # `count` replicas fill the GPU exactly; one more does not fit.
    workers = [WorkerNode("w1", "healthy", False, {}, (Gpu("g", "H100", 0, capacity),))]
    full = schedule(workers, [dep(replicas=count, memory=memory)])
    assert full.unschedulable == {}
    assert len(full.placements) == count
    over = schedule(workers, [dep(replicas=count + 1, memory=memory)])
    assert len(over.placements) == count
    assert over.unschedulable["llm"].endswith(f"{count} of {count + 1} replicas placed")


def test_reserved_memory_is_respected() -> None:
    workers = [node("w1", H100, H100, reserved={"w1-g0": 55.0, "w1-g1": 45.0, "unknown": 99.0})]
    result = schedule(workers, [dep(replicas=2, memory=30.0)])
    assert where(result) == [("w1", ("w1-g1",))]
    assert "best available: 25.0 GB free on worker w1 (GPU 0" in result.unschedulable["llm"]


def test_multi_gpu_replicas_take_gpus_on_one_worker() -> None:
    workers = [node("w1", H100, A10), node("w2", H100, H100, H100, reserved={"w2-g1": 60.0})]
    spread = schedule(workers, [dep(memory=20.0, count=2)])
    assert where(spread) == [("w2", ("w2-g0", "w2-g2"))]  # the emptiest two; w1 has one that fits
    binpack = schedule(workers, [dep(memory=20.0, count=2, policy="binpack")])
    assert where(binpack) == [("w2", ("w2-g1", "w2-g0"))]  # the fullest that fit, fullest first
    typed = schedule(workers, [dep(memory=20.0, count=2, gpu_type="a10")])
    assert typed.unschedulable["llm"].startswith("needs 2 GPUs of type 'a10' on one worker; the most")


def test_cpu_replicas_need_no_gpu_and_spread_over_workers() -> None:
    workers = [node("w1"), node("w2", A10), node("w3", state="offline")]
    deployments = [dep("embed", replicas=3, memory=0.0, count=0), dep("llm", memory=24.0)]
    result = schedule(workers, deployments)
    assert where(result, "embed") == [("w1", ()), ("w2", ()), ("w1", ())]
    assert where(result, "llm") == [("w2", ("w2-g0",))]  # CPU replicas took no GPU memory
    assert result.unschedulable == {}
    binpack = schedule(workers, [replace(deployments[0], policy="binpack")])
    assert where(binpack, "embed") == [("w1", ()), ("w1", ()), ("w1", ())]


# --- rescheduling ------------------------------------------------------------------------------


def three_workers(**overrides: WorkerNode) -> list[WorkerNode]:
    workers = {w.id: w for w in (node("w1", H100), node("w2", H100), node("w3", H100))}
    workers.update(overrides)
    return list(workers.values())


def test_replicas_of_a_gone_worker_move_and_the_others_stay_put() -> None:
    deployments = [dep("a", replicas=3, memory=30.0), dep("b", replicas=2, memory=20.0)]
    before = schedule(three_workers(), deployments)
    survivors = [w for w in three_workers() if w.id != "w2"]
    after = schedule(survivors, deployments, before.placements)
    assert_valid(survivors, deployments, after, before.placements)
    stayed = [p for p in before.placements if p.worker_id != "w2"]
    assert set(stayed) <= set(after.placements)
    moved = set(after.placements) - set(stayed)
    lost = {(p.deployment, p.replica) for p in before.placements if p.worker_id == "w2"}
    assert {(p.deployment, p.replica) for p in moved} == lost  # replacements reuse the indexes
    assert after.unschedulable == {}


@pytest.mark.parametrize("state", ["unhealthy", "offline"])
def test_replicas_of_an_unhealthy_worker_are_moved(state: WorkerState) -> None:
    current = [Placement("llm", 0, "w1", ("w1-g0",)), Placement("llm", 1, "w2", ("w2-g0",))]
    workers = three_workers(w1=node("w1", H100, state=state))
    result = schedule(workers, [dep(replicas=2)], current)
    assert where(result) == [("w3", ("w3-g0",)), ("w2", ("w2-g0",))]


def test_scale_down_drops_the_highest_indexes() -> None:
    deployments = [dep(replicas=5, memory=10.0)]
    before = schedule(three_workers(), deployments)
    after = schedule(three_workers(), [dep(replicas=2, memory=10.0)], before.placements)
    assert after.placements == before.placements[:2]
    scaled_up = schedule(three_workers(), [dep(replicas=6, memory=10.0)], before.placements)
    assert scaled_up.placements[:5] == before.placements
    deleted = schedule(three_workers(), [], before.placements)
    assert deleted == ScheduleResult((), {})


def test_a_draining_worker_keeps_its_replicas_but_gets_no_new_ones() -> None:
    current = [Placement("llm", 0, "w1", ("w1-g0",))]
    workers = [node("w1", H100, H100, draining=True), node("w2", H100, reserved={"w2-g0": 70.0})]
    result = schedule(workers, [dep(replicas=3)], current)
    assert where(result) == [("w1", ("w1-g0",)), ("w2", ("w2-g0",))]
    assert result.unschedulable["llm"] == (
        "needs 1 GPU with 10.0 GB free; best available: 0.0 GB free on worker w2 "
        "(GPU 0, NVIDIA H100 80GB HBM3, 80.0 GB total); 2 of 3 replicas placed; "
        "not taking new replicas: w1 (draining)"
    )


@pytest.mark.parametrize(
    ("current", "deployment", "workers"),
    [
        pytest.param([Placement("llm", 0, "w1", ("w1-g0",))], dep(memory=90.0), three_workers(), id="grew"),
        pytest.param(
            [Placement("llm", 0, "w1", ("w1-g0",))], dep(count=2), three_workers(), id="gpu-count-changed"
        ),
        pytest.param([Placement("llm", 0, "w1", ("w1-g9",))], dep(), three_workers(), id="gpu-gone"),
        pytest.param(
            [Placement("llm", 0, "w1", ("w1-g0", "w1-g0"))],
            dep(count=2),
            three_workers(w1=node("w1", H100, H100)),
            id="same-gpu-twice",
        ),
        pytest.param(
            [Placement("llm", 0, "w1", ("w1-g0",))], dep(gpu_type="A10"), three_workers(), id="type-changed"
        ),
        pytest.param(
            [Placement("llm", 0, "w1", ("w1-g0",))],
            dep(labels={"zone": "eu"}),
            three_workers(),
            id="labels-changed",
        ),
        pytest.param(
            [Placement("llm", 0, "w1", ("w1-g0",))],
            dep(memory=40.0),
            three_workers(w1=node("w1", H100, reserved={"w1-g0": 50.0})),
            id="reserved-grew",
        ),
    ],
)
def test_a_placement_that_no_longer_satisfies_its_spec_is_dropped(
    current: list[Placement], deployment: DeploymentSpec, workers: list[WorkerNode]
) -> None:
    result = schedule(workers, [deployment], current)
    assert current[0] not in result.placements
    assert_valid(workers, [deployment], result, current)


def test_when_kept_replicas_no_longer_fit_together_the_smaller_one_moves() -> None:
    current = [Placement("big", 0, "w1", ("w1-g0",)), Placement("small", 0, "w1", ("w1-g0",))]
    workers = [node("w1", H100, reserved={"w1-g0": 20.0}), node("w2", H100)]
    result = schedule(workers, [dep("small", memory=20.0), dep("big", memory=50.0)], current)
    assert where(result, "big") == [("w1", ("w1-g0",))]
    assert where(result, "small") == [("w2", ("w2-g0",))]


def test_duplicate_placements_of_one_replica_keep_one() -> None:
    current = [Placement("llm", 0, "w2", ("w2-g0",)), Placement("llm", 0, "w1", ("w1-g0",))]
    result = schedule(three_workers(), [dep()], current)
    assert result.placements == (Placement("llm", 0, "w1", ("w1-g0",)),)


# --- purity ------------------------------------------------------------------------------------


def mixed_cluster() -> tuple[list[WorkerNode], list[DeploymentSpec]]:
    workers = [
        node("w1", H100, H100, labels={"zone": "eu"}),
        node("w2", A10, A10, A10, A10, reserved={"w2-g3": 4.0}),
        node("w3", A100_40, L4, draining=True),
        node("w4", H100, state="unhealthy"),
        node("w5", L4, labels={"zone": "eu"}),
    ]
    deployments = [
        dep("llama-70b", replicas=1, memory=70.0, count=2),
        dep("mistral", replicas=3, memory=18.0, policy="binpack"),
        dep("embed", replicas=2, memory=0.0, count=0),
        dep("whisper", replicas=2, memory=6.0, labels={"zone": "eu"}),
        dep("qwen", replicas=2, memory=20.0, gpu_type="a10"),
        dep("nope", replicas=1, memory=10.0, gpu_type="B200"),
    ]
    return workers, deployments


def test_shuffled_input_gives_the_same_result() -> None:
    workers, deployments = mixed_cluster()
    first = schedule(workers, deployments)
    current = first.placements[::2]
    expected = schedule(workers, deployments, current)
    rng = random.Random(7)
    for _ in range(50):
        w, d, c = list(workers), list(deployments), list(current)
        rng.shuffle(w)
        rng.shuffle(d)
        rng.shuffle(c)
        assert schedule(w, d, c) == expected
    assert_valid(workers, deployments, expected, current)


def test_inputs_are_not_mutated() -> None:
    workers, deployments = mixed_cluster()
    current = list(schedule(workers, deployments).placements)
    snapshot = copy.deepcopy((workers, deployments, current))
    schedule(workers, deployments, current)
    assert (workers, deployments, current) == snapshot


@pytest.mark.parametrize(
    "build",
    [
        lambda: schedule([node("w1"), node("w1")], []),
        lambda: schedule([], [dep(), dep()]),
        lambda: dep(replicas=-1),
        lambda: dep(count=-1),
        lambda: dep(memory=math.nan),
        lambda: dep(memory=-1.0),
        lambda: Gpu("g", "H100", 0, math.inf),
        lambda: WorkerNode("w", "healthy", False, {}, (Gpu("g", "x", 0, 1.0), Gpu("g", "x", 1, 1.0))),
        lambda: WorkerNode("w", "sleepy", False, {}, ()),  # type: ignore[arg-type]
        lambda: DeploymentSpec("d", 1, 1.0, policy="random"),  # type: ignore[arg-type]
    ],
)
def test_meaningless_input_is_rejected(build: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        build()  # type: ignore[operator]


# --- random inputs -----------------------------------------------------------------------------

_KINDS = [H100, A10, L4, A100_40]


def random_worker(rng: random.Random, worker_id: str) -> WorkerNode:
    kinds = [rng.choice(_KINDS) for _ in range(rng.choice([0, 1, 1, 2, 4]))]
    worker = node(
        worker_id,
        *kinds,
        state=rng.choices(STATES, [8, 1, 1])[0],
        draining=rng.random() < 0.15,
        labels={"zone": rng.choice(["eu", "us"])} if rng.random() < 0.7 else {},
    )
    reserved = {
        g.uuid: round(rng.uniform(0, g.memory_total_gb), 1) for g in worker.gpus if rng.random() < 0.3
    }
    return replace(worker, memory_reserved_gb=reserved)


def random_deployment(rng: random.Random, name: str) -> DeploymentSpec:
    return dep(
        name,
        replicas=rng.randint(0, 5),
        memory=round(rng.choice([rng.uniform(0.5, 12), rng.uniform(10, 80)]), 1),
        count=rng.choice([0, 1, 1, 1, 2, 4]),
        labels={"zone": rng.choice(["eu", "us"])} if rng.random() < 0.25 else {},
        gpu_type=rng.choice([None, None, None, "h100", "A10", "l4", "H200"]),
        policy=rng.choice(POLICIES),
    )


def perturb(
    rng: random.Random, workers: list[WorkerNode], deployments: list[DeploymentSpec]
) -> tuple[list[WorkerNode], list[DeploymentSpec]]:
    """Workers leave, fail, drain or recover; deployments are deleted or scaled."""
    new_workers = []
    for w in workers:
        if rng.random() < 0.15:
            continue
        if rng.random() < 0.3:
            state = rng.choice(STATES)
            w = replace(w, state=state, draining=rng.random() < 0.2)
        new_workers.append(w)
    new_deployments = [
        replace(d, replicas=rng.randint(0, 6)) if rng.random() < 0.3 else d
        for d in deployments
        if rng.random() > 0.1
    ]
    return new_workers, new_deployments


@pytest.mark.parametrize("seed", range(300))
def test_random_clusters_hold_the_invariants(seed: int) -> None:
    rng = random.Random(seed)
    workers = [random_worker(rng, f"w{i}") for i in range(rng.randint(0, 7))]
    deployments = [random_deployment(rng, f"d{i}") for i in range(rng.randint(1, 7))]
    first = schedule(workers, deployments)
    assert_valid(workers, deployments, first)

    workers2, deployments2 = perturb(rng, workers, deployments)
    second = schedule(workers2, deployments2, first.placements)
    assert_valid(workers2, deployments2, second, first.placements)

    # Nothing that may stay was moved: the worker is still healthy and the replica still wanted.
    alive = {w.id for w in workers2 if w.state == "healthy"}
    wanted = {d.name: d.replicas for d in deployments2}
    for p in first.placements:
        if p.worker_id in alive and p.replica < wanted.get(p.deployment, 0):
            assert p in second.placements

    # Scheduling again from its own result changes nothing.
    again = schedule(workers2, deployments2, second.placements)
    assert again.placements == second.placements
    assert again.unschedulable.keys() == second.unschedulable.keys()
