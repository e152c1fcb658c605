"""`Faults`: the simulated engine's fault injection, for tests of the layers above it.

A prompt containing `crash_marker` kills the whole process (exit code 86) when generation starts;
one containing `fail_marker` raises a non-retryable `EngineError`; one containing `flaky_marker`
raises a retryable one the first time this engine sees that prompt (as an engine server that died
would) and succeeds after; one containing `bug_marker` raises a plain `RuntimeError`, as a bug in
an engine would (the worker must fail that job once, not retry a poison input).
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from gpucloud.engines.protocol import EngineError, GenerationRequest

log = logging.getLogger(__name__)

CRASH_EXIT_CODE = 86
MARKERS = ("crash_marker", "fail_marker", "flaky_marker", "bug_marker")


@dataclass(slots=True)
class Faults:
    crash_marker: str | None = None
    fail_marker: str | None = None
    flaky_marker: str | None = None
    bug_marker: str | None = None
    _flaked: set[str] = field(default_factory=set, init=False)  # prompts that failed once (flaky)

    def __post_init__(self) -> None:
        for name in MARKERS:
            if getattr(self, name) == "":
                raise ValueError(f"{name} must not be empty (it would match every prompt)")

    def inject(self, request: GenerationRequest) -> None:
        """Fail (or crash) as the request's prompt asks; nothing when no marker is set."""
        if not (self.crash_marker or self.fail_marker or self.flaky_marker or self.bug_marker):
            return
        text = "\n".join(itertools.chain(_strings(request.prompt), _strings(request.messages)))
        if self.flaky_marker is not None and self.flaky_marker in text and text not in self._flaked:
            self._flaked.add(text)
            raise EngineError("simulated transient failure", retryable=True)
        if self.crash_marker is not None and self.crash_marker in text:
            log.critical("simulated crash: the prompt holds the crash marker; exit %d", CRASH_EXIT_CODE)
            os._exit(CRASH_EXIT_CODE)
        if self.fail_marker is not None and self.fail_marker in text:
            raise EngineError("simulated failure", retryable=False)
        if self.bug_marker is not None and self.bug_marker in text:
            raise RuntimeError("simulated engine bug")


def _strings(value: object) -> Iterator[str]:
    """Every string inside a prompt or a message list, for marker matching."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)
