"""`Runtime`: the parts of a running control plane, built from `Settings` and started together.

It picks the queue (in-process without Redis, Redis Streams with it), opens the database and
applies migrations, starts the reply router and the finalizer, and in embedded mode the local
worker with the simulated engine. The gateway's lifespan owns one; the CLI builds one for `serve`.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from gpucloud.admission import Admission, Pricing
from gpucloud.background import close_within
from gpucloud.cluster import HealthPolicy, WorkerDirectory, WorkerMonitor, WorkerTokenService
from gpucloud.db import Database
from gpucloud.db.migrate import upgrade_async
from gpucloud.deployments import DeploymentController, DeploymentStore
from gpucloud.deployments.autoscale import Autoscaler
from gpucloud.deployments.views import catalog
from gpucloud.engines.protocol import Engine
from gpucloud.jobs import Finalizer, JobStore, KeptResults
from gpucloud.keycache import KeyCache, KeyChanges, key_changes
from gpucloud.keys import KeyService
from gpucloud.limits import (
    BudgetStore,
    LimitStore,
    MemoryBudgetStore,
    MemoryLimitStore,
    RedisBudgetStore,
    RedisLimitStore,
)
from gpucloud.observability.cluster import ClusterGauges
from gpucloud.observability.metrics import Metrics
from gpucloud.observability.stats import LiveStats
from gpucloud.observability.tracing import Tracer
from gpucloud.queue.factory import build_queue
from gpucloud.queue.protocol import JobQueue
from gpucloud.queue.router import ReplyRouter
from gpucloud.reconciler import Reconciler
from gpucloud.registry import ModelRegistry
from gpucloud.settings import Settings
from gpucloud.storage import ObjectStore, build_store
from gpucloud.usage import UsageService
from gpucloud.worker.agent import WorkerAgent
from gpucloud.worker.consent import local_policy
from gpucloud.worker.inventory import GpuProbe
from gpucloud.worker.local import LocalControl
from gpucloud.worker.main import build_replicas
from gpucloud.worker.nvml import NvmlProbe
from gpucloud.worker.simulated_gpus import SimulatedProbe

log = logging.getLogger(__name__)
# A shutdown step that takes longer is abandoned (logged with where it hangs), so that SIGTERM
# ends the process within bounded time; the local worker has its grace for in-flight jobs first.
_STEP_TIMEOUT_S = 5.0
_WORKER_GRACE_S = 5.0


def build_admission(settings: Settings, usage: UsageService) -> Admission:
    url = settings.redis_dsn()
    limits: LimitStore
    budgets: BudgetStore
    # Concurrency slots of a gateway that died are freed after the longest a request may take.
    slot_ttl = settings.queue.request_timeout_s + settings.queue.max_wait_s + 60
    if url is None:
        limits, budgets = MemoryLimitStore(slot_ttl_s=slot_ttl), MemoryBudgetStore(hold_ttl_s=slot_ttl)
    else:
        limits = RedisLimitStore(url, prefix=settings.redis_prefix, slot_ttl_s=slot_ttl)
        budgets = RedisBudgetStore(url, prefix=settings.redis_prefix, hold_ttl_s=slot_ttl)
    pricing = Pricing(settings.prices, settings.default_price)
    return Admission(limits, budgets, usage, pricing, default_reserve_tokens=settings.default_reserve_tokens)


def local_engines(settings: Settings) -> dict[str, Engine]:
    from gpucloud.engines.simulated import SimulatedEngine

    lw = settings.local_worker
    return {
        name: SimulatedEngine(
            name, ttft_ms=lw.ttft_ms, tokens_per_s=lw.tokens_per_s, natural_end=lw.natural_end
        )
        for name in lw.models
    }


def local_probe(settings: Settings, seed: str) -> GpuProbe | None:
    """The embedded worker's GPUs: simulated when asked for, else NVML where it is installed."""
    if settings.local_worker.simulate_gpus:
        return SimulatedProbe.parse(settings.local_worker.simulate_gpus, seed=seed)
    return NvmlProbe.create()


