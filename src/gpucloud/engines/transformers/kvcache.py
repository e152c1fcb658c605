"""`PaddedCache`: the key/value cache of a batch whose sequences join and leave at any step.

Every sequence's cache entries are right-aligned in a common length T (left padding), with a
[B, T] attention mask that zeroes the padding, so one forward pass decodes all sequences at once
and each sequence's next position is just its own length (rotary and learned position embeddings
both take explicit `position_ids`). Membership changes are where the work is:

- `merge` appends freshly prefilled sequences: the shorter of the two caches is padded on the left
  to the other's length, then both are concatenated along the batch dimension;
- `keep` drops finished sequences by selecting rows, then trims leading columns that have become
  padding in every remaining row, so the cache does not stay as long as its longest past member.

Only `DynamicLayer` caches (full attention, the default of `DynamicCache()` without a config) are
handled; that covers Llama-, Mistral-, Qwen- and GPT-2-style models.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from gpucloud.engines.protocol import EngineError


class PaddedCache:
    def __init__(self, device: torch.device) -> None:
        self._device = device
        self.cache: DynamicCache | None = None
        self.mask = torch.zeros((0, 0), dtype=torch.long, device=device)
        self.lengths: list[int] = []  # real (unpadded) tokens per row

    @property
    def rows(self) -> int:
        return len(self.lengths)

    @property
    def width(self) -> int:
        return int(self.mask.shape[1])

    def merge(self, cache: DynamicCache, mask: torch.Tensor, lengths: list[int]) -> None:
        """Append the rows of another left-padded cache (a prefill's)."""
        if self.cache is None or not self.lengths:
            self.cache, self.mask, self.lengths = cache, mask, list(lengths)
            return
        width = max(self.width, int(mask.shape[1]))
        for mine, theirs in zip(_layers(self.cache), _layers(cache), strict=True):
            mine.keys = _stack(_keys(mine), _keys(theirs), width)
            mine.values = _stack(_values(mine), _values(theirs), width)
        self.mask = torch.cat([_left_pad_mask(self.mask, width), _left_pad_mask(mask, width)], dim=0)
        self.lengths += lengths

    def keep(self, rows: list[int]) -> None:
        """Keep only `rows` (in this order) and trim the padding no remaining row needs."""
        if len(rows) == self.rows:
            return
        if not rows or self.cache is None:
            self.cache, self.lengths = None, []
            self.mask = torch.zeros((0, 0), dtype=torch.long, device=self._device)
            return
        self.lengths = [self.lengths[row] for row in rows]
        start = self.width - max(self.lengths)
        index = torch.tensor(rows, device=self._device)
        for layer in _layers(self.cache):
            layer.keys = _keys(layer).index_select(0, index)[:, :, start:, :]
            layer.values = _values(layer).index_select(0, index)[:, :, start:, :]
        self.mask = self.mask.index_select(0, index)[:, start:]

    def decode_inputs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The attention mask and position ids of the next one-token step; grows the mask by one."""
        ones = torch.ones((self.rows, 1), dtype=self.mask.dtype, device=self._device)
        self.mask = torch.cat([self.mask, ones], dim=1)
        positions = torch.tensor(self.lengths, device=self._device).unsqueeze(1)
        self.lengths = [length + 1 for length in self.lengths]
        return self.mask, positions


def left_padded(prompts: list[list[int]], pad_id: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """Input ids, attention mask and position ids of prompts of different lengths, left-padded."""
    width = max(len(ids) for ids in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
        mask[row, width - len(prompt) :] = 1
    positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
    return ids.to(device), mask.to(device), positions.to(device)


def _layers(cache: DynamicCache) -> list[DynamicLayer]:
    """The cache's layers, which must all be plain full-attention `DynamicLayer`s (see module docstring)."""
    layers = [layer for layer in cache.layers if type(layer) is DynamicLayer]
    if len(layers) != len(cache.layers):
        raise EngineError("this model's cache layout (sliding window or linear attention) cannot be batched")
    return layers


def _keys(layer: DynamicLayer) -> torch.Tensor:
    if layer.keys is None:
        raise EngineError("an empty cache layer cannot be batched")
    return layer.keys


def _values(layer: DynamicLayer) -> torch.Tensor:
    if layer.values is None:
        raise EngineError("an empty cache layer cannot be batched")
    return layer.values


def _stack(first: torch.Tensor, second: torch.Tensor, width: int) -> torch.Tensor:
    """Two [B, H, T, D] batches as one, both left-padded to `width`."""
    return torch.cat([_left_pad(first, width), _left_pad(second, width)], dim=0)


def _left_pad(states: torch.Tensor, width: int) -> torch.Tensor:
    """[B, H, T, D] → [B, H, width, D], zeros on the left (masked out, never attended to)."""
    missing = width - int(states.shape[2])
    return F.pad(states, (0, 0, missing, 0)) if missing else states


def _left_pad_mask(mask: torch.Tensor, width: int) -> torch.Tensor:
    missing = width - int(mask.shape[1])
    return F.pad(mask, (missing, 0)) if missing else mask
