"""Which models can be asked for, and by whom.

The catalogue is what workers announce through the queue (`JobQueue.announce`): a model with a
live worker is served; a model a worker announced before (within `known_for_s`) but none serves
now is *known* — requests get 503 with Retry-After, not 404 — and anything else is unknown (404).
The registry keeps a copy refreshed every `refresh_s`, so a request costs no queue round trip.

Deployments (`catalog`) are models too, listed whatever their state: one whose replicas are placed
(scheduled, loading, ready, or on-demand standby) takes requests, which wait in the queue while
it loads; one that is unschedulable or failed answers 503 with the reason.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from gpucloud.background import Background
from gpucloud.engines.capabilities import Capabilities
from gpucloud.errors import ModelNotFound, PermissionDenied, Unavailable
from gpucloud.keys import Principal
from gpucloud.queue.protocol import Presence, QueueError

log = logging.getLogger(__name__)

_RETIRED_FOR_S = 60.0


@dataclass(frozen=True, slots=True)
class ModelCard:
    id: str
    created: int
    live: bool
    owned_by: str = "gpucloud"
    reason: str | None = None  # why a deployment takes no requests now
    # What its engine honours (announced by its workers, or derived from a deployment's engine
    # kind); None when nobody said, and then no optional parameter is accepted.
    capabilities: Capabilities | None = None

    def to_openai(self) -> dict[str, object]:
        return {"id": self.id, "object": "model", "created": self.created, "owned_by": self.owned_by}


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """A deployment as the registry needs it."""

    created: int
    serving: bool  # replicas are placed: requests may queue
    reason: str | None = None
    capabilities: Capabilities | None = None  # of the deployment's engine kind


Catalog = Callable[[], Awaitable[Mapping[str, CatalogEntry]]]


class ModelRegistry:
    def __init__(
        self,
        queue: Presence,
        *,
        refresh_s: float = 1.0,
        known_for_s: float = 7 * 86400,
        catalog: Catalog | None = None,
    ) -> None:
        self._queue = queue
        self._catalog = catalog
        # Deployments that left the catalogue, and until when their workers' announcements (which
        # lag by a heartbeat or two) are ignored: a deleted model is 404 at once, not a queued wait.
        self._retired: dict[str, float] = {}
        self._deployed: set[str] = set()
        self._refresh_s = refresh_s
        self._known_for_s = known_for_s
        self._cards: dict[str, ModelCard] = {}
        self._slots: dict[str, int] = {}
        self._loop = Background("model-registry", self._refresh_forever)

    async def start(self) -> None:
        await self.refresh()
        self._loop.start()

    async def close(self) -> None:
        await self._loop.close()

    async def refresh(self) -> None:
        workers = await self._queue.workers()
        seen = await self._queue.known_models()
        live: dict[str, int] = {}
        announced: dict[str, Capabilities] = {}
        for worker in workers:
            for model in worker.models:
                live[model] = live.get(model, 0) + worker.slots
            for model, flags in worker.capabilities.items():
                announced[model] = Capabilities.from_dict(flags)
        deployed = await self._catalog() if self._catalog is not None else {}
        now = time.time()
        for name in self._deployed - set(deployed):
            self._retired[name] = now + _RETIRED_FOR_S
        self._deployed = set(deployed)
        for name, until in list(self._retired.items()):
            if name in deployed:  # created again under the same name
                del self._retired[name]
            elif until <= now:  # its workers stopped announcing it long ago: forget it for good
                await self._queue.forget_model(name)
                del self._retired[name]
        for name in self._retired:
            live.pop(name, None)
        cutoff = now - self._known_for_s
        names = set(live) | {m for m, at in seen.items() if at >= cutoff and m not in self._retired}
        cards = {
            m: ModelCard(m, int(seen.get(m, now)), m in live, capabilities=announced.get(m))
            for m in sorted(names)
        }
        for name, entry in deployed.items():
            serving = entry.serving or name in live
            reason = None if serving else entry.reason
            caps = announced.get(name, entry.capabilities)
            cards[name] = ModelCard(name, entry.created, serving, reason=reason, capabilities=caps)
        self._cards = dict(sorted(cards.items()))
        self._slots = live

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_s)
            try:
                await self.refresh()
            except QueueError as exc:  # keep serving from the last good copy
                log.warning("model registry: queue unavailable: %s", exc)
            except SQLAlchemyError as exc:
                log.warning("model registry: database unavailable: %s", type(exc).__name__)

    def slots(self, model: str) -> int:
        """Job slots of the live workers serving `model` (0 when none)."""
        return self._slots.get(model, 0)

    def serves(self, model: str) -> bool:
        """Whether `model` is in the catalogue (served, deployed or recently announced): a cheap
        lookup, for bounding metric labels."""
        return model in self._cards

    def capabilities(self, model: str) -> Capabilities:
        """What the engine serving `model` honours, from the last refresh (no I/O). An unknown
        model gets everything: `resolve` answers it with its 404 instead of a parameter's 400."""
        card = self._cards.get(model)
        if card is None:
            return Capabilities.everything()
        return card.capabilities or Capabilities()

    def all(self) -> list[ModelCard]:
        return list(self._cards.values())

    def visible_to(self, principal: Principal) -> list[ModelCard]:
        return [card for card in self._cards.values() if principal.may_use(card.id)]

    def resolve(self, principal: Principal, model: str) -> ModelCard:
        """The model's card; 404 unknown (or hidden), 403 not allowed, 503 known but not served now."""
        card = self._cards.get(model)
        if card is None:
            raise ModelNotFound(
                f"The model '{model}' does not exist or you do not have access to it.", param="model"
            )
        if not principal.may_use(model):
            whose = "This API key" if not principal.key_may_use(model) else "This API key's organisation"
            raise PermissionDenied(
                f"{whose} is not allowed to use the model '{model}'.",
                param="model",
                code="model_not_allowed",
            )
        if not card.live:
            why = f" ({card.reason})" if card.reason else ""
            raise Unavailable(
                f"No worker is serving the model '{model}' right now{why}; retry later.",
                retry_after_s=10,
                code="model_not_loaded",
            )
        return card
