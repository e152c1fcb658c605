"""The simulated engine's string options (`--engine-option KEY=VALUE`, a deployment's
`engine_options`) turned into its constructor's arguments; ValueError names a bad one."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from gpucloud.engines.capabilities import capabilities_of_kind
from gpucloud.engines.faults import MARKERS, Faults

OPTION_NAMES = (
    "load_s",
    "ttft_ms",
    "tokens_per_s",
    "max_model_tokens",
    "crash_marker",
    "fail_marker",
    "flaky_marker",
    "bug_marker",
    "natural_end",
    "embedding_dim",
    "lacks",
)


def engine_kwargs(options: Mapping[str, str]) -> dict[str, Any]:
    unknown = sorted(set(options) - set(OPTION_NAMES))
    if unknown:
        raise ValueError(
            f"unknown simulated engine option(s) {', '.join(unknown)}; "
            f"known options: {', '.join(OPTION_NAMES)}"
        )
    kwargs: dict[str, Any] = _typed_options(options)
    if "lacks" in options:  # a model without some of the optional parameters
        kwargs["capabilities"] = capabilities_of_kind("simulated", options)
    if "natural_end" in options:
        kwargs["natural_end"] = _parse_bool("natural_end", options["natural_end"])
    return kwargs


def _typed_options(options: Mapping[str, str]) -> dict[str, Any]:
    """The numeric and string options, each parsed as its constructor argument's type."""
    kwargs: dict[str, Any] = {}
    for key in ("load_s", "ttft_ms", "tokens_per_s"):
        if key in options:
            kwargs[key] = _parse_number(key, options[key])
    for key in ("max_model_tokens", "embedding_dim"):
        if key in options:
            kwargs[key] = _parse_int(key, options[key])
    markers = {key: options[key] for key in MARKERS if key in options}
    if markers:
        kwargs["faults"] = Faults(**markers)
    return kwargs


def check_non_negative(name: str, value: float) -> None:
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


def _parse_number(key: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"engine option {key}={raw!r}: expected a number") from None


def _parse_int(key: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"engine option {key}={raw!r}: expected a whole number") from None


def _parse_bool(key: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value not in ("true", "false", "1", "0", "yes", "no"):
        raise ValueError(f"{key} must be true or false, got {raw!r}")
    return value in ("true", "1", "yes")
