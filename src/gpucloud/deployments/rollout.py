"""Rolling updates: how a change to what a deployment runs reaches its replicas without a gap.

What runs (`engine`, `source`, `engine_options`, `gpu_memory_gb`) is versioned: a change makes a new
`spec_version` (or returns to an earlier one with the same spec, as a rollback does), and each
replica row carries the version it runs. `spec_history` keeps the spec of every version a replica
or a rollback may still need, so a replica of the previous version keeps being told what it runs.

Each controller step, `decide` looks at one deployment's replicas and says how many of each version
to hold and which replicas to remove, as Kubernetes' rolling update does:

- at most `replicas + max_surge` replicas at once, and at least `replicas - max_unavailable` ready;
- new replicas are added first (surge); an old one is removed only when enough are ready without
  it, so a new replica is ready before an old one drains (the worker lets its running jobs finish);
- when GPU memory leaves no room for a surge replica, one old replica at a time is replaced, and
  the rollout's reason says so;
- a replica counts as available when `ready`, or `standby` for an on-demand deployment;
- a new replica that fails stops the roll: it is removed, the old replicas keep serving, and the
  rollout is `failed` with the replica's reason until the next change or a rollback.

The deployment view shows `rollout: {state, reason, updated_replicas, from_version, to_version}`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gpucloud.db import Deployment, DeploymentReplica
from gpucloud.deployments.states import ReplicaState

RUNS = ("engine", "source", "engine_options", "gpu_memory_gb")  # a change to these rolls


def current_spec(row: Deployment) -> dict[str, Any]:
    return {
        "engine": row.engine,
        "source": row.source,
        "engine_options": dict(row.engine_options),
        "gpu_memory_gb": row.gpu_memory_gb,
    }


def spec_of(row: Deployment, version: int) -> dict[str, Any]:
    """What replicas of `version` run (rows from before versioning run the current spec)."""
    if version == row.spec_version:
        return current_spec(row)
    found = (row.spec_history or {}).get(str(version))
    return dict(found) if found else current_spec(row)


def new_version(
    row: Deployment, spec: Mapping[str, Any], referenced: Sequence[int]
) -> tuple[int, dict[str, Any]]:
    """The version `spec` runs as, and the history to store: an equal spec already in the history
    keeps its number (a rollback returns to it); otherwise the next number. The history keeps the
    versions replicas still run, the new one and the one before it (the rollback target)."""
    history = {str(row.spec_version): current_spec(row), **(row.spec_history or {})}
    version = next((int(v) for v, s in history.items() if dict(s) == dict(spec)), None)
    if version is None:
        version = max([int(v) for v in history] + [row.spec_version]) + 1
    keep = {str(v) for v in referenced} | {str(version), str(row.spec_version)}
    history[str(version)] = dict(spec)
    return version, {v: s for v, s in history.items() if v in keep}


def started(row: Deployment, version: int) -> dict[str, Any]:
    return {
        "state": "progressing",
        "reason": None,
        "updated_replicas": 0,
        "from_version": row.spec_version,
        "to_version": version,
    }


@dataclass(frozen=True, slots=True)
class Decision:
    """One deployment's step: replicas wanted per version, rows to remove, the rollout to store
    (None: unchanged)."""

    targets: dict[int, int]
    remove: list[int]
    rollout: dict[str, Any] | None


def decide(row: Deployment, rows: Sequence[DeploymentReplica], *, surge_blocked: bool = False) -> Decision:
    version = row.spec_version
    new = [r for r in rows if r.spec_version == version]
    old = [r for r in rows if r.spec_version != version]
    status = dict(row.rollout or {})
    if not old:
        return _settled(row, new, status)
    holding = Counter(r.spec_version for r in old)
    if status.get("state") == "failed":  # stopped: hold what runs until a change or a rollback
        return Decision({version: len(new), **holding}, [], None)
    failed = [r for r in new if r.state == ReplicaState.FAILED.value]
    if failed:
        return _failed(row, new, failed, holding, status)
    return _rolling(row, new, old, status, surge_blocked)


def _settled(row: Deployment, new: Sequence[DeploymentReplica], status: dict[str, Any]) -> Decision:
    if status.get("state") != "progressing":
        return Decision({row.spec_version: row.replicas}, [], None)
    done = {**status, "state": "complete", "reason": None, "updated_replicas": _ready(new)}
    return Decision({row.spec_version: row.replicas}, [], done)


def _failed(
    row: Deployment,
    new: Sequence[DeploymentReplica],
    failed: Sequence[DeploymentReplica],
    holding: Mapping[int, int],
    status: dict[str, Any],
) -> Decision:
    first = min(failed, key=lambda r: r.index)
    reason = (
        f"new replica {first.index} failed: {first.reason or 'no reason given'}; the roll stopped and "
        f"{sum(holding.values())} replicas of the previous spec keep serving"
    )
    stopped = {**status, "state": "failed", "reason": reason, "updated_replicas": _ready(new)}
    targets = {row.spec_version: len(new) - len(failed), **holding}
    return Decision(targets, [r.index for r in failed], stopped)


def _rolling(
    row: Deployment,
    new: Sequence[DeploymentReplica],
    old: Sequence[DeploymentReplica],
    status: dict[str, Any],
    surge_blocked: bool,
) -> Decision:
    wanted, surge = row.replicas, row.max_surge
    available = _ready(new) + _ready(old)
    spare = available - max(wanted - row.max_unavailable, 0)
    remove: list[int] = []
    # Old replicas that do not serve go first (they cost nothing); then ready ones, newest index first.
    for replica in sorted(old, key=lambda r: (r.state in _AVAILABLE, -r.index)):
        if replica.state not in _AVAILABLE:
            remove.append(replica.index)
        elif spare > 0:
            remove.append(replica.index)
            spare -= 1
    reason = None
    pending = [r for r in new if r.state not in _AVAILABLE]
    if surge_blocked and not pending and len(remove) == sum(r.state not in _AVAILABLE for r in old):
        ready_old = [r for r in old if r.state in _AVAILABLE and r.index not in remove]
        if ready_old:  # no memory for a surge replica: make room by replacing one at a time
            remove.append(max(ready_old, key=lambda r: r.index).index)
            reason = "no GPU memory for a surge replica: replacing one replica at a time"
    left = Counter(r.spec_version for r in old if r.index not in remove)
    target = max(len(new), min(wanted, wanted + surge - sum(left.values())))
    if surge_blocked and reason is None:
        reason = "waiting for GPU memory for the next new replica"
    rolling = {**status, "state": "progressing", "reason": reason, "updated_replicas": _ready(new)}
    return Decision({row.spec_version: target, **left}, remove, rolling if rolling != status else None)


# A replica in `standby` (on demand) serves too: its first request loads it.
_AVAILABLE = frozenset({ReplicaState.READY.value, ReplicaState.STANDBY.value})


def _ready(rows: Sequence[DeploymentReplica]) -> int:
    return sum(1 for r in rows if r.state in _AVAILABLE)
