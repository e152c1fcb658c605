"""Engines: one model's inference behind the `Engine` protocol.

`build_engine(kind, model, options)` makes an engine from a kind name and string options (as the
worker's `--engine-option KEY=VALUE` gives them); engines with heavy dependencies are imported
only when asked for.
"""

from collections.abc import Mapping

from gpucloud.engines.protocol import Delta, Engine, EngineError, GenerationRequest

ENGINE_KINDS = ("simulated",)


def build_engine(kind: str, model: str, options: Mapping[str, str]) -> Engine:
    if kind == "simulated":
        from gpucloud.engines.simulated import SimulatedEngine

        return SimulatedEngine.from_options(model, options)
    raise ValueError(f"unknown engine kind {kind!r}; known: {', '.join(ENGINE_KINDS)}")


__all__ = ["ENGINE_KINDS", "Delta", "Engine", "EngineError", "GenerationRequest", "build_engine"]
