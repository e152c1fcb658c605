"""`logit_bias` token ids checked against the model's vocabulary, the same way on every engine.

An id beyond the vocabulary is the request's fault: the engine refuses it with an error whose code
(`INVALID_LOGIT_BIAS`) the gateway turns into a 400 naming `logit_bias` (`gateway.job_errors`),
rather than biasing nothing in silence (transformers) or failing mid-stream in a way that reads as
the server's own failure (`transformers serve`).
"""

from __future__ import annotations

from gpucloud.engines.protocol import EngineError, GenerationRequest

INVALID_LOGIT_BIAS = "invalid_logit_bias"


def check_logit_bias(request: GenerationRequest, vocabulary: int | None) -> None:
    if vocabulary is None or not request.logit_bias:
        return
    beyond = sorted(int(token) for token in request.logit_bias if int(token) >= vocabulary)
    if beyond:
        raise EngineError(
            f"logit_bias names token {beyond[0]}, beyond this model's vocabulary of {vocabulary} tokens.",
            code=INVALID_LOGIT_BIAS,
        )
