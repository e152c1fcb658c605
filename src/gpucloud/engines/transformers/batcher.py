"""`ContinuousBatcher`: one thread that runs every active sequence of a model in one batch.

Why our own loop rather than transformers' `ContinuousBatchingManager`
(`model.init_continuous_batching()`, transformers 5.x): that manager decides greedy versus
sampling once for the whole manager (`generation_config.do_sample`), and samples every request
with `torch.multinomial` on one shared random generator. A batch there cannot mix a greedy
request with a sampled one, and a seeded request's output would depend on which other requests
happened to share its steps, so OpenAI's per-request `temperature`, `top_p` and `seed` cannot be
honoured. Its paged-attention path is also tuned for GPUs. This loop is small and does exactly
what the `Engine` contract needs:

each step, the thread (1) drops sequences whose consumer went away, (2) admits waiting
sequences up to `max_batch_size` and prefills them together (left-padded) into a fresh cache
that is merged into the running one, (3) runs one forward pass of one token for every active
sequence over the shared `PaddedCache`, (4) samples each sequence's next token with its own
parameters, logits processing (penalties, logit_bias) and generator, and hands the step's
deltas to the consumers' asyncio queues in one `loop.call_soon_threadsafe` per event loop (see
`sequence.deliver`). Sequences join and leave
between any two steps.

It counts what tests and operators want to see in `BatcherStats` (steps, the largest batch a
decode step ran, tokens generated, sequences cancelled).
"""

from __future__ import annotations

import collections
import inspect
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import torch
from transformers import DynamicCache, PreTrainedModel

from gpucloud.engines.protocol import EngineError
from gpucloud.engines.transformers.grammar import Constrained, apply_masks, compute_masks
from gpucloud.engines.transformers.kvcache import PaddedCache, left_padded
from gpucloud.engines.transformers.sequence import Sequence, deliver

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BatcherStats:
    steps: int = 0  # forward passes, prefills included
    max_batch_seen: int = 0  # most sequences one decode step ran together
    in_flight: int = 0  # submitted and not yet released by the loop (waiting or in the batch)
    tokens_generated: int = 0
    cancelled: int = 0  # sequences dropped because their consumer went away


