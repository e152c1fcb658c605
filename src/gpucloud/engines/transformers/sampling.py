"""Per-sequence sampling: logits processing, temperature, top-p and a private, seeded generator.

Before sampling, a sequence's row of logits gets its `logit_bias` added and its penalties
subtracted for the tokens it has generated so far (OpenAI's formula: `frequency_penalty * count +
presence_penalty * (count > 0)`), each sequence with its own values and counts, inside the same
batched step. Logprobs (`top_logprobs` not None) are the log-softmax of that processed row, from
the same forward pass.

Each sequence in a batch keeps its own parameters and its own `torch.Generator`, so a seeded
request draws the same tokens whatever else shares its batch (a shared generator would make its
output depend on its neighbours). The seed of choice `index` is derived from (seed, index), so the
`n` choices of one seeded request differ from each other and are each reproducible. Sampling runs
on CPU on the last position's logits (one row per sequence), which is small next to a forward
pass and lets CPU generators serve any device.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import torch

from gpucloud.engines.protocol import GenerationRequest


@dataclass(frozen=True, slots=True)
class SamplingParams:
    temperature: float  # 0: greedy (argmax)
    top_p: float  # 1: the whole distribution
    seed: int  # the generator's seed (derived; see `from_request`)
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: tuple[tuple[int, float], ...] = ()  # (token id, bias)
    top_logprobs: int | None = None  # None: no logprobs; else alternatives per token

    @property
    def penalised(self) -> bool:
        return bool(self.presence_penalty or self.frequency_penalty)

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0 or self.top_p <= 0.0

    @classmethod
    def from_request(cls, request: GenerationRequest, index: int) -> SamplingParams:
        """OpenAI defaults (temperature 1, top_p 1); an unseeded request gets fresh randomness."""
        temperature = 1.0 if request.temperature is None else float(request.temperature)
        top_p = 1.0 if request.top_p is None else float(request.top_p)
        bias = tuple((int(token), float(value)) for token, value in (request.logit_bias or {}).items())
        return cls(
            max(temperature, 0.0),
            min(max(top_p, 0.0), 1.0),
            choice_seed(request.seed, index),
            presence_penalty=float(request.presence_penalty or 0.0),
            frequency_penalty=float(request.frequency_penalty or 0.0),
            logit_bias=bias,
            top_logprobs=(request.top_logprobs or 0) if request.logprobs else None,
        )

    def generator(self) -> torch.Generator:
        generator = torch.Generator(device="cpu")
        generator.manual_seed(self.seed)
        return generator


def choice_seed(seed: int | None, index: int) -> int:
    """A 63-bit generator seed for choice `index`: reproducible with a seed, random without."""
    if seed is None:
        return secrets.randbits(63)
    digest = hashlib.sha256(f"{seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def processed(row: torch.Tensor, params: SamplingParams, counts: dict[int, int]) -> torch.Tensor:
    """One row of logits (float32, CPU) after `logit_bias` and the penalties."""
    row = row.detach().to(device="cpu", dtype=torch.float32)
    if not params.logit_bias and not (params.penalised and counts):
        return row
    row = row.clone()
    vocab = row.shape[-1]
    for token, bias in params.logit_bias:
        if 0 <= token < vocab:  # the engine refused ids beyond the vocabulary (logit_bias.py)
            row[token] += bias
    if params.penalised and counts:
        ids = torch.tensor(list(counts), dtype=torch.long)
        seen = torch.tensor(list(counts.values()), dtype=torch.float32)
        row[ids] -= params.frequency_penalty * seen + params.presence_penalty
    return row


def logprobs(row: torch.Tensor, token: int, top: int) -> tuple[float, list[tuple[int, float]]]:
    """The chosen token's log probability and the `top` most likely tokens', from a processed row."""
    logp = torch.log_softmax(row, dim=-1)
    best: list[tuple[int, float]] = []
    if top > 0:
        values, ids = torch.topk(logp, min(top, logp.shape[-1]))
        best = [(int(i), float(v)) for i, v in zip(ids.tolist(), values.tolist(), strict=True)]
    return float(logp[token]), best


def sample(logits: torch.Tensor, params: SamplingParams, generator: torch.Generator) -> int:
    """One token id from one row of logits (any dtype, any device)."""
    row = logits.detach().to(device="cpu", dtype=torch.float32)
    if params.greedy:
        return int(torch.argmax(row).item())
    probs = torch.softmax(row / params.temperature, dim=-1)
    if params.top_p < 1.0:
        probs = _nucleus(probs, params.top_p)
    return int(torch.multinomial(probs, 1, generator=generator).item())


def _nucleus(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """The smallest set of most likely tokens whose probability reaches `top_p`, renormalised."""
    sorted_probs, order = torch.sort(probs, descending=True)
    before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs  # mass of strictly more likely tokens
    sorted_probs[before >= top_p] = 0.0  # the most likely token always survives (before == 0)
    kept = torch.zeros_like(probs).scatter_(-1, order, sorted_probs)
    return kept / kept.sum()