def health_policy(settings: Settings) -> HealthPolicy:
    c = settings.cluster
    return HealthPolicy(
        unhealthy_after_s=c.unhealthy_after(),
        offline_after_s=c.offline_after_s,
        recover_beats=c.recover_beats,
    )


def instance_name(settings: Settings) -> str:
    if settings.instance_id:
        return settings.instance_id
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def build_reconciler(
    settings: Settings, db: Database, queue: JobQueue, router: ReplyRouter, kept: KeptResults | None = None
) -> Reconciler:
    q = settings.queue
    return Reconciler(
        db,
        queue,
        result_ttl_s=q.result_ttl_s,
        kept=kept,
        reply_to=router.reply_to,
        lone_gateway=settings.redis_url is None,
        orphan_after_s=q.max_wait_s + q.request_timeout_s + 60,
        stranded_after_s=q.stranded_after_s,
        every_s=q.reconcile_every_s,
        longest_wait_s=max(q.max_wait_s, q.async_max_wait_s),
    )


def local_worker(
    settings: Settings,
    queue: JobQueue,
    instance_id: str,
    tracer: Tracer | None,
    directory: WorkerDirectory,
    deployments: DeploymentStore,
) -> tuple[WorkerAgent | None, LocalControl | None]:
    """The worker inside the gateway process (embedded mode, or when asked for), and its link to
    the control plane's tables; (None, None) when there is none."""
    if not settings.local_worker_enabled():
        return None, None
    # Embedded mode has one process per database: a stable id keeps one row across restarts.
    worker_id = f"local-{socket.gethostname()}" if settings.redis_url is None else f"local-{instance_id}"
    probe = local_probe(settings, worker_id)
    worker = WorkerAgent(
        queue,
        local_engines(settings),
        worker_id=worker_id,
        slots=settings.local_worker.slots,
        lease_timeout_s=settings.queue.lease_timeout_s,
        tracer=tracer,
        replicas=build_replicas(settings.resolved_models_dir(), probe, local_policy(settings)),
    )
    return worker, LocalControl(worker, directory, deployments, probe=probe)