class ContinuousBatcher:
    def __init__(self, model: PreTrainedModel, device: torch.device, pad_token_id: int, max_batch_size: int):
        self._model = model
        self._device = device
        self._pad_id = pad_token_id
        self._max_batch = max_batch_size
        # Only models whose forward takes logits_to_keep can skip the prompt positions' logits.
        self._trim_logits = "logits_to_keep" in inspect.signature(model.forward).parameters
        self._cond = threading.Condition()
        self._waiting: collections.deque[Sequence] = collections.deque()
        self._stopping = False
        self._rows: list[Sequence] = []  # only the thread touches these two
        self._cache = PaddedCache(device)
        self._stats = BatcherStats()
        self._stats_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="transformers-batcher", daemon=True)
        # Grammar masks are computed here while the forward pass runs (see `_masks`).
        self._masking = ThreadPoolExecutor(1, thread_name_prefix="grammar-masks")

    @property
    def stats(self) -> BatcherStats:
        return self._stats

    def start(self) -> None:
        self._thread.start()

    def submit(self, sequence: Sequence) -> None:
        with self._cond:
            if self._stopping:
                raise EngineError("the engine is stopping", retryable=True)
            self._waiting.append(sequence)
            self._count(in_flight=1)
            self._cond.notify()

    def wake(self) -> None:
        """A consumer cancelled: let an idle loop notice (a busy one checks every step)."""
        with self._cond:
            self._cond.notify()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop the thread after its current step; every unfinished sequence gets a retryable error."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        self._masking.shutdown(wait=False)

    # the thread ------------------------------------------------------------------------------

    def _run(self) -> None:
        with torch.inference_mode():
            while (admitted := self._next_work()) is not None:
                try:
                    self._step(admitted)
                except Exception as exc:  # one bad step must not kill the model's thread
                    log.exception("batched generation step failed; failing its sequences")
                    self._fail_all(admitted, EngineError(f"generation failed: {exc}", retryable=True))
        with self._cond:
            waiting, self._waiting = list(self._waiting), collections.deque()
        self._fail_all(waiting, EngineError("the engine stopped", retryable=True))

    def _next_work(self) -> list[Sequence] | None:
        """Sequences to admit now (maybe none); None when the loop must end. Sleeps while idle."""
        with self._cond:
            while not self._stopping and not self._waiting and not self._rows:
                self._cond.wait()
            if self._stopping:
                return None
            admitted: list[Sequence] = []
            while self._waiting and len(self._rows) + len(admitted) < self._max_batch:
                sequence = self._waiting.popleft()
                if sequence.cancelled:
                    self._count(cancelled=1, in_flight=-1)
                else:
                    admitted.append(sequence)
            return admitted

    def _step(self, admitted: list[Sequence]) -> None:
        self._drop_done()
        if admitted:
            self._prefill(admitted)
            self._drop_done()
        if self._rows:
            self._decode()
            self._drop_done()
        # Let the event loop's thread take the GIL now: it has this step's deltas to forward and
        # leases to renew, and otherwise waits up to a switch interval (5 ms) for every hand-over
        # while the forward passes' Python code holds the GIL.
        time.sleep(0)

    def _prefill(self, admitted: list[Sequence]) -> None:
        ids, mask, positions = left_padded([s.prompt_ids for s in admitted], self._pad_id, self._device)
        cache = DynamicCache()
        masks = self._masks(admitted)
        logits = self._forward(ids, mask, positions, cache)
        self._cache.merge(cache, mask, [len(s.prompt_ids) for s in admitted])
        self._rows += admitted
        log.debug("admitted %d sequence(s); batch of %d", len(admitted), len(self._rows))
        self._sample_into(admitted, logits, masks)

    def _decode(self) -> None:
        mask, positions = self._cache.decode_inputs()
        ids = torch.tensor([[s.next_input] for s in self._rows], dtype=torch.long, device=self._device)
        masks = self._masks(self._rows)
        logits = self._forward(ids, mask, positions, self._cache.cache)
        self._count(max_batch=len(self._rows))
        self._sample_into(self._rows, logits, masks)

    def _masks(self, sequences: list[Sequence]) -> tuple[Constrained, Future[torch.Tensor] | None]:
        """Start computing the grammar masks of the constrained rows on the masking thread, so that
        they are ready when the forward pass that runs meanwhile has the logits. Each grammar's
        state is final here: its last token was fed in the previous step."""
        constrained = [(r, s.constraint) for r, s in enumerate(sequences) if s.constraint and not s.done]
        return constrained, self._masking.submit(compute_masks, constrained) if constrained else None

    def _forward(
        self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, cache: DynamicCache | None
    ) -> torch.Tensor:
        """Logits of the last position of every row: [rows, vocab]."""
        extra = {"logits_to_keep": 1} if self._trim_logits else {}
        output = self._model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            past_key_values=cache,
            use_cache=True,
            **extra,
        )
        self._count(steps=1)
        logits: torch.Tensor = output.logits[:, -1, :]
        return logits

    def _sample_into(
        self,
        sequences: list[Sequence],
        logits: torch.Tensor,
        masks: tuple[Constrained, Future[torch.Tensor] | None],
    ) -> None:
        rows = logits.float().cpu()  # one transfer for the batch, not one per row
        constrained, bitmask = masks
        if bitmask is not None:
            apply_masks(rows, constrained, bitmask.result())
        accepted = 0
        for row, sequence in enumerate(sequences):
            if not sequence.done:
                sequence.choose(rows[row])
                accepted += 1
        deliver(sequences)
        self._count(tokens=accepted)

    def _drop_done(self) -> None:
        keep = [row for row, sequence in enumerate(self._rows) if not sequence.done]
        if len(keep) == len(self._rows):
            return
        cancelled = sum(1 for s in self._rows if s.cancelled and not s.finished)
        self._count(cancelled=cancelled, in_flight=len(keep) - len(self._rows))
        self._rows = [self._rows[row] for row in keep]
        self._cache.keep(keep)

    def _fail_all(self, admitted: list[Sequence], error: EngineError) -> None:
        # Rows are still counted in flight; of the admitted, only those not yet merged and dropped.
        stray = [s for s in admitted if not s.done and all(s is not row for row in self._rows)]
        failed = {id(sequence): sequence for sequence in [*self._rows, *stray]}
        for sequence in failed.values():
            sequence.fail(error)
        deliver(failed.values())
        self._count(in_flight=-len(failed))
        self._rows = []
        self._cache = PaddedCache(self._device)

    def _count(
        self,
        *,
        steps: int = 0,
        tokens: int = 0,
        cancelled: int = 0,
        max_batch: int = 0,
        in_flight: int = 0,
    ) -> None:
        # One immutable snapshot replaced at a time (under a lock: `submit` counts from the event
        # loop's thread): readers never see a torn one.
        with self._stats_lock:
            s = self._stats
            self._stats = BatcherStats(
                steps=s.steps + steps,
                max_batch_seen=max(s.max_batch_seen, max_batch),
                in_flight=s.in_flight + in_flight,
                tokens_generated=s.tokens_generated + tokens,
                cancelled=s.cancelled + cancelled,
            )
