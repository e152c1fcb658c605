"""`TransformersEngine`: a Hugging Face causal LM served in-process, batched continuously.

It loads the model and tokenizer from a directory under the worker's models directory or from a
hub id (`engines.sources`), on CUDA when available (option `device`), in a thread so the event
loop stays free; `start()` returns when the model can serve. Prompts go through the tokenizer's
chat template (`prompts`), every choice becomes a `Sequence` that the `ContinuousBatcher` runs in
one batch with all other active sequences, and `generate` streams its deltas from an asyncio
queue. Closing the stream or cancelling its task marks the sequence cancelled; the batcher drops
it at its next step.

Limits follow the simulated engine's (and OpenAI's) contract: a prompt plus `max_tokens` that do
not fit the context is an error; without `max_tokens` a choice may run to the end of the context.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Mapping
from pathlib import Path

from gpucloud.engines.capabilities import Capabilities, capabilities_of_kind
from gpucloud.engines.logit_bias import check_logit_bias
from gpucloud.engines.protocol import Delta, EngineError, GenerationRequest
from gpucloud.engines.sources import check_source, is_hub_id, resolve_source
from gpucloud.engines.stops import StopScanner
from gpucloud.engines.transformers.batcher import BatcherStats, ContinuousBatcher
from gpucloud.engines.transformers.detokenizer import IncrementalDetokenizer
from gpucloud.engines.transformers.grammar import Constraint, Grammars
from gpucloud.engines.transformers.loading import LoadedModel, load_model
from gpucloud.engines.transformers.options import TransformersOptions, parse_options
from gpucloud.engines.transformers.prompts import PromptEncoder
from gpucloud.engines.transformers.sampling import SamplingParams
from gpucloud.engines.transformers.sequence import Sequence
from gpucloud.engines.transformers.tools import relay, uses_tools


class TransformersEngine:
    """One causal LM (see module docstring)."""

    def __init__(self, model: str, source: Path | str, options: TransformersOptions | None = None) -> None:
        self._model = model
        self._source = source
        self._options = options or TransformersOptions()
        self._loaded: LoadedModel | None = None
        self._prompts: PromptEncoder | None = None
        self._grammars: Grammars | None = None
        self._vocabulary: int | None = None  # logits per step: token ids at or past it are refused
        self._batcher: ContinuousBatcher | None = None

    @classmethod
    def from_options(
        cls, model: str, options: Mapping[str, str], *, source: str | None, models_dir: Path | None
    ) -> TransformersEngine:
        """Build from string options; the source (default: the model name) must resolve safely."""
        parsed = parse_options(options)
        wanted = source if source is not None else model
        if models_dir is not None:
            return cls(model, resolve_source(wanted, models_dir), parsed)
        normalised = check_source(wanted)
        if not is_hub_id(normalised):
            raise ValueError(f"model source {normalised!r} is a path, but no models directory was given")
        return cls(model, normalised, parsed)

    @property
    def model(self) -> str:
        return self._model

    @property
    def capabilities(self) -> Capabilities:
        return capabilities_of_kind("transformers")

    @property
    def stats(self) -> BatcherStats:
        """The batcher's counters (zeros before `start`)."""
        return self._batcher.stats if self._batcher is not None else BatcherStats()

    @property
    def max_model_len(self) -> int:
        return self._require().max_model_len

    async def start(self) -> None:
        if self._batcher is not None:
            return
        try:
            loaded = await asyncio.to_thread(load_model, self._source, self._options)
        except (OSError, ValueError) as exc:
            raise EngineError(f"could not load model {self._model!r}: {exc}") from exc
        self._loaded = loaded
        self._prompts = PromptEncoder(loaded.tokenizer)
        vocab = int(getattr(loaded.model.config, "vocab_size", 0) or len(loaded.tokenizer))
        self._grammars = Grammars(loaded.tokenizer, vocab, loaded.eos_token_ids)
        self._vocabulary = vocab
        self._batcher = ContinuousBatcher(
            loaded.model, loaded.device, loaded.pad_token_id, self._options.max_batch_size
        )
        self._batcher.start()

    async def stop(self) -> None:
        batcher, self._batcher = self._batcher, None
        if batcher is not None:
            await asyncio.to_thread(batcher.stop)
        loaded, self._loaded = self._loaded, None
        if loaded is not None and loaded.device.type == "cuda":
            import torch

            del loaded
            torch.cuda.empty_cache()  # give the memory back to other replicas on this GPU

    def count_prompt_tokens(self, request: GenerationRequest) -> int:
        return len(self._encode(request))

    async def generate(self, request: GenerationRequest, index: int) -> AsyncGenerator[Delta, None]:
        """Stream choice `index` of `request` (token accounting: see `sequence.Sequence`); with
        tools to call, an answer that is calls comes as `tool_calls` (see `tools.relay`)."""
        stream = self._generate(request, index)
        deltas = relay(stream) if uses_tools(request) else stream
        try:
            async for delta in deltas:
                yield delta
        finally:
            await stream.aclose()

    async def _generate(self, request: GenerationRequest, index: int) -> AsyncGenerator[Delta, None]:
        loaded = self._require()
        batcher = self._batcher
        assert batcher is not None  # set with _loaded
        check_logit_bias(request, self._vocabulary)
        prompt = self._encode(request)
        queue: asyncio.Queue[Delta | BaseException] = asyncio.Queue()
        sequence = Sequence(
            prompt_ids=prompt,
            limit=self._completion_limit(request, len(prompt), loaded.max_model_len),
            params=SamplingParams.from_request(request, index),
            eos_token_ids=loaded.eos_token_ids,
            detokenizer=IncrementalDetokenizer(loaded.tokenizer),
            stops=StopScanner(request.stop),
            loop=asyncio.get_running_loop(),
            queue=queue,
            # Compiling a grammar (and wrapping the tokenizer, the first time) takes a while: off
            # the event loop.
            constraint=await asyncio.to_thread(self._constraint, request)
            if request.response_format or uses_tools(request)
            else None,
        )
        batcher.submit(sequence)
        try:
            while True:
                item = await queue.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
                if item.finish_reason is not None:
                    return
        finally:
            if not sequence.finished:
                sequence.cancelled = True
                batcher.wake()

    def _constraint(self, request: GenerationRequest) -> Constraint | None:
        if self._grammars is None:
            raise EngineError(f"model {self._model!r} is not loaded", retryable=True)
        return self._grammars.constraint(request)

    def _require(self) -> LoadedModel:
        if self._loaded is None:
            raise EngineError(f"model {self._model!r} is not loaded", retryable=True)
        return self._loaded

    def _encode(self, request: GenerationRequest) -> list[int]:
        loaded = self._require()
        assert self._prompts is not None  # set with _loaded
        ids = self._prompts.encode(request)
        if not ids:
            # An empty completion prompt: start from BOS when the model has one, as generate() does.
            bos = loaded.tokenizer.bos_token_id
            if bos is None:
                raise EngineError(
                    "the prompt is empty and this model has no beginning-of-sequence token",
                    code="invalid_request",
                )
            ids = [int(bos)]
        return ids

    @staticmethod
    def _completion_limit(request: GenerationRequest, prompt: int, context: int) -> int:
        """Most completion tokens this choice may produce; EngineError when it cannot fit."""
        where = "messages" if request.kind == "chat" else "prompt"
        intro = f"This model's maximum context length is {context} tokens."
        wanted = request.max_tokens
        if wanted is None:
            if prompt >= context:
                raise EngineError(
                    f"{intro} However, your {where} resulted in {prompt} tokens, which leaves no room "
                    f"for the completion. Please reduce the length of the {where}.",
                    code="context_length_exceeded",
                )
            return context - prompt
        if wanted < 1:
            raise EngineError(f"max_tokens must be at least 1, got {wanted}.", code="invalid_request")
        if prompt + wanted > context:
            raise EngineError(
                f"{intro} However, you requested {prompt + wanted} tokens ({prompt} in the {where}, "
                f"{wanted} in the completion). Please reduce the length of the {where} or completion.",
                code="context_length_exceeded",
            )
        return wanted
