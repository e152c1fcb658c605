"""`Faults`: each marker fails the way it stands for, a flaky prompt only once, and an empty
marker (which would match every prompt) is refused."""

from __future__ import annotations

import pytest

from gpucloud.engines.faults import Faults
from gpucloud.engines.protocol import EngineError, GenerationRequest


def _request(prompt: str) -> GenerationRequest:
    return GenerationRequest(kind="completion", model="m", prompt=prompt, max_tokens=2)


def test_each_marker_fails_its_way() -> None:
    faults = Faults(fail_marker="FAIL", flaky_marker="FLAKY", bug_marker="BUG")
    with pytest.raises(EngineError) as failed:
        faults.inject(_request("please FAIL"))
    assert failed.value.retryable is False
    with pytest.raises(EngineError) as flaky:
        faults.inject(_request("a FLAKY one"))
    assert flaky.value.retryable is True
    faults.inject(_request("a FLAKY one"))  # the second time it goes through
    with pytest.raises(RuntimeError, match="simulated engine bug"):
        faults.inject(_request("a BUG"))
    faults.inject(_request("all fine"))
    Faults().inject(_request("FAIL FLAKY BUG"))  # no marker set: nothing happens


def test_markers_inside_messages_count_too() -> None:
    request = GenerationRequest(
        kind="chat", model="m", messages=[{"role": "user", "content": [{"type": "text", "text": "x FAIL"}]}]
    )
    with pytest.raises(EngineError):
        Faults(fail_marker="FAIL").inject(request)


def test_an_empty_marker_is_refused() -> None:
    with pytest.raises(ValueError, match="bug_marker must not be empty"):
        Faults(bug_marker="")
