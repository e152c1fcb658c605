"""A clock the limits' memory stores read instead of the system's, which a test moves by hand."""

from __future__ import annotations


class FakeClock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def at(self, offset: float) -> None:
        """Set the time to `offset` seconds after the start of the test."""
        self.now = 1_000.0 + offset
