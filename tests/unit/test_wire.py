"""The worker API's bodies (src/gpucloud/wire.py): each survives JSON, the worker reads answers
ignoring fields it does not know, bad input is refused naming the field, and the module loads no
control-plane code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from gpucloud.cluster.health import WorkerState as ClusterWorkerState
from gpucloud.wire import (
    Assignment,
    GpuIn,
    HeartbeatIn,
    RegisterIn,
    ReplicaIn,
    WorkerOrders,
    WorkerState,
    read_orders,
)

GPU = GpuIn(
    index=0,
    uuid="GPU-0",
    name="NVIDIA H100",
    memory_total_bytes=80 * 10**9,
    memory_used_bytes=10**9,
    utilization=0.5,
    temperature_c=45.0,
    power_w=300.0,
)
REGISTRATION = RegisterIn(
    worker_id="w-1",
    hostname="gpu-7",
    labels={"zone": "a"},
    cpu_count=32,
    memory_total_bytes=256 * 10**9,
    memory_available_bytes=200 * 10**9,
    gpus=[GPU],
    models=["m"],
    slots=4,
)
REPLICA = ReplicaIn(
    deployment_id="dep_1",
    index=0,
    model="m",
    state="ready",
    reason=None,
    last_used_at=1_800_000_000.5,
    running=2,
    load={"waiting": 1.0},
)
BEAT = HeartbeatIn(
    running=2, queued=0, tokens_per_s=12.5, gpus=[GPU], replicas=[REPLICA], engines={"m": {"running": 2.0}}
)
ASSIGNMENT = Assignment(
    deployment_id="dep_1",
    name="m",
    index=0,
    engine="simulated",
    source=None,
    engine_options={"tokens_per_s": "200"},
    gpu_uuids=["GPU-0"],
    gpu_memory_gb=10.0,
    on_demand=True,
    idle_unload_seconds=300,
)
ORDERS = WorkerOrders(
    worker_id="w-1",
    state=WorkerState.HEALTHY,
    draining=False,
    heartbeat_interval_s=5.0,
    assignments=[ASSIGNMENT],
    session="secret",
)


@pytest.mark.parametrize("body", [GPU, REGISTRATION, REPLICA, BEAT, ASSIGNMENT, ORDERS])
def test_each_body_survives_json(body: BaseModel) -> None:
    assert type(body).model_validate_json(body.model_dump_json()) == body
    # What the worker sends: `model_dump(mode="json")` through an HTTP client's JSON encoder.
    assert type(body).model_validate(json.loads(json.dumps(body.model_dump(mode="json")))) == body


def test_the_worker_reads_answers_ignoring_fields_it_does_not_know() -> None:
    data: dict[str, Any] = ORDERS.model_dump(mode="json")
    data["new_field"] = {"from": "a newer control plane"}
    data["assignments"][0]["priority_class"] = "gold"
    assert read_orders(json.dumps(data)) == ORDERS
    # The answer model itself stays exact: the schema and the response tests say "these fields".
    with pytest.raises(ValidationError, match="new_field"):
        WorkerOrders.model_validate(data)


def test_an_answer_that_is_not_one_is_refused() -> None:
    with pytest.raises(ValidationError, match="heartbeat_interval_s"):
        read_orders(json.dumps(ORDERS.model_dump(mode="json") | {"heartbeat_interval_s": "soon"}))


@pytest.mark.parametrize(
    ("model", "change", "field"),
    [
        (RegisterIn, {"hostname": "node\x00"}, "hostname"),
        (RegisterIn, {"labels": {"zo\x01ne": "a"}}, "labels"),
        (RegisterIn, {"memory_available_bytes": -1}, "memory_available_bytes"),
        (RegisterIn, {"worker_id": "w 1"}, "worker_id"),
        (RegisterIn, {"gpus": [GPU.model_dump(), GPU.model_dump()]}, "GPU indexes must be distinct"),
        (RegisterIn, {"surprise": 1}, "surprise"),
        (GpuIn, {"memory_total_bytes": -1}, "memory_total_bytes"),
        (GpuIn, {"name": "H100\x1b[31m"}, "name"),
        (ReplicaIn, {"state": "exploded"}, "state"),
        (ReplicaIn, {"reason": "bad\x07"}, "reason"),
        (HeartbeatIn, {"tokens_per_s": -1.0}, "tokens_per_s"),
        (HeartbeatIn, {"engines": {"m": {"x" * 65: 1.0}}}, "engines"),
    ],
)
def test_bad_input_is_refused_naming_the_field(
    model: type[BaseModel], change: dict[str, Any], field: str
) -> None:
    valid = {RegisterIn: REGISTRATION, GpuIn: GPU, ReplicaIn: REPLICA, HeartbeatIn: BEAT}[model]
    with pytest.raises(ValidationError, match=field):
        model.model_validate(valid.model_dump() | change)


def test_the_cluster_names_the_same_worker_state() -> None:
    assert ClusterWorkerState is WorkerState


def test_the_module_loads_no_control_plane_code() -> None:
    probe = (
        "import json, sys; import gpucloud.wire; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('fastapi', 'sqlalchemy', 'starlette') or m.startswith(('gpucloud.gateway', 'gpucloud.cluster')))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, env=dict(os.environ)
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == []
