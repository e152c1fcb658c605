"""Running an embedding job on an engine: checks, one `embed` call, and the outcome's choices.

A job of kind "embedding" carries its texts in `GenerationRequest.input` and an optional
`extra["dimensions"]`. The engine must implement `EmbeddingEngine`; a model that does not, or a
`dimensions` the model cannot honour, fails the job with an `EngineError` whose code the gateway
turns into a 400 (`embeddings_unsupported`, `invalid_dimensions`) — never a retry, since another
attempt on the same model cannot succeed.

Each choice is a `Choice` with `embedding_base64`: the vector as base64 of little-endian
float32 bytes (see `engines.vectors`), about a fifth of the JSON numbers' size on the queue and
in the stored result, and exact.
"""

from __future__ import annotations

from gpucloud.engines import vectors
from gpucloud.engines.protocol import EmbeddingEngine, Engine, EngineError, GenerationRequest
from gpucloud.queue.messages import Choice

UNSUPPORTED = "embeddings_unsupported"
INVALID_DIMENSIONS = "invalid_dimensions"


async def embed_choices(engine: Engine, request: GenerationRequest) -> tuple[list[Choice], int]:
    """The choices of an embedding job and its prompt tokens; EngineError (with a code) if refused."""
    if not isinstance(engine, EmbeddingEngine):
        raise EngineError(f"The model '{request.model}' does not serve embeddings.", code=UNSUPPORTED)
    texts = list(request.input or [])
    dimensions = _dimensions(engine, request)
    result = await engine.embed(texts, dimensions)
    if len(result.vectors) != len(texts):
        raise EngineError(f"the engine returned {len(result.vectors)} vectors for {len(texts)} texts")
    choices = [
        Choice(index, embedding_base64=vectors.to_base64(vector))
        for index, vector in enumerate(result.vectors)
    ]
    return choices, result.prompt_tokens


def _dimensions(engine: EmbeddingEngine, request: GenerationRequest) -> int | None:
    raw = request.extra.get("dimensions")
    if raw is None:
        return None
    dimensions = int(raw)
    native = engine.embedding_dimensions
    if dimensions == native:
        return None  # the model's own length: nothing to shorten
    if not engine.shortens_embeddings:
        raise EngineError(
            f"The model '{request.model}' does not support the dimensions parameter "
            f"(its embeddings have {native} dimensions).",
            code=INVALID_DIMENSIONS,
        )
    if not 1 <= dimensions < native:
        raise EngineError(
            f"dimensions must be between 1 and {native} for the model '{request.model}'.",
            code=INVALID_DIMENSIONS,
        )
    return dimensions
