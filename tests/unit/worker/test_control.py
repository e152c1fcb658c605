"""`ControlPlane` (worker/control.py) against an in-process control plane: it sends the worker
API's bodies (`gpucloud.wire`), which the control plane's own models accept, and follows the
answer (session, interval, drain, assignments) even when it carries fields it does not know."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from gpucloud.engines import build_engine
from gpucloud.engines.protocol import Engine
from gpucloud.queue.memory import MemoryJobQueue
from gpucloud.wire import SESSION_HEADER, Assignment, HeartbeatIn, RegisterIn, WorkerOrders, WorkerState
from gpucloud.worker import assignment
from gpucloud.worker.agent import WorkerAgent
from gpucloud.worker.control import ControlPlane, Refused
from gpucloud.worker.replicas import ReplicaSet
from gpucloud.worker.simulated_gpus import SimulatedProbe

ORDER = Assignment(
    deployment_id="dep_1",
    name="sim",
    index=0,
    engine="simulated",
    source=None,
    engine_options={},
    gpu_uuids=[],
    gpu_memory_gb=1.0,
    on_demand=False,
    idle_unload_seconds=None,
)


class FakeControlPlane:
    """Checks each body with the models the gateway validates, and answers with orders plus a
    field from the future (at the top and in each assignment)."""

    def __init__(self) -> None:
        self.bodies: list[RegisterIn | HeartbeatIn] = []
        self.sessions: list[str | None] = []
        self.draining = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        data = json.loads(request.content)
        if request.url.path == "/api/workers/register":
            self.bodies.append(RegisterIn.model_validate(data))
        else:
            self.bodies.append(HeartbeatIn.model_validate(data))
            self.sessions.append(request.headers.get(SESSION_HEADER))
        orders = WorkerOrders(
            worker_id="w-1",
            state=WorkerState.HEALTHY,
            draining=self.draining,
            heartbeat_interval_s=0.25,
            assignments=[ORDER],
            session="s3cret" if request.url.path.endswith("/register") else None,
        )
        answer: dict[str, Any] = orders.model_dump(mode="json") | {"added_later": [1, 2]}
        answer["assignments"][0]["added_later"] = True
        return httpx.Response(200, json=answer)


def build(a: assignment.Assignment) -> Engine:
    return build_engine(a.engine, a.name, a.engine_options)


@pytest.fixture
async def agent() -> AsyncIterator[WorkerAgent]:
    replicas = ReplicaSet(build)
    yield WorkerAgent(MemoryJobQueue(), {}, worker_id="w-1", slots=2, replicas=replicas)
    await replicas.close()


def control(fake: FakeControlPlane, **labels: str) -> ControlPlane:
    probe = SimulatedProbe.parse("H100:80,L4:24", seed="w")
    return ControlPlane("http://cp", "tok", labels=labels, probe=probe, transport=httpx.MockTransport(fake))


async def test_registration_and_beats_are_the_wire_bodies_and_their_answers_are_followed(
    agent: WorkerAgent,
) -> None:
    fake = FakeControlPlane()
    plane = control(fake, zone="a")
    try:
        orders = await plane.register(agent)
        assert (orders.session, plane.interval_s) == ("s3cret", 0.25)
        registered = fake.bodies[0]
        assert isinstance(registered, RegisterIn)
        assert (registered.worker_id, registered.labels, registered.slots) == ("w-1", {"zone": "a"}, 2)
        assert [gpu.name for gpu in registered.gpus] == ["H100", "L4"]
        # The assignment was applied, despite the fields this worker does not know.
        assert [(r.deployment_id, r.model) for r in await agent.replica_reports()] == [("dep_1", "sim")]
        fake.draining = True
        await plane.heartbeat(agent)
        beat = fake.bodies[1]
        assert isinstance(beat, HeartbeatIn)
        assert fake.sessions == ["s3cret"]
        assert len(beat.gpus) == 2
        assert [(r.deployment_id, r.index, r.model) for r in beat.replicas] == [("dep_1", 0, "sim")]
        assert agent.draining
    finally:
        await plane.close()


async def test_a_body_that_breaks_the_api_limits_is_refused_before_it_is_sent(agent: WorkerAgent) -> None:
    fake = FakeControlPlane()
    plane = control(fake, **{"not a label key": "x"})
    try:
        with pytest.raises(Refused, match="registration is not valid"):
            await plane.register(agent)
        assert fake.bodies == []
    finally:
        await plane.close()
