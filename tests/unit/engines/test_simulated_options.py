"""The simulated engine's string options turned into constructor arguments
(engines/simulated_options.py)."""

from __future__ import annotations

import math

import pytest

from gpucloud.engines.capabilities import Capabilities
from gpucloud.engines.faults import Faults
from gpucloud.engines.simulated_options import check_non_negative, engine_kwargs


def test_each_option_is_parsed_to_its_type() -> None:
    kwargs = engine_kwargs(
        {
            "load_s": "0.5",
            "ttft_ms": "20",
            "tokens_per_s": "1e3",
            "max_model_tokens": "4096",
            "embedding_dim": "8",
            "fail_marker": "FAIL",
            "natural_end": " Yes ",
        }
    )
    assert kwargs == {
        "load_s": 0.5,
        "ttft_ms": 20.0,
        "tokens_per_s": 1000.0,
        "max_model_tokens": 4096,
        "embedding_dim": 8,
        "faults": Faults(fail_marker="FAIL"),
        "natural_end": True,
    }
    assert engine_kwargs({}) == {}
    assert engine_kwargs({"natural_end": "0"})["natural_end"] is False


def test_lacks_becomes_capabilities() -> None:
    caps = engine_kwargs({"lacks": "seed"})["capabilities"]
    assert isinstance(caps, Capabilities)
    assert not caps.seed
    assert caps.tools


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"speed": "1", "colour": "red"}, "unknown simulated engine option\\(s\\) colour, speed"),
        ({"ttft_ms": "fast"}, "ttft_ms='fast': expected a number"),
        ({"max_model_tokens": "1.5"}, "max_model_tokens='1.5': expected a whole number"),
        ({"natural_end": "maybe"}, "natural_end must be true or false"),
        ({"lacks": "wings"}, "unknown capabilities wings"),
    ],
)
def test_bad_options_are_named(options: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        engine_kwargs(options)


@pytest.mark.parametrize("value", [-0.1, math.inf, math.nan])
def test_check_non_negative_refuses(value: float) -> None:
    with pytest.raises(ValueError, match="ttft_ms must be a finite number >= 0"):
        check_non_negative("ttft_ms", value)


def test_check_non_negative_accepts_zero() -> None:
    check_non_negative("x", 0.0)
