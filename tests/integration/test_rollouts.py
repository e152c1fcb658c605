"""Rolling updates on the fleet of `test_deployments` (a gateway on Redis and PostgreSQL, three
`gpucloud worker` processes with simulated GPUs): a change to what a deployment runs rolls over
replica by replica with 8 requests always in flight and none failing; a new spec that cannot load
stops the roll with the old replicas serving; a rollback returns to the previous spec."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.integration.cluster_support import openai_client
from tests.integration.test_deployments import admin, chat, create, delete, fleet, ready, show, wait_until
from tests.support import Server

__all__ = ["fleet"]  # the module's fixture, shared
IN_FLIGHT = 8
MARKER = "OLD-SPEC-ONLY"  # the first spec fails requests that carry it; the next one does not


def patch(server: Server, ref: str, **body: Any) -> dict[str, Any]:
    r = httpx.patch(f"{server.base_url}/api/deployments/{ref}", json=body, headers=admin(server), timeout=10)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


def rolled(server: Server, ref: str, version: int, replicas: int) -> dict[str, Any] | None:
    d = ready(server, ref, replicas)
    if not d or (d["rollout"] or {}).get("state") != "complete":
        return None
    versions = {r["spec_version"] for r in d["replica_states"]}
    return d if versions == {version} else None


async def _traffic(server: Server, model: str, stop: asyncio.Event) -> tuple[int, list[str]]:
    """IN_FLIGHT lanes, each sending the next request as soon as the last one ends."""
    client = openai_client(server.v1, server.admin_key, timeout=60)
    done, failed = 0, []

    async def lane() -> None:
        nonlocal done
        while not stop.is_set():
            try:
                out = await client.chat.completions.create(
                    model=model, messages=[{"role": "user", "content": "go"}], max_tokens=12
                )
                assert out.usage is not None
                assert out.usage.completion_tokens > 0
                done += 1
            except Exception as exc:  # noqa: BLE001 - every failure is collected and reported
                failed.append(repr(exc))

    await asyncio.gather(*(lane() for _ in range(IN_FLIGHT)))
    await client.close()
    return done, failed


def under_traffic(server: Server, model: str, during: Callable[[], Any]) -> tuple[int, list[str], Any, float]:
    async def scenario() -> tuple[int, list[str], Any, float]:
        stop = asyncio.Event()
        load = asyncio.create_task(_traffic(server, model, stop))
        await asyncio.sleep(1.0)
        began = time.monotonic()
        outcome = await asyncio.to_thread(during)
        took = time.monotonic() - began
        await asyncio.sleep(1.0)
        stop.set()
        done, failed = await load
        return done, failed, outcome, took

    return asyncio.run(scenario())


def test_rolling_update_under_load_fails_nothing(fleet: tuple[Server, str]) -> None:
    server, _ = fleet
    options = {"tokens_per_s": "300", "fail_marker": MARKER}
    r = create(server, name="rolling", replicas=3, gpu_memory_gb=10, engine_options=options)
    assert r.status_code == 201, r.text
    first = wait_until(lambda: ready(server, "rolling", 3), timeout_s=20)
    assert (first["max_surge"], first["max_unavailable"]) == (1, 0)
    assert chat(server, "rolling", MARKER).status_code >= 500  # the first spec serves

    def roll() -> dict[str, Any]:
        changed = patch(server, "rolling", engine_options={"tokens_per_s": "300", "load_s": "0.4"})
        assert changed["rollout"]["state"] == "progressing", changed
        seen: list[dict[str, Any]] = []

        def finished() -> dict[str, Any] | None:
            seen.append(show(server, "rolling"))
            return rolled(server, "rolling", changed["spec_version"], 3)

        try:
            d: dict[str, Any] = wait_until(finished, timeout_s=60, every_s=0.1)
        except AssertionError:
            raise AssertionError(f"the roll did not finish: {seen[-1]}") from None
        most = max(len(x["replica_states"]) for x in seen)
        assert most <= 3 + 1, most  # never more than replicas + max_surge
        return d

    done, failed, final, took = under_traffic(server, "rolling", roll)
    per = took / 3
    print(
        f"\nrolling update of 3 replicas: {took:.1f} s ({per:.1f} s per replica), {done} requests, {failed}"
    )
    assert failed == [], failed[:5]
    assert done > 0
    assert final["rollout"]["updated_replicas"] == 3
    for _ in range(4):  # only the new spec serves now: the marker no longer fails
        assert chat(server, "rolling", MARKER).status_code == 200
    delete(server, "rolling")


def test_a_failing_spec_stops_the_roll_and_rollback_restores(fleet: tuple[Server, str]) -> None:
    server, _ = fleet
    r = create(server, name="guarded", replicas=3, gpu_memory_gb=10, engine_options={"tokens_per_s": "300"})
    assert r.status_code == 201, r.text
    before = wait_until(lambda: ready(server, "guarded", 3), timeout_s=20)

    def bad_roll() -> dict[str, Any]:
        patch(server, "guarded", engine_options={"no_such_option": "1"})
        result: dict[str, Any] = wait_until(
            lambda: (x := show(server, "guarded"))["rollout"]["state"] == "failed" and x, timeout_s=30
        )
        return result

    done, failed, stopped, _ = under_traffic(server, "guarded", bad_roll)
    assert failed == [], failed[:5]
    assert done > 0
    assert "unknown simulated engine option" in stopped["rollout"]["reason"], stopped["rollout"]
    assert stopped["rollout"]["updated_replicas"] == 0
    old = before["spec_version"]
    serving = wait_until(lambda: (x := show(server, "guarded"))["ready_replicas"] == 3 and x)
    assert {r["spec_version"] for r in serving["replica_states"]} == {old}
    assert len(serving["replica_states"]) == 3  # the failed new replica is gone
    assert chat(server, "guarded").status_code == 200

    back = httpx.post(
        f"{server.base_url}/api/deployments/guarded/rollback", headers=admin(server), timeout=10
    )
    assert back.status_code == 200, back.text
    assert back.json()["spec_version"] == old
    assert back.json()["engine_options"] == {"tokens_per_s": "300"}
    d = wait_until(lambda: rolled(server, "guarded", old, 3), timeout_s=20)
    assert d["rollout"]["state"] == "complete"
    assert chat(server, "guarded").status_code == 200
    delete(server, "guarded")


def test_surge_and_unavailable_cannot_both_be_zero(fleet: tuple[Server, str]) -> None:
    server, _ = fleet
    r = create(server, name="stuck", replicas=1, max_surge=0, max_unavailable=0)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == "max_surge"
