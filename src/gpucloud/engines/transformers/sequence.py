"""`Sequence`: one choice being generated, from its prompt ids to the `Delta`s its consumer reads.

The batcher's thread owns a sequence while it runs: it feeds each sampled token to `accept`, which
detokenizes, applies stop strings and limits, and puts the resulting deltas in `outbox`; after
each step the batcher hands every outbox to the consumers' event loop in one thread-safe call
(`deliver`), instead of waking the loop once per token per sequence. The consumer's side only
ever sets `cancelled` (a plain attribute write, atomic under the GIL), which the batcher checks
every step.

Token accounting: each delta's `tokens` is the number of tokens generated since the previous
delta, so the deltas of a choice add up to every token the model generated for it, including an
end-of-sequence token and the tokens of a stop string (their text is not emitted, but the model
computed them, as OpenAI bills them). Text held back (an incomplete character, a possible start
of a stop string) is reported with the delta that releases it.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch

from gpucloud.engines.protocol import Delta, FinishReason, TokenLogprob
from gpucloud.engines.stops import StopScanner
from gpucloud.engines.transformers.detokenizer import IncrementalDetokenizer
from gpucloud.engines.transformers.grammar import Constraint
from gpucloud.engines.transformers.sampling import SamplingParams, logprobs, processed, sample

# What a consumer receives: deltas, then possibly an error that ends the stream.
Item = Delta | BaseException


@dataclass(eq=False, slots=True)
class Sequence:
    prompt_ids: list[int]
    limit: int  # completion tokens at most (max_tokens, or what the context leaves)
    params: SamplingParams
    eos_token_ids: frozenset[int]
    detokenizer: IncrementalDetokenizer
    stops: StopScanner
    loop: asyncio.AbstractEventLoop  # the consumer's
    queue: asyncio.Queue[Item]  # the consumer reads it; only `loop` may touch it
    cancelled: bool = False  # set by the consumer: stop at the next step
    finished: bool = False  # set by the batcher: the last delta went out
    generated: int = 0
    next_input: int = -1  # the token to feed at the next decode step
    generator: torch.Generator = field(init=False)
    outbox: list[Item] = field(default_factory=list)  # produced this step, not yet delivered
    counts: dict[int, int] = field(default_factory=dict)  # generated tokens, for the penalties
    constraint: Constraint | None = None  # structured output: the grammar the answer must follow
    _unreported: int = 0
    _logprobs: list[TokenLogprob] = field(default_factory=list)  # not yet reported

    def __post_init__(self) -> None:
        self.generator = self.params.generator()

    @property
    def done(self) -> bool:
        return self.finished or self.cancelled

    def choose(self, row: torch.Tensor) -> None:
        """Pick the next token from this sequence's row of logits (processed, sampled, with its
        logprobs when asked) and accept it."""
        logits = processed(row, self.params, self.counts)  # a constraint's mask is in `row` already
        token = sample(logits, self.params, self.generator)
        if self.constraint is not None:
            self.constraint.advance(token)
        if self.params.top_logprobs is not None:
            self._logprobs.append(self._logprob(logits, token, self.params.top_logprobs))
        self.counts[token] = self.counts.get(token, 0) + 1
        self.accept(token)

    def _logprob(self, logits: torch.Tensor, token: int, top: int) -> TokenLogprob:
        value, best = logprobs(logits, token, top)
        piece = self.detokenizer.piece
        alternatives = [(piece(i), lp, list(piece(i).encode())) for i, lp in best]
        text = piece(token)
        return TokenLogprob(text, value, list(text.encode()), alternatives)

    def accept(self, token: int) -> None:
        """Take one generated token: emit what it releases, finish on EOS, stop string or limit."""
        self.generated += 1
        self._unreported += 1
        self.next_input = token
        finish: FinishReason | None = None
        if token in self.eos_token_ids:
            text, stopped = self.stops.push(self.detokenizer.flush())
            finish = "stop"
            if not stopped:
                text += self.stops.release()
        else:
            text, stopped = self.stops.push(self.detokenizer.feed(token))
            if stopped:
                finish = "stop"
            elif self.generated >= self.limit:
                tail, stopped = self.stops.push(self.detokenizer.flush())
                text += tail if stopped else tail + self.stops.release()
                finish = "stop" if stopped else "length"
        if text or finish is not None:
            reported = tuple(self._logprobs)
            self._emit(Delta(text=text, tokens=self._unreported, finish_reason=finish, logprobs=reported))
            self._unreported, self._logprobs = 0, []
        self.finished = finish is not None

    def fail(self, error: BaseException) -> None:
        """End the stream with `error` (the consumer raises it)."""
        if not self.finished:
            self.finished = True
            self._emit(error)

    def _emit(self, item: Item) -> None:
        self.outbox.append(item)


def deliver(sequences: Iterable[Sequence]) -> None:
    """Hand the outboxes of `sequences` to their consumers: one wake-up per event loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[Sequence]] = defaultdict(list)
    for sequence in sequences:
        if sequence.outbox:
            by_loop[sequence.loop].append(sequence)
    for loop, batch in by_loop.items():
        parcels = [(sequence.queue, sequence.outbox) for sequence in batch]
        for sequence in batch:
            sequence.outbox = []
        try:
            loop.call_soon_threadsafe(_put_all, parcels)
        except RuntimeError:
            # The consumers' event loop is closed: nobody will read these sequences again.
            for sequence in batch:
                sequence.cancelled = True


def _put_all(parcels: list[tuple[asyncio.Queue[Item], list[Item]]]) -> None:
    for queue, items in parcels:
        for item in items:
            queue.put_nowait(item)
