"""Autoscaling: a deployment's `replicas` follows the pressure on its queue.

A deployment with `autoscale: {min_replicas, max_replicas, target_queue_per_replica, target_wait_s,
scale_down_delay_s}` is sized each controller step (on the leader only) from two signals:

- the jobs waiting for its model (`JobQueue.depth`): `ceil(depth / target_queue_per_replica)`
  replicas would bring each replica's backlog down to the target;
- the queue wait of its recently started jobs (the jobs table, last `WAIT_WINDOW_S`): above
  `target_wait_s`, one replica more than now.

The result is kept within `[min_replicas, max_replicas]`. Hysteresis: a scale-up applies at once; a
scale-down only after the lower figure has held for `scale_down_delay_s` (the calm since then is
tracked in memory, so a new leader waits a full delay first). `min_replicas: 0` scales to zero
when idle; a job for a deployment at zero still queues (the catalog lists it as serving while
`max_replicas > 0`), which makes the depth positive and wakes one replica.

Each decision is stored with its reason (`autoscale.last_decision` in the deployment view) and
exported: `gpucloud_autoscale_desired_replicas`, `gpucloud_autoscale_queue_depth` and
`gpucloud_autoscale_decisions_total{action}`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy import select

from gpucloud.db import Database, Deployment
from gpucloud.db.models import Job, utcnow
from gpucloud.queue.protocol import JobQueue

WAIT_WINDOW_S = 30.0
_WAIT_SAMPLE = 200  # recent jobs read per deployment and step


@dataclass(frozen=True, slots=True)
class Policy:
    min_replicas: int
    max_replicas: int
    target_queue_per_replica: float = 4.0
    target_wait_s: float | None = None
    scale_down_delay_s: float = 60.0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Policy:
        return cls(
            int(data["min_replicas"]),
            int(data["max_replicas"]),
            float(data.get("target_queue_per_replica") or 4.0),
            float(data["target_wait_s"]) if data.get("target_wait_s") is not None else None,
            float(data["scale_down_delay_s"]) if data.get("scale_down_delay_s") is not None else 60.0,
        )


@dataclass(frozen=True, slots=True)
class Signals:
    replicas: int  # what the deployment asks for now
    depth: int  # jobs waiting for its model
    wait_s: float | None  # mean queue wait of recently started jobs (None: none started)


def desired(policy: Policy, signals: Signals) -> tuple[int, str]:
    """The replicas the signals call for, within the bounds, and why (pure)."""
    by_queue = math.ceil(signals.depth / policy.target_queue_per_replica)
    want, why = by_queue, f"{signals.depth} queued / {policy.target_queue_per_replica:g} per replica"
    slow = (
        policy.target_wait_s is not None
        and signals.wait_s is not None
        and signals.wait_s > policy.target_wait_s
    )
    if slow and signals.replicas + 1 > want:
        want = signals.replicas + 1
        why = f"queue wait {signals.wait_s:.1f} s over the {policy.target_wait_s:g} s target"
    bounded = min(max(want, policy.min_replicas), policy.max_replicas)
    if bounded != want:
        why += f" → {want}, bounded to [{policy.min_replicas}, {policy.max_replicas}]"
    return bounded, why


class Autoscaler:
    """Sizes the autoscaled deployments (see the module docstring); `clock` is monotonic seconds."""

    def __init__(
        self,
        queue: JobQueue,
        db: Database,
        registry: CollectorRegistry,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._queue = queue
        self._db = db
        self._clock = clock
        self._lower_since: dict[str, float] = {}
        self._desired = Gauge(
            "gpucloud_autoscale_desired_replicas", "Replicas the autoscaler asks for.", ["deployment"],
            registry=registry,
        )  # fmt: skip
        self._depth = Gauge(
            "gpucloud_autoscale_queue_depth", "Jobs waiting, as the autoscaler saw them.", ["deployment"],
            registry=registry,
        )  # fmt: skip
        self._decisions = Counter(
            "gpucloud_autoscale_decisions", "Autoscaling changes by action.", ["deployment", "action"],
            registry=registry,
        )  # fmt: skip

    async def step(self, deployments: Sequence[Deployment]) -> dict[str, tuple[int, dict[str, Any]]]:
        """New replica counts and decisions of the deployments whose decision changed."""
        out: dict[str, tuple[int, dict[str, Any]]] = {}
        for row in deployments:
            if not row.autoscale:
                self._lower_since.pop(row.id, None)
                continue
            signals = Signals(row.replicas, sum((await self._queue.depth(row.name)).values()), None)
            policy = Policy.from_dict(row.autoscale)
            if policy.target_wait_s is not None:
                signals = Signals(signals.replicas, signals.depth, await self._recent_wait(row.name))
            decision = self._decide(row, policy, signals)
            if _changed(row.autoscale_status, decision):
                out[row.id] = (decision["to_replicas"], decision)
        return out

    def _decide(self, row: Deployment, policy: Policy, signals: Signals) -> dict[str, Any]:
        want, why = desired(policy, signals)
        self._desired.labels(row.name).set(want)
        self._depth.labels(row.name).set(signals.depth)
        now = self._clock()
        action, to = "hold", row.replicas
        if want > row.replicas:
            action, to = "scale_up", want
            self._lower_since.pop(row.id, None)
        elif want < row.replicas:
            since = self._lower_since.setdefault(row.id, now)
            calm = now - since
            if calm >= policy.scale_down_delay_s:
                action, to = "scale_down", want
                self._lower_since.pop(row.id, None)
            else:
                delay = policy.scale_down_delay_s
                why += f"; scaling down to {want} after {delay:g} s calm ({calm:.0f} s so far)"
        else:
            self._lower_since.pop(row.id, None)
        if action != "hold":
            self._decisions.labels(row.name, action).inc()
        return {
            "at": utcnow().isoformat(),
            "action": action,
            "from_replicas": row.replicas,
            "to_replicas": to,
            "reason": why,
        }

    async def _recent_wait(self, model: str) -> float | None:
        since = utcnow() - timedelta(seconds=WAIT_WINDOW_S)
        query = (
            select(Job.created_at, Job.started_at)
            .where(Job.model == model, Job.started_at.is_not(None), Job.started_at >= since)
            .order_by(Job.started_at.desc())
            .limit(_WAIT_SAMPLE)
        )
        async with self._db.read() as connection:
            rows = (await connection.execute(query)).all()
        waits = [(started - created).total_seconds() for created, started in rows if started and created]
        return sum(waits) / len(waits) if waits else None


def _changed(stored: Mapping[str, Any] | None, decision: Mapping[str, Any]) -> bool:
    """Whether to store `decision`: a new action or size, or the same hold with another reason."""
    if stored is None:
        return True
    keys = ("action", "from_replicas", "to_replicas", "reason")
    return any(stored.get(k) != decision.get(k) for k in keys) and (
        decision["action"] != "hold" or stored.get("action") != "hold" or _settled_reason(stored, decision)
    )


def _settled_reason(stored: Mapping[str, Any], decision: Mapping[str, Any]) -> bool:
    # A hold whose reason only counts seconds of calm is not worth a write every step.
    return "calm (" not in str(decision["reason"]) or "calm (" not in str(stored.get("reason"))
