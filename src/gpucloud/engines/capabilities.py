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
    tools: bool = False  # tools (called as the model sees fit), tool calls in history
    # tool_choice other than "auto" (none, required, a named function) and parallel_tool_calls:
    # a server can render tools and parse calls yet not constrain them (`transformers serve`).
    tool_choice: bool = False
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
        flags = {k: bool(v) for k, v in data.items() if k in known}
        # A worker from before `tool_choice` was its own flag announced it as part of `tools`.
        flags.setdefault("tool_choice", flags.get("tools", False))
        return cls(**flags)

    @classmethod
    def everything(cls) -> Capabilities:
        return cls(**{f.name: True for f in fields(cls)})


# An engine server (vLLM, SGLang, llama.cpp) gets every parameter passed through; one it cannot
# honour comes back as the server's own 4xx, relayed as a 400.
_BY_KIND: dict[str, Capabilities] = {
    "simulated": Capabilities.everything(),
    "openai": Capabilities.everything(),
    "transformers": Capabilities.everything(),
    "sentence-transformers": Capabilities(),
}

# Engine server presets that do less than the OpenAI API: `transformers serve` (5.x) accepts and
# silently ignores tool_choice, parallel_tool_calls, response_format, logprobs, top_logprobs and
# presence_penalty (its UNUSED_CHAT_COMPLETION_FIELDS), and maps frequency_penalty to a
# multiplicative repetition penalty: so those are refused here rather than dropped there. It does
# render tools into the chat template and parse the calls, and honours seed and logit_bias.
_BY_PRESET: dict[str, Capabilities] = {
    "transformers": Capabilities(tools=True, seed=True, logit_bias=True),
}

# The kinds whose options may say `lacks`: a simulated model standing for a limited one, and an
# engine server the operator knows to lack something (one attached by `url`, a custom command).
_MAY_LACK = frozenset({"simulated", "openai"})


def capabilities_of_kind(kind: str, options: Mapping[str, str] | None = None) -> Capabilities:
    """What an engine of `kind` with these options supports (none for an unknown kind).

    An engine server's `preset` option picks its server's capabilities (`_BY_PRESET`). The `lacks`
    option (comma-separated flag names) of the simulated engine and of an engine server withholds
    some: a model without them can be run and tried without a GPU, and an operator can declare
    what a server of their own does not do.
    """
    options = options or {}
    base = _BY_KIND.get(kind, Capabilities())
    if kind == "openai":
        base = _BY_PRESET.get(options.get("preset", ""), base)
    lacking = options.get("lacks") if kind in _MAY_LACK else None
    return without(base, lacking) if lacking else base


def without(base: Capabilities, names: str) -> Capabilities:
    """`base` less the comma-separated flags in `names`; ValueError names an unknown one."""
    known = {f.name for f in fields(Capabilities)}
    wanted = {name.strip() for name in names.split(",") if name.strip()}
    unknown = sorted(wanted - known)
    if unknown:
        raise ValueError(f"unknown capabilities {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return replace(base, **dict.fromkeys(wanted, False))
