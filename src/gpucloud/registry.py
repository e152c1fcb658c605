"""Which models can be asked for, and by whom.

In this version the catalogue is the set of models the configured workers host (the local
worker's models in embedded mode, `--model` of cluster workers listed in settings); deployments
placed on GPUs extend it in the cluster issue.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from gpucloud.errors import ModelNotFound, PermissionDenied
from gpucloud.keys import Principal


@dataclass(frozen=True, slots=True)
class ModelCard:
    id: str
    created: int
    owned_by: str = "gpucloud"

    def to_openai(self) -> dict[str, object]:
        return {"id": self.id, "object": "model", "created": self.created, "owned_by": self.owned_by}


class ModelRegistry:
    def __init__(self, models: Iterable[str]) -> None:
        created = int(time.time())
        self._cards = {name: ModelCard(name, created) for name in models}

    def visible_to(self, principal: Principal) -> list[ModelCard]:
        return [card for card in self._cards.values() if principal.may_use(card.id)]

    def resolve(self, principal: Principal, model: str) -> ModelCard:
        """The model's card; 404 when unknown (or hidden from this key), 403 when not allowed."""
        card = self._cards.get(model)
        if card is None:
            raise ModelNotFound(
                f"The model '{model}' does not exist or you do not have access to it.", param="model"
            )
        if not principal.may_use(model):
            raise PermissionDenied(
                f"This API key is not allowed to use the model '{model}'.",
                param="model",
                code="model_not_allowed",
            )
        return card
