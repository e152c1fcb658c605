"""`Capabilities`: which optional OpenAI request parameters an engine honours.

The gateway refuses a parameter the serving engine lacks (400 naming it) instead of dropping it,
so each engine declares what it does. Capabilities are plain flags, cheap to announce with every
worker heartbeat and to derive from a deployment's engine kind, so that checking a request costs
the gateway no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any


@dataclass(frozen=True, slots=True)
class Capabilities:
    tools: bool = False  # tools, tool_choice, parallel_tool_calls, tool calls in history
    json_object: bool = False  # response_format {"type": "json_object"}
    json_schema: bool = False  # response_format {"type": "json_schema"} (strict included)
    logprobs: bool = False  # logprobs / top_logprobs
    penalties: bool = False  # presence_penalty, frequency_penalty
    logit_bias: bool = False
    seed: bool = False

    def to_dict(self) -> dict[str, bool]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Capabilities:
        known = {f.name for f in fields(cls)}
        return cls(**{k: bool(v) for k, v in data.items() if k in known})

    @classmethod
    def everything(cls) -> Capabilities:
        return cls(**{f.name: True for f in fields(cls)})


# An engine server (vLLM, SGLang, llama.cpp, transformers serve) gets every parameter passed
# through; one it cannot honour comes back as the server's own 4xx, relayed as a 400.
_BY_KIND: dict[str, Capabilities] = {
    "simulated": Capabilities.everything(),
    "openai": Capabilities.everything(),
    "transformers": Capabilities(
        tools=True,
        seed=True,
        logprobs=True,
        penalties=True,
        logit_bias=True,
        json_object=True,
        json_schema=True,
    ),
    "sentence-transformers": Capabilities(),
}


def capabilities_of_kind(kind: str, options: Mapping[str, str] | None = None) -> Capabilities:
    """What an engine of `kind` with these options supports (none for an unknown kind).

    The simulated engine's `lacks` option (comma-separated flag names) withholds some, so that a
    model without them can be run and tried without a GPU.
    """
    base = _BY_KIND.get(kind, Capabilities())
    lacking = (options or {}).get("lacks") if kind == "simulated" else None
    return without(base, lacking) if lacking else base


def without(base: Capabilities, names: str) -> Capabilities:
    """`base` less the comma-separated flags in `names`; ValueError names an unknown one."""
    known = {f.name for f in fields(Capabilities)}
    wanted = {name.strip() for name in names.split(",") if name.strip()}
    unknown = sorted(wanted - known)
    if unknown:
        raise ValueError(f"unknown capabilities {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return replace(base, **dict.fromkeys(wanted, False))
