"""Presets: how to launch each known OpenAI-compatible engine server, and what it speaks.

A preset is a command template plus what the proxy must know about the server: the path that
says it is ready, the model name it expects in requests, whether it reports usage on every chunk
(vLLM's `continuous_usage_stats`, which also gives the prompt's tokens with the first chunk) and
which Prometheus series on its `/metrics` tell its load.

Placeholders in a command template: `{host}` (always 127.0.0.1, see below), `{port}` (a free
port picked at each launch), `{model}` (the model id clients use), `{source}` (the resolved
model source: a local directory, or a hub id for servers that fetch it themselves), and
`{python}` (this interpreter, for servers started with `python -m`). A custom `command` option
replaces the preset's template; `args` appends to either.

The server binds 127.0.0.1 only: it has no notion of gpucloud's keys, so nothing but this
worker's proxy may reach it (the gateway's auth would be bypassed otherwise).
"""

from __future__ import annotations

import shlex
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class Preset:
    name: str
    command: str  # template, see the module docstring
    health_path: str = "/health"
    upstream_model: str = "{model}"  # the name the server knows the model by (a template too)
    continuous_usage: bool = False  # usage on every streamed chunk: exact token counts mid-stream
    # Prometheus series → our load names (summed over label sets); empty: no usable /metrics.
    metrics: Mapping[str, str] = field(default_factory=dict)


_VLLM_METRICS = {
    "vllm:num_requests_running": "running_requests",
    "vllm:num_requests_waiting": "waiting_requests",
    "vllm:gpu_cache_usage_perc": "kv_cache_usage",  # vLLM < 0.10 (a fraction despite the name)
    "vllm:kv_cache_usage_perc": "kv_cache_usage",  # vLLM ≥ 0.10
}
_SGLANG_METRICS = {
    "sglang:num_running_reqs": "running_requests",
    "sglang:num_queue_reqs": "waiting_requests",
    "sglang:token_usage": "kv_cache_usage",  # fraction of the KV pool's tokens in use
}
_LLAMA_CPP_METRICS = {
    "llamacpp:requests_processing": "running_requests",
    "llamacpp:requests_deferred": "waiting_requests",
    "llamacpp:kv_cache_usage_ratio": "kv_cache_usage",
}

PRESETS: dict[str, Preset] = {
    "vllm": Preset(
        "vllm",
        "vllm serve {source} --host {host} --port {port} --served-model-name {model} --disable-log-requests",
        continuous_usage=True,
        metrics=_VLLM_METRICS,
    ),
    "sglang": Preset(
        "sglang",
        "{python} -m sglang.launch_server --model-path {source} --host {host} --port {port} "
        "--served-model-name {model} --enable-metrics",
        metrics=_SGLANG_METRICS,
    ),
    "llama.cpp": Preset(
        "llama.cpp",
        "llama-server -m {source} --host {host} --port {port} --alias {model} --metrics",
        metrics=_LLAMA_CPP_METRICS,
    ),
    # `transformers serve` pins the model it was started with and wants that name in requests.
    "transformers": Preset(
        "transformers",
        "transformers serve {source} --host {host} --port {port}",
        upstream_model="{source}",
    ),
}
CUSTOM = Preset("custom", "")


def preset_named(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown engine server preset {name!r}; known: {', '.join(PRESETS)}") from None


def render(template: str, values: Mapping[str, str]) -> list[str]:
    """The argv of a command template: split like a shell would, then each word filled in (so a
    value with spaces stays one argument and cannot inject options)."""
    try:
        words = shlex.split(template)
    except ValueError as exc:
        raise ValueError(f"engine server command {template!r}: {exc}") from None
    try:
        return [word.format_map(values) for word in words]
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(f"engine server command {template!r}: bad placeholder {exc}") from None


def resolve_program(argv: list[str]) -> list[str]:
    """argv with its program found: next to this interpreter first (the virtualenv's scripts,
    such as `vllm` or `transformers`, even when its bin/ is not on PATH), then on PATH."""
    program = argv[0]
    if "/" in program:
        return argv
    beside = Path(sys.executable).parent / program
    if beside.is_file():
        return [str(beside), *argv[1:]]
    found = shutil.which(program)
    if found is None:
        raise ValueError(f"engine server program {program!r} not found (is it installed here?)")
    return [found, *argv[1:]]
