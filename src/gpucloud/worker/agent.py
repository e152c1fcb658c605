"""`WorkerAgent`: leases jobs for the models it hosts, runs them on engines, reports outcomes.

One agent per GPU machine (or inside `gpucloud serve` in embedded mode). It holds at most `slots`
jobs at once, renews their leases while they run, stops a job within moments of its cancellation,
and on `stop()` drains: it stops leasing, lets running jobs finish within a grace period and gives
the rest back to the queue. `drain()` stops leasing without stopping (an operator's drain, told
by the control plane): running jobs finish and the agent keeps renewing; `undrain()` resumes.
It never touches the database (docs/architecture.md §2): it speaks to the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence

from gpucloud import wire
from gpucloud.engines.protocol import Engine, EngineError
from gpucloud.observability.context import bind_request
from gpucloud.observability.tracing import Tracer
from gpucloud.queue.protocol import JobQueue, Lease, Outcome, OutcomeStatus, QueueError, WorkerInfo
from gpucloud.worker.assignment import Assignment
from gpucloud.worker.attempt import Attempts, Run
from gpucloud.worker.events import EventBatcher
from gpucloud.worker.replicas import ReplicaSet

log = logging.getLogger(__name__)

# How long a job without a deadline waits for an on-demand replica to load.
_LOAD_WAIT_S = 600.0


async def read_load(engine: Engine) -> dict[str, float] | None:
    """An engine's own load reading (`load_metrics`, e.g. an engine server's running and waiting
    requests), or None when it has none or the reading failed: a beat must go out regardless."""
    read = getattr(engine, "load_metrics", None)
    if read is None:
        return None
    try:
        load = await read()
    except Exception as exc:  # noqa: BLE001 - optional reading; the beat must go out
        log.debug("engine load reading failed: %s", exc)
        return None
    return {str(k): float(v) for k, v in dict(load).items()}


class WorkerAgent:
    def __init__(
        self,
        queue: JobQueue,
        engines: Mapping[str, Engine],
        *,
        worker_id: str,
        slots: int = 8,
        lease_timeout_s: float = 15.0,
        poll_s: float = 1.0,
        announce_every_s: float = 2.0,
        tracer: Tracer | None = None,
        replicas: ReplicaSet | None = None,
    ) -> None:
        self._tracer = tracer if tracer is not None else Tracer(None, "gpucloud-worker")
        self.worker_id = worker_id
        self._queue = queue
        self._engines = dict(engines)  # fixed at start (`--model`, the embedded local worker)
        self._replicas = replicas  # deployment replicas, as the control plane assigns them
        self._slots = slots
        self._renew_every = max(0.05, lease_timeout_s / 3)
        self._poll_s = poll_s
        self._announce_every_s = announce_every_s
        self._runs: dict[str, Run] = {}
        self._slot_freed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._leasing = asyncio.Event()  # cleared while drained
        self._leasing.set()
        self._tasks: list[asyncio.Task[None]] = []
        # One batcher per gateway channel, shared by the jobs streaming to it: while a publish is
        # in flight, the deltas of every such job gather into the next one (one write per step
        # of a batched engine instead of one per job).
        self._batchers: dict[str, EventBatcher] = {}
        self._attempts = Attempts(queue, worker_id, self._batcher)

    @property
    def tokens_total(self) -> int:
        """Tokens generated since start, for the heartbeat's tokens/s."""
        return self._attempts.tokens_total

    @property
    def models(self) -> list[str]:
        """The models whose jobs this agent leases now."""
        if self._replicas is None:
            return list(self._engines)
        return sorted(set(self._engines) | set(self._replicas.models()))

    def apply_assignments(self, assignments: Sequence[wire.Assignment]) -> None:
        """The replicas the control plane wants here (from a heartbeat's answer)."""
        if self._replicas is not None:
            self._replicas.apply([Assignment.from_wire(a) for a in assignments])

    async def replica_reports(self) -> list[wire.ReplicaIn]:
        """Each replica's state for the heartbeat, with its engine's load where it reports one."""
        if self._replicas is None:
            return []
        loads: dict[tuple[str, int], dict[str, float]] = {}
        for key, engine in self._replicas.engines():
            load = await read_load(engine)
            if load is not None:
                loads[key] = load
        return self._replicas.reports(loads)

    async def engine_loads(self) -> dict[str, dict[str, float]]:
        """The load each fixed (`--model`) engine reports, by model, for the heartbeat."""
        loads = {model: await read_load(engine) for model, engine in self._engines.items()}
        return {model: load for model, load in loads.items() if load is not None}

    @property
    def running(self) -> int:
        return len(self._runs)

    @property
    def slots(self) -> int:
        return self._slots

    @property
    def draining(self) -> bool:
        return not self._leasing.is_set()

    def drain(self) -> None:
        """Stop leasing new jobs; running ones finish. The agent keeps running (see `undrain`)."""
        if not self.draining:
            log.info("worker %s: draining: no new jobs", self.worker_id)
        self._leasing.clear()

    def undrain(self) -> None:
        if self.draining:
            log.info("worker %s: drain lifted: leasing again", self.worker_id)
        self._leasing.set()

    async def start(self) -> None:
        """Load the engines and start leasing in the background."""
        for engine in self._engines.values():
            await engine.start()
        await self.announce()
        self._tasks = [
            asyncio.create_task(self._announce_forever(), name="worker-announce"),
            asyncio.create_task(self.run(), name=f"worker-{self.worker_id}"),
            asyncio.create_task(self._renew_forever(), name="worker-renew"),
            asyncio.create_task(self._watch_cancellations(), name="worker-cancellations"),
        ]
        if self._replicas is not None:
            self._tasks.append(asyncio.create_task(self._tend_replicas(), name="worker-replicas"))

    async def _tend_replicas(self) -> None:
        assert self._replicas is not None
        while True:
            await asyncio.sleep(1.0)
            await self._replicas.tick()

    async def run(self, *, burst: bool = False) -> None:
        """Lease and run jobs until stopped; with `burst`, until the queue is empty, then return."""
        while not self._stopping.is_set():
            leases = await self._lease_free()
            if leases is None:
                if burst and not self._runs and not self.models:
                    return
                continue
            if self._stopping.is_set() or not self._leasing.is_set():
                for lease in leases:  # leased while a drain or stop began: back to the queue
                    await self._queue.release(lease)
                continue
            for lease in leases:
                self._launch(lease)
            if burst and not leases and not self._runs:
                return

    async def _lease_free(self) -> list[Lease] | None:
        """Jobs for the free slots; None after waiting for a reason to try again (drained, no free
        slot, nothing hosted yet, the queue unavailable)."""
        if not self._leasing.is_set():
            await self._leasing.wait()
            return None
        free = self._slots - len(self._runs)
        if free <= 0:
            self._slot_freed.clear()
            await self._slot_freed.wait()
            return None
        models = self.models
        if not models:  # nothing hosted yet (replicas still loading): nothing to lease
            await asyncio.sleep(self._poll_s)
            return None
        try:
            return await self._queue.lease(self.worker_id, models, free, self._poll_s)
        except QueueError as exc:
            log.warning("worker %s: queue unavailable: %s", self.worker_id, exc)
            await asyncio.sleep(1.0)
            return None

    async def run_burst(self) -> None:
        """Drain the queue with renewals and cancellations working, then return (tests, batch jobs)."""
        for engine in self._engines.values():
            await engine.start()
        await self.announce()
        helpers = [
            asyncio.create_task(self._renew_forever()),
            asyncio.create_task(self._watch_cancellations()),
            asyncio.create_task(self._announce_forever()),
        ]
        try:
            await self.run(burst=True)
            while self._runs:
                self._slot_freed.clear()
                await self._slot_freed.wait()
        finally:
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            with contextlib.suppress(QueueError):
                await self._queue.withdraw(self.worker_id)
            for engine in self._engines.values():
                await engine.stop()

    async def stop(self, grace_s: float = 10.0) -> None:
        """Drain: stop leasing, let running jobs finish for `grace_s`, give the rest back."""
        self._stopping.set()
        self._slot_freed.set()
        self._leasing.set()  # wakes a drained lease loop so that it sees the stop
        deadline = time.monotonic() + grace_s
        while self._runs and time.monotonic() < deadline:
            self._slot_freed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._slot_freed.wait(), deadline - time.monotonic())
        for run in list(self._runs.values()):
            run.lost = True  # not finished in time: hand it back instead of reporting
            if run.task is not None:
                run.task.cancel()
            with contextlib.suppress(QueueError):
                await self._queue.release(run.lease)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(
            *self._tasks, *(r.task for r in self._runs.values() if r.task), return_exceptions=True
        )
        self._tasks = []
        with contextlib.suppress(QueueError):
            await self._queue.withdraw(self.worker_id)
        for engine in self._engines.values():
            await engine.stop()
        if self._replicas is not None:
            await self._replicas.close()

    # one job -------------------------------------------------------------------------------

    def _launch(self, lease: Lease) -> None:
        run = Run(lease)
        self._runs[lease.job.job_id] = run
        run.task = asyncio.create_task(self._execute(run), name=f"job-{lease.job.job_id}")

    async def _execute(self, run: Run) -> None:
        job = run.lease.job
        bind_request(job.request_id, job.job_id)  # this task's log lines carry the client's request id
        try:
            with self._tracer.span(
                "job attempt",
                request_id=job.request_id,
                job_id=job.job_id,
                attempt=run.lease.attempt,
                model=job.model,
                worker_id=self.worker_id,
            ) as span:
                outcome = await self._attempt(run)
                if span is not None and outcome is not None:
                    span.set_attribute("gpucloud.status", outcome.status.value)
                    span.set_attribute("gpucloud.completion_tokens", outcome.completion_tokens)
            if outcome is not None and not run.lost:
                await self._queue.complete(run.lease, outcome)
        except QueueError as exc:
            # The outcome is lost with the queue; the lease expires and the job is reclaimed.
            log.warning("worker %s: could not report job %s: %s", self.worker_id, job.job_id, exc)
        finally:
            self._runs.pop(job.job_id, None)
            self._slot_freed.set()

    async def _attempt(self, run: Run) -> Outcome | None:
        job = run.lease.job
        if job.deadline and time.time() > job.deadline:
            return self._attempts.outcome(
                run, OutcomeStatus.EXPIRED, 0, error="waited in the queue too long", code="queue_timeout"
            )
        engine = self._engines.get(job.model)
        if engine is not None:
            return await self._attempts.run(run, engine)
        if self._replicas is None:
            return self._attempts.outcome(
                run, OutcomeStatus.FAILED, 0, error="model not hosted", code="model_not_loaded"
            )
        if not self._replicas.hosts(job.model):
            # Its replica went away between the lease and now (scaled down, moved): back to the
            # queue, undone and without counting an attempt, for a worker that hosts the model.
            run.lost = True
            await self._queue.release(run.lease)
            return None
        return await self._attempt_on_replica(run)

    async def _attempt_on_replica(self, run: Run) -> Outcome | None:
        """Run the job on one of the model's replicas, loading an on-demand one first if need be."""
        assert self._replicas is not None
        job = run.lease.job
        wait_s = job.deadline - time.time() if job.deadline else _LOAD_WAIT_S
        try:
            replica = await self._replicas.acquire(job.model, max(0.1, wait_s))
        except EngineError as exc:
            if not exc.retryable:
                return self._attempts.outcome(
                    run, OutcomeStatus.FAILED, 0, error=str(exc), code="model_load_failed"
                )
            if job.deadline and time.time() > job.deadline:
                return self._attempts.outcome(
                    run, OutcomeStatus.EXPIRED, 0, error=str(exc), code="queue_timeout"
                )
            # Not here any more (moved or unassigned meanwhile): another worker will take it.
            run.lost = True
            await self._queue.release(run.lease)
            return None
        assert replica.engine is not None
        try:
            return await self._attempts.run(run, replica.engine)
        finally:
            self._replicas.release(replica, run.engine_error)

    def _batcher(self, reply_to: str) -> EventBatcher:
        batcher = self._batchers.get(reply_to)
        if batcher is None:
            batcher = self._batchers[reply_to] = EventBatcher(self._queue, reply_to)
        return batcher

    # background ----------------------------------------------------------------------------

    async def announce(self) -> None:
        by_model = {model: 0 for model in self.models}
        for run in self._runs.values():
            by_model[run.lease.job.model] = by_model.get(run.lease.job.model, 0) + 1
        info = WorkerInfo(self.worker_id, self.models, self._slots, len(self._runs), time.time(), by_model)
        info.capabilities = {m: e.capabilities.to_dict() for m, e in self._engines.items()}
        # An announcement outlives a few missed beats, so one slow beat does not hide the worker.
        await self._queue.announce(info, ttl_s=self._announce_every_s * 4)

    async def _announce_forever(self) -> None:
        while True:
            await asyncio.sleep(self._announce_every_s)
            try:
                await self.announce()
            except QueueError as exc:
                log.warning("worker %s: announcement failed: %s", self.worker_id, exc)

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self._renew_every)
            leases = [run.lease for run in self._runs.values()]
            if not leases:
                continue
            try:
                lost = await self._queue.renew(leases)
            except QueueError as exc:
                log.warning("worker %s: lease renewal failed: %s", self.worker_id, exc)
                continue
            for lease in lost:
                self._abandon(lease.job.job_id)

    def _abandon(self, job_id: str) -> None:
        run = self._runs.get(job_id)
        if run is not None and run.task is not None:
            log.warning("worker %s: lost the lease of job %s; stopping it", self.worker_id, job_id)
            run.lost = True
            run.task.cancel()

    async def _watch_cancellations(self) -> None:
        while True:
            try:
                async for job_id in self._queue.watch_cancellations():
                    run = self._runs.get(job_id)
                    if run is not None and run.task is not None and not run.cancelled:
                        run.cancelled = True
                        run.task.cancel()
            except QueueError as exc:
                log.warning("worker %s: cancellation feed unavailable: %s", self.worker_id, exc)
                await asyncio.sleep(1.0)
