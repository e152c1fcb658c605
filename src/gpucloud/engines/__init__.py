"""Engines: one model's inference behind the `Engine` protocol.

`build_engine(kind, model, options, source=..., models_dir=...)` makes an engine from a kind name,
string options (as the worker's `--engine-option KEY=VALUE` or a deployment's `engine_options`
give them) and, for engines that load weights, a source (a path under `models_dir` or a hub id,
see `engines.sources`). Engines with heavy dependencies are imported only when asked for.
"""

from collections.abc import Mapping
from pathlib import Path

from gpucloud.engines.protocol import Delta, Engine, EngineError, GenerationRequest

ENGINE_KINDS = ("simulated", "transformers", "openai", "sentence-transformers")


def build_engine(
    kind: str,
    model: str,
    options: Mapping[str, str],
    *,
    source: str | None = None,
    models_dir: Path | None = None,
) -> Engine:
    if kind == "simulated":
        from gpucloud.engines.simulated import SimulatedEngine

        return SimulatedEngine.from_options(model, options)
    if kind == "transformers":
        try:
            from gpucloud.engines.transformers import TransformersEngine
        except ImportError as exc:
            raise ValueError(
                f"the transformers engine needs the 'transformers' extra "
                f"(pip install 'gpucloud[transformers]'): {exc}"
            ) from exc
        return TransformersEngine.from_options(model, options, source=source, models_dir=models_dir)
    if kind == "openai":  # an engine server (vLLM, SGLang, llama.cpp, transformers serve)
        from gpucloud.engines.server import OpenAIServerEngine

        return OpenAIServerEngine.from_options(model, options, _local_source(source, models_dir))
    if kind == "sentence-transformers":
        from gpucloud.engines.embeddings import SentenceTransformersEngine

        resolved = _local_source(source, models_dir)
        return SentenceTransformersEngine.from_options(model, options, resolved)
    raise ValueError(f"unknown engine kind {kind!r}; known: {', '.join(ENGINE_KINDS)}")


def _local_source(source: str | None, models_dir: Path | None) -> str | None:
    """A source as a launched server or a loader gets it: the checked path under the models
    directory (as a string), or the hub id as given; None without a source."""
    if source is None:
        return None
    if models_dir is None:
        raise ValueError("a model source needs a models directory (GPUCLOUD_MODELS_DIR)")
    from gpucloud.engines.sources import resolve_source

    return str(resolve_source(source, models_dir))


__all__ = ["ENGINE_KINDS", "Delta", "Engine", "EngineError", "GenerationRequest", "build_engine"]
