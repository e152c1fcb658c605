"""`/v1/embeddings`: the request's checks and the OpenAI response body.

An embedding request is a job like any other (docs/architecture.md §1): the gateway checks it here, submits
a `GenerationRequest` of kind "embedding" (texts in `input`, `dimensions` in `extra`), a worker
runs it (`worker/embedding.py`), and the finalizer bills its prompt tokens (completion tokens 0)
in one usage row before the answer goes out.

Vectors travel as base64 of little-endian float32 (`engines.vectors`); `encoding_format="base64"`
returns them as they are, which is what the OpenAI API returns and what its SDK decodes (the SDK
asks for base64 by default), and `"float"` turns them into JSON numbers. `encoding_format` is a
matter of presentation only, so it is not part of the job: two requests that differ in it alone
are the same job for an Idempotency-Key.

Bounds: at most `limits.max_embedding_inputs` texts, none empty, and `limits.max_prompt_chars`
characters in all (400 naming `input`); the body's own size is bounded by `max_body_bytes` (413).
Token-id arrays, which OpenAI's API also accepts, are refused with a 400 that says to send text:
an engine's tokenizer is not the client's.
"""

from __future__ import annotations

from typing import Any, Literal

from gpucloud.engines import vectors
from gpucloud.engines.protocol import GenerationRequest
from gpucloud.errors import InvalidRequest, NotFound
from gpucloud.gateway.schemas import EmbeddingRequest
from gpucloud.jobs import EMBEDDINGS_OMITTED
from gpucloud.settings import RequestLimits


def embedding_request(body: EmbeddingRequest, limits: RequestLimits) -> GenerationRequest:
    """The engine-neutral job of a checked embedding request; InvalidRequest naming the field."""
    texts = _texts(body.input)
    if len(texts) > limits.max_embedding_inputs:
        raise InvalidRequest(
            f"input may hold at most {limits.max_embedding_inputs} texts, got {len(texts)}.", param="input"
        )
    if sum(len(text) for text in texts) > limits.max_prompt_chars:
        raise InvalidRequest(
            f"The input is longer than {limits.max_prompt_chars} characters in all.", param="input"
        )
    extra: dict[str, Any] = {"dimensions": body.dimensions} if body.dimensions is not None else {}
    return GenerationRequest(kind="embedding", model=body.model, input=texts, user=body.user, extra=extra)


def _texts(value: object) -> list[str]:
    if isinstance(value, str):
        texts = [value]
    elif not isinstance(value, list):
        raise InvalidRequest("input must be a string or a list of strings.", param="input")
    elif not value:
        raise InvalidRequest("input must not be an empty list.", param="input")
    elif all(isinstance(item, str) for item in value):
        texts = list(value)
    elif all(_is_token_ids(item) for item in value):
        raise InvalidRequest(
            "input as token ids is not supported by this server: send the text as a string or a "
            "list of strings.",
            param="input",
        )
    else:
        raise InvalidRequest("input must be a string or a list of strings.", param="input")
    for index, text in enumerate(texts):
        if not text:
            where = "input" if isinstance(value, str) else f"input[{index}]"
            raise InvalidRequest("input must not contain empty strings.", param=where)
    return texts


def _is_token_ids(item: object) -> bool:
    """An int (a flat token array) or a list of ints (one of several token arrays)."""
    if isinstance(item, bool):
        return False
    if isinstance(item, int):
        return True
    return isinstance(item, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in item)


def embedding_body(
    model: str, final: dict[str, Any], encoding_format: Literal["float", "base64"]
) -> dict[str, Any]:
    """The OpenAI response for a finished embedding job (its FINAL event or stored result)."""
    if final.get(EMBEDDINGS_OMITTED):
        raise NotFound(
            "The result of the original request was too large to keep; send it again with a new "
            "Idempotency-Key.",
            code="result_not_kept",
        )
    data = []
    for choice in sorted(final.get("choices", []), key=lambda c: int(c["index"])):
        encoded = str(choice["embedding_base64"])
        embedding: str | list[float] = (
            encoded if encoding_format == "base64" else vectors.unpack(vectors.from_base64(encoded))
        )
        data.append({"object": "embedding", "index": int(choice["index"]), "embedding": embedding})
    prompt = int(final.get("prompt_tokens") or 0)
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt, "total_tokens": prompt},
    }
