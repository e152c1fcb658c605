"""What an operator asks for when deploying a model, checked before it is stored.

`DeploymentRequest` is the engine-neutral request (the API's body after parsing); `validate`
applies the rules that need more than a schema: a known engine kind, a safe source (a path under
the models directory or a hub id, `gpucloud.engines.sources.check_source`), and a GPU memory figure
— given, or estimated from the model's `config.json` when the control plane can read it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gpucloud.errors import InvalidRequest
from gpucloud.scheduler import estimate_from_config

ENGINES = ("simulated", "transformers", "openai", "sentence-transformers")
# The model id clients use: OpenAI-style ids ("org/model-name:tag") without spaces or "..".
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/\-]{0,199}$")
# Engines that run without a GPU by default: their replicas take no GPU memory unless told.
_CPU_ENGINES = frozenset({"simulated"})


@dataclass(frozen=True, slots=True)
class DeploymentRequest:
    name: str
    engine: str
    source: str | None = None
    engine_options: Mapping[str, str] = field(default_factory=dict)
    replicas: int = 1
    gpu_memory_gb: float | None = None
    gpu_count: int | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    gpu_type: str | None = None
    policy: str = "spread"
    on_demand: bool = False
    idle_unload_seconds: int | None = None
    max_surge: int = 1
    max_unavailable: int = 0
    autoscale: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Validated:
    request: DeploymentRequest
    gpu_memory_gb: float
    gpu_count: int
    estimated: bool


def validate(request: DeploymentRequest, models_dir: Path) -> Validated:
    if not NAME_PATTERN.match(request.name) or ".." in request.name:
        raise InvalidRequest(
            "name must be 1-200 characters of letters, digits and . _ : / - (no '..'), starting with "
            "a letter or digit.",
            param="name",
        )
    if request.engine not in ENGINES:
        raise InvalidRequest(
            f"Unknown engine {request.engine!r}; known: {', '.join(ENGINES)}.", param="engine"
        )
    request = replace(request, source=_checked_source(request))
    scale = request.autoscale or {}
    if scale and int(scale["min_replicas"]) > int(scale["max_replicas"]):
        raise InvalidRequest(
            "autoscale.min_replicas is above autoscale.max_replicas.", param="autoscale.min_replicas"
        )
    if request.max_surge + request.max_unavailable < 1:
        raise InvalidRequest(
            "max_surge and max_unavailable cannot both be 0: a rolling update could never start.",
            param="max_surge",
        )
    if request.idle_unload_seconds is not None and not request.on_demand:
        raise InvalidRequest(
            "idle_unload_seconds applies only to on_demand deployments.", param="idle_unload_seconds"
        )
    gpu_count = request.gpu_count if request.gpu_count is not None else _default_gpu_count(request)
    if request.gpu_memory_gb is not None:
        return Validated(request, request.gpu_memory_gb if gpu_count else 0.0, gpu_count, False)
    if gpu_count == 0:
        return Validated(request, 0.0, 0, False)
    return Validated(request, _estimate(request, models_dir), gpu_count, True)


def _default_gpu_count(request: DeploymentRequest) -> int:
    return 0 if request.engine in _CPU_ENGINES and request.gpu_memory_gb is None else 1


def _checked_source(request: DeploymentRequest) -> str | None:
    if request.source is None:
        if request.engine in ("simulated", "openai", "sentence-transformers"):
            return None  # simulated needs none; openai may attach to a URL; embeddings have a default
        raise InvalidRequest(
            f"The {request.engine} engine needs a source (a model directory or hub id).", param="source"
        )
    from gpucloud.engines.sources import check_source

    try:
        return check_source(request.source)
    except ValueError as exc:
        raise InvalidRequest(str(exc), param="source") from None


def _estimate(request: DeploymentRequest, models_dir: Path) -> float:
    """GB per GPU from the model's config.json under the models directory, at the engine's dtype."""
    config = _read_config(request.source, models_dir)
    if config is None:
        raise InvalidRequest(
            "gpu_memory_gb is required: it cannot be estimated because the control plane cannot read "
            "the model's config.json under its models directory.",
            param="gpu_memory_gb",
        )
    dtype = str(request.engine_options.get("dtype") or config.get("torch_dtype") or "float16")
    if dtype == "auto":
        dtype = str(config.get("torch_dtype") or "float16")
    try:
        total = estimate_from_config(config, dtype)
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidRequest(f"gpu_memory_gb is required: {exc}", param="gpu_memory_gb") from None
    count = request.gpu_count or 1
    return round(max(total / count, 0.01), 3)


def _read_config(source: str | None, models_dir: Path) -> Mapping[str, Any] | None:
    if source is None:
        return None
    root = models_dir.resolve()
    path = (root / source / "config.json").resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None  # a hub id, or a path the control plane does not have (it lives on the workers)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
