"""A deployment's state derived from its replicas, and the catalogue entry it makes (what the API
shows of it is built in `gateway.views.deployments`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from gpucloud.db import Deployment, DeploymentReplica
from gpucloud.deployments.states import (
    SERVING,
    DeploymentState,
    Derived,
    ReplicaState,
    ReplicaStatus,
    derive,
)
from gpucloud.deployments.store import DeploymentStore
from gpucloud.engines.capabilities import Capabilities, capabilities_of_kind
from gpucloud.registry import CatalogEntry


def by_deployment(replicas: Iterable[DeploymentReplica]) -> dict[str, list[DeploymentReplica]]:
    """Replica rows grouped by deployment id (rows come sorted by deployment, index)."""
    grouped: dict[str, list[DeploymentReplica]] = {}
    for replica in replicas:
        grouped.setdefault(replica.deployment_id, []).append(replica)
    return grouped


def derived(row: Deployment, replicas: Sequence[DeploymentReplica]) -> Derived:
    return derive(
        [ReplicaStatus(r.index, ReplicaState(r.state), r.reason) for r in replicas],
        wanted=row.replicas,
        scheduled_once=row.state != DeploymentState.PENDING.value,
        unschedulable=row.reason,
    )


async def catalog(store: DeploymentStore) -> dict[str, CatalogEntry]:
    """Every deployment as the model registry lists it (`/v1/models`, request admission)."""
    replicas = by_deployment(await store.replicas())
    out: dict[str, CatalogEntry] = {}
    for row in await store.all():
        mine = replicas.get(row.id, [])
        # An autoscaled deployment at zero still takes requests: a queued job wakes a replica.
        waking = bool(row.autoscale) and int((row.autoscale or {}).get("max_replicas", 0)) > 0
        serving = waking or any(ReplicaState(r.state) in SERVING for r in mine)
        state = derived(row, mine)
        out[row.name] = CatalogEntry(
            int(row.created_at.timestamp()),
            serving,
            state.reason or state.state.value,
            _capabilities(row.engine, row.engine_options),
        )
    return out


def _capabilities(engine: str, options: dict[str, str]) -> Capabilities:
    """The deployment's engine's capabilities; none for options its engine will refuse anyway."""
    try:
        return capabilities_of_kind(engine, options)
    except ValueError:
        return Capabilities()