@dataclass
class Runtime:
    """`build` picks the implementations (database, queue, stores); the services that only wire
    those together are derived from them in `__post_init__`."""

    settings: Settings
    db: Database
    queue: JobQueue
    usage: UsageService
    admission: Admission
    registry: ModelRegistry
    router: ReplyRouter
    metrics: Metrics
    instance_id: str
    workers: WorkerDirectory
    deployments: DeploymentStore
    controller: DeploymentController
    worker: WorkerAgent | None = None
    local_control: LocalControl | None = None
    generated_admin_key: str | None = field(default=None, repr=False)
    keys: KeyService = field(init=False)
    key_changes: KeyChanges = field(init=False)
    jobs: JobStore = field(init=False)
    objects: ObjectStore = field(init=False)  # files, batch outputs, results too large for a row
    kept: KeptResults = field(init=False)
    finalizer: Finalizer = field(init=False)
    reconciler: Reconciler = field(init=False)
    cluster_gauges: ClusterGauges = field(init=False)
    stats: LiveStats = field(init=False)
    worker_tokens: WorkerTokenService = field(init=False)
    monitor: WorkerMonitor = field(init=False)

    def __post_init__(self) -> None:
        settings, db, queue, instance_id = self.settings, self.db, self.queue, self.instance_id
        # One announcer per process: the key cache and the accounts' user cache both follow it, so
        # a change one of them announces (an organisation's allowed models) reaches the other.
        self.key_changes = key_changes(settings)
        self.keys = KeyService(db, KeyCache(settings.key_cache_ttl_s), self.key_changes)
        self.jobs = JobStore(db)
        self.objects = build_store(settings)  # opens nothing until used
        self.kept = KeptResults(self.objects)
        self.finalizer = Finalizer(
            db,
            queue,
            consumer=f"finalizer-{instance_id}",
            metrics=self.metrics,
            admission=self.admission,
            kept=self.kept,
        )
        self.reconciler = build_reconciler(settings, db, queue, self.router, self.kept)
        self.cluster_gauges = ClusterGauges(
            self.metrics,
            queue,
            instance_id,
            fleet=self.workers.list_workers,
            replicas=self.deployments.replica_counts,
        )
        self.stats = LiveStats(db, queue, self.registry)
        self.worker_tokens = WorkerTokenService(db)
        self.monitor = WorkerMonitor(
            self.workers,
            queue,
            instance_id,
            every_s=settings.cluster.monitor_every_s,
            then=self.controller.step,
        )

    @classmethod
    def build(
        cls, settings: Settings, metrics: Metrics | None = None, tracer: Tracer | None = None
    ) -> Runtime:
        """Assemble the parts; no I/O happens until `start`."""
        instance_id = instance_name(settings)
        metrics = metrics if metrics is not None else Metrics()
        db = Database(settings.resolved_database_url(), busy_timeout_ms=settings.sqlite_busy_timeout_ms)
        db.writer.observe = metrics.write_batch.observe
        queue = build_queue(settings)
        deployments = DeploymentStore(db)
        registry = ModelRegistry(queue, catalog=functools.partial(catalog, deployments))
        usage = UsageService(db)
        directory = WorkerDirectory(db, health_policy(settings))
        autoscaler = Autoscaler(queue, db, metrics.registry)  # sizes autoscaled deployments
        worker, local_control = local_worker(settings, queue, instance_id, tracer, directory, deployments)
        return cls(
            settings=settings,
            db=db,
            queue=queue,
            usage=usage,
            admission=build_admission(settings, usage),
            registry=registry,
            router=ReplyRouter(queue, f"gw-{instance_id}"),
            metrics=metrics,
            instance_id=instance_id,
            workers=directory,
            deployments=deployments,
            controller=DeploymentController(deployments, directory, autoscaler),
            worker=worker,
            local_control=local_control,
        )

    async def start(self) -> None:
        if self.db.is_sqlite:
            self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        await upgrade_async(self.db.url)
        admin = self.settings.admin_key.get_secret_value() if self.settings.admin_key else None
        self.generated_admin_key = await self.keys.bootstrap_admin(admin)
        await self.keys.start()
        await self.queue.start()
        await self.router.start()
        await self.finalizer.start()
        if self.worker is not None:
            await self.worker.start()
        if self.local_control is not None:
            await self.local_control.start()
        await self.registry.start()
        await self.reconciler.start()
        await self.cluster_gauges.start()
        await self.monitor.start()

    async def kick_controller(self) -> None:
        """Place a changed deployment now when this replica leads (else the leader's next round),
        and refresh this replica's model list (the others refresh within `refresh_s`)."""
        if self.monitor.leading:
            await self.controller.step()
        await self.registry.refresh()

    async def close(self) -> None:
        """Close every part, in order, each within bounded time (`close_within`)."""
        step = _STEP_TIMEOUT_S
        steps: list[tuple[str, Callable[[], Awaitable[None]], float]] = [
            ("the worker monitor", self.monitor.close, step),
            ("the cluster gauges", self.cluster_gauges.close, step),
            ("the reconciler", self.reconciler.close, step),
            ("the model registry", self.registry.close, step),
        ]
        if self.local_control is not None:
            steps.append(("the local worker's control", self.local_control.close, step))
        worker = self.worker
        if worker is not None:
            drain = _WORKER_GRACE_S
            steps.append(("the local worker", lambda: worker.stop(grace_s=drain), drain + step))
        steps += [
            ("the finalizer", self.finalizer.close, step),
            ("the reply router", self.router.close, step),
            ("the queue", self.queue.close, step),
            ("admission", self.admission.close, step),
            ("the key service", self.keys.close, step),
            ("the object store", self.objects.close, step),
            ("the database", self.db.close, step),
        ]
        for name, close, timeout_s in steps:
            await close_within(name, close, timeout_s)
