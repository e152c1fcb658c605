"""`ReplicaSet`: the deployment replicas one worker holds — loading, serving, unloading them.

The control plane tells the worker, in each heartbeat's answer, which replicas it is to hold
(`Assignment`s); `apply` loads what is new, unloads what is gone and reloads what changed. The
agent asks `acquire(model)` for a replica to run a job on, and `release`s it afterwards.

* **On demand.** An `on_demand` replica starts in `standby`: the worker leases its model's jobs
  all the same, and the first job loads it (the job waits, within its deadline, while its lease
  is renewed). After `idle_unload_seconds` without a job it is unloaded back to `standby`.
* **GPU memory.** Replicas account `gpu_memory_gb` on each of their GPUs. Loading a replica that
  does not fit unloads the least recently used idle on-demand replicas on those GPUs first; if it
  still does not fit, the load fails with a reason that names the shortfall and is retried with
  backoff. So what is loaded never over-commits a GPU.
* **Breaker.** A replica whose jobs fail `threshold` times within `window_s` is taken out of
  rotation (`failed`, for `cooldown_s`), then tried again (`worker.replica`). Only engine failures
  count (not a request the model refused), and the reason never quotes an error (it could quote a
  request).
* **Failed loads** are retried with exponential backoff (2 s doubling to 60 s).
* **One load at a time** per worker (see `_load`); requests for ready replicas are not held up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence

from gpucloud.engines.protocol import Engine, EngineError
from gpucloud.wire import ReplicaIn
from gpucloud.worker.assignment import Assignment
from gpucloud.worker.replica import BreakerPolicy, Replica

log = logging.getLogger(__name__)

EngineBuilder = Callable[[Assignment], Engine]


class ReplicaSet:
    """The replicas of one worker (see the module docstring)."""

    def __init__(
        self,
        build: EngineBuilder,
        *,
        gpu_total_gb: Mapping[str, float] | None = None,
        on_memory: Callable[[Mapping[str, float]], None] | None = None,
        breaker: BreakerPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._build = build
        self._totals = dict(gpu_total_gb or {})
        self._on_memory = on_memory
        self._breaker = breaker or BreakerPolicy()
        self._clock = clock
        self._replicas: dict[tuple[str, int], Replica] = {}
        self._unloading: set[Replica] = set()  # their memory is held until the engine stops
        self._leaving: set[asyncio.Task[None]] = set()
        self._loading = asyncio.Lock()

    # what the agent asks ---------------------------------------------------------------------

    def models(self) -> list[str]:
        """Models whose jobs this worker may lease now: a replica serves, or will load on demand."""
        now = self._clock()
        names = {r.assignment.name for r in self._replicas.values() if self._leasable(r, now)}
        return sorted(names)

    def hosts(self, model: str) -> bool:
        return any(r.assignment.name == model for r in self._replicas.values())

    def _leasable(self, replica: Replica, now: float) -> bool:
        if replica.broken_until > now:
            return False
        if replica.state == "ready":
            return True
        return replica.assignment.on_demand and replica.state in ("standby", "loading")

    async def acquire(self, model: str, timeout_s: float) -> Replica:
        """A ready replica of `model` (the least busy), loading an on-demand one if need be."""
        deadline = time.monotonic() + timeout_s
        while True:
            replica = self._pick(model)
            if replica is not None:
                replica.active += 1
                return replica
            waiting = self._start_on_demand(model)
            if waiting is None:
                raise EngineError(f"no replica of {model!r} is ready on this worker", retryable=True)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise EngineError(f"{model!r} did not finish loading in time", retryable=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiting.settled.wait(), remaining)
            if waiting.state == "failed" and not self._pick(model):
                raise EngineError(f"{model!r} could not be loaded: {waiting.reason}")

    def release(self, replica: Replica, error: str | None = None) -> None:
        replica.active = max(0, replica.active - 1)
        if replica.active == 0:
            replica.idle.set()
        now = self._clock()
        replica.last_used = now
        if error is None:
            return
        if replica.record_failure(now, self._breaker):
            a = replica.assignment
            log.warning("replica %s/%d: %s; last error: %s", a.name, a.index, replica.reason, error[:200])

    def _pick(self, model: str) -> Replica | None:
        now = self._clock()
        ready = [
            r
            for r in self._replicas.values()
            if r.assignment.name == model and r.state == "ready" and r.broken_until <= now
        ]
        return min(ready, key=lambda r: (r.active, r.assignment.index), default=None)

    def _start_on_demand(self, model: str) -> Replica | None:
        mine = [r for r in self._replicas.values() if r.assignment.name == model]
        loading = [r for r in mine if r.state == "loading"]
        if loading:
            return loading[0]
        idle = [r for r in mine if r.assignment.on_demand and r.state in ("standby", "failed")]
        if not idle:
            return None
        replica = min(idle, key=lambda r: r.assignment.index)
        self._load_soon(replica)
        return replica

    # what the control plane says -------------------------------------------------------------

    def apply(self, assignments: Sequence[Assignment]) -> None:
        """Hold exactly these replicas: load the new, unload the gone, reload the changed."""
        wanted = {a.key: a for a in assignments}
        for key, replica in list(self._replicas.items()):
            target = wanted.get(key)
            if target is None or not replica.assignment.same_engine(target):
                self._unload_soon(self._replicas.pop(key), "no longer assigned here")
            else:
                replica.assignment = target  # on_demand / idle settings may change in place
        for key, target in wanted.items():
            if key not in self._replicas:
                replica = Replica(target)
                self._replicas[key] = replica
                if not target.on_demand:
                    self._load_soon(replica)
                log.info("replica %s/%d assigned (%s)", target.name, target.index, target.engine)

    async def tick(self) -> None:
        """Housekeeping (the agent calls it every second): idle unloads, retries, breaker ends."""
        now = self._clock()
        for replica in list(self._replicas.values()):
            a = replica.assignment
            if replica.broken_until and replica.broken_until <= now:
                replica.broken_until = 0.0
                replica.reason = None
            idle_for = now - replica.last_used
            if (
                a.on_demand
                and replica.state == "ready"
                and replica.active == 0
                and a.idle_unload_seconds is not None
                and idle_for >= a.idle_unload_seconds
            ):
                log.info("replica %s/%d idle for %.0f s: unloading", a.name, a.index, idle_for)
                await self._to_standby(replica, f"unloaded after {idle_for:.0f} s idle")
            elif replica.state == "failed" and not a.on_demand and replica.retry_at <= now:
                self._load_soon(replica)

    def reports(self, loads: Mapping[tuple[str, int], dict[str, float]] | None = None) -> list[ReplicaIn]:
        """Each replica's state for the heartbeat, with the load readings `loads` holds for it
        (by (deployment id, index): the agent reads them from the engines, `engines`)."""
        now = self._clock()
        loads = loads or {}
        out = []
        for key, replica in self._replicas.items():
            a = replica.assignment
            broken = replica.broken_until > now
            report = ReplicaIn(
                deployment_id=a.deployment_id,
                index=a.index,
                model=a.name,
                state="failed" if broken else replica.state,
                reason=replica.reason,
                last_used_at=replica.last_used or None,
                running=replica.active,
                load=loads.get(key, {}),
            )
            out.append(report)
        return out

    def engines(self) -> list[tuple[tuple[str, int], Engine]]:
        """((deployment id, index), engine) of each loaded replica, for per-engine load readings."""
        return [(key, r.engine) for key, r in self._replicas.items() if r.engine is not None]

    async def close(self) -> None:
        for replica in list(self._replicas.values()):
            self._unload_soon(replica, "worker stopping")
        self._replicas.clear()
        if self._leaving:
            await asyncio.gather(*self._leaving, return_exceptions=True)

    # loading and unloading -------------------------------------------------------------------

    def _load_soon(self, replica: Replica) -> None:
        if replica.state == "loading" or replica.engine is not None:
            return
        replica.state, replica.reason = "loading", None
        replica.settled.clear()
        a = replica.assignment
        replica.task = asyncio.create_task(self._load(replica), name=f"load-{a.name}-{a.index}")

    async def _load(self, replica: Replica) -> None:
        a = replica.assignment
        engine: Engine | None = None
        try:
            await self._make_room(replica)
            # One load at a time per worker: two engines importing transformers in two threads at
            # once can see its lazily initialised module half-built ("cannot import name ..."),
            # and loads share the host's memory and disk anyway.
            async with self._loading:
                # In a thread: the first engine of a kind imports its libraries (torch takes
                # seconds), which must not stall the event loop that serves requests and beats.
                engine = await asyncio.to_thread(self._build, a)
                await engine.start()
        except asyncio.CancelledError:
            if engine is not None:
                await engine.stop()
            raise
        except Exception as exc:  # noqa: BLE001 - any load failure is reported, never fatal to the worker
            self._failed(replica, exc)
            if engine is not None:
                with contextlib.suppress(Exception):
                    await engine.stop()
            return
        finally:
            replica.settled.set()
        replica.loaded(engine, self._clock())
        self._report_memory()
        log.info("replica %s/%d ready", a.name, a.index)

    def _failed(self, replica: Replica, exc: BaseException) -> None:
        a = replica.assignment
        replica.load_failed(self._clock(), exc)
        log.warning("replica %s/%d: %s", a.name, a.index, replica.reason)
        self._report_memory()

    async def _make_room(self, replica: Replica) -> None:
        """Unload idle on-demand replicas (least recently used first) until `replica` fits."""
        a = replica.assignment
        for uuid in a.gpu_uuids:
            total = self._totals.get(uuid)
            if total is None:
                continue  # no inventory for this GPU: nothing to account against
            while total - self._used(uuid, replica) < a.gpu_memory_gb - 1e-6:
                victim = self._evictable(uuid, replica)
                if victim is None:
                    free = total - self._used(uuid, replica)
                    raise EngineError(
                        f"not enough free memory on GPU {uuid}: needs {a.gpu_memory_gb:.1f} GB, "
                        f"{free:.1f} GB free and no idle on-demand replica to unload"
                    )
                v = victim.assignment
                log.info("replica %s/%d evicted (least recently used) for %s", v.name, v.index, a.name)
                await self._to_standby(victim, f"unloaded to make room for {a.name}")

    def _used(self, uuid: str, excluding: Replica) -> float:
        return sum(
            r.assignment.gpu_memory_gb
            for r in (*self._replicas.values(), *self._unloading)
            if r is not excluding and r.holds_memory and uuid in r.assignment.gpu_uuids
        )

    def _evictable(self, uuid: str, needing: Replica) -> Replica | None:
        idle = [
            r
            for r in self._replicas.values()
            if r is not needing
            and r.assignment.on_demand
            and r.engine is not None
            and r.active == 0
            and uuid in r.assignment.gpu_uuids
        ]
        return min(idle, key=lambda r: r.last_used, default=None)

    async def _to_standby(self, replica: Replica, reason: str) -> None:
        engine, replica.engine = replica.engine, None
        replica.state, replica.reason = "standby", reason
        if engine is not None:
            await engine.stop()
        self._report_memory()

    def _unload_soon(self, replica: Replica, reason: str) -> None:
        replica.state, replica.reason = "unloading", reason
        self._unloading.add(replica)
        task = asyncio.create_task(self._unload(replica), name=f"unload-{replica.assignment.name}")
        self._leaving.add(task)
        task.add_done_callback(self._leaving.discard)

    async def _unload(self, replica: Replica) -> None:
        if replica.task is not None and not replica.task.done():
            replica.task.cancel()
            await asyncio.gather(replica.task, return_exceptions=True)
        while replica.active > 0:  # running jobs finish first
            replica.idle.clear()
            await replica.idle.wait()
        if replica.engine is not None:
            engine, replica.engine = replica.engine, None
            await engine.stop()
        self._unloading.discard(replica)
        a = replica.assignment
        log.info("replica %s/%d unloaded (%s)", a.name, a.index, replica.reason)
        self._report_memory()

    def _report_memory(self) -> None:
        if self._on_memory is None:
            return
        used: dict[str, float] = {}
        for r in self._replicas.values():
            if r.engine is None:
                continue
            for uuid in r.assignment.gpu_uuids:
                used[uuid] = used.get(uuid, 0.0) + r.assignment.gpu_memory_gb
        self._on_memory(used)
