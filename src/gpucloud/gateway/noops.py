"""OpenAI parameters accepted only with the value that asks for nothing this platform lacks.

Clients and frameworks send some parameters with their neutral value out of habit:
`modalities: ["text"]`, `service_tier: "auto"`, `stream_options.include_obfuscation: false`,
`truncation: "disabled"`, `background: false`. Refusing those would break such clients for
nothing, so they are accepted; any other value asks for something that is not here (audio
output, a faster or cheaper tier, padded stream events, dropping context, a stored background
run) and is refused with a 400 naming the parameter (`code: "unsupported_value"`), never ignored.
"""

from __future__ import annotations

from collections.abc import Sequence

from gpucloud.errors import InvalidRequest

# "auto" lets the provider choose; "default" is the standard tier: the only one here.
_TIERS = ("auto", "default")
# The tier an answer reports it was served on, when the request named one.
SERVED_TIER = "default"


def check_modalities(modalities: Sequence[str] | None) -> None:
    if modalities is not None and list(modalities) != ["text"]:
        _refuse("modalities", 'only ["text"] output is served: audio output is not.')


def check_service_tier(tier: str | None) -> None:
    if tier is not None and tier not in _TIERS:
        _refuse("service_tier", f"{tier!r} is not offered: requests run on the default tier only.")


def check_obfuscation(include_obfuscation: bool | None, param: str) -> None:
    if include_obfuscation:
        _refuse(param, "stream events are not padded here; send false or leave it out.")


def check_truncation(truncation: str | None) -> None:
    if truncation not in (None, "disabled"):
        _refuse("truncation", "input is never truncated here: a request too long is refused instead.")


def check_background(background: bool | None) -> None:
    if background:
        _refuse("background", "responses are not stored, so they cannot run in the background.")


def _refuse(param: str, reason: str) -> None:
    raise InvalidRequest(f"Unsupported value for '{param}': {reason}", param=param, code="unsupported_value")
