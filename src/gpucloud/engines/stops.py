"""`StopScanner`: cuts output exactly before the first stop string, wherever tokens split it.
Shared by every engine that generates text itself (simulated, transformers).

Text that could still become the beginning of a stop string is held back until the next text
decides it, so a stop string that spans several tokens (or several deltas) is never partly
emitted. An empty stop string is ignored, as by most servers (it would match before any output).
"""

from __future__ import annotations

from collections.abc import Sequence


class StopScanner:
    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = tuple(stop for stop in stops if stop)
        self._longest = max((len(stop) for stop in self._stops), default=0)
        self._held = ""

    def push(self, text: str) -> tuple[str, bool]:
        """Text that is safe to emit now, and whether a stop string matched.

        On a match the text is everything before the match; nothing after it is ever emitted.
        """
        if not self._stops:
            return text, False
        buffer = self._held + text
        found = [at for at in (buffer.find(stop) for stop in self._stops) if at >= 0]
        if found:
            self._held = ""
            return buffer[: min(found)], True
        keep = self._undecided_suffix(buffer)
        self._held = buffer[len(buffer) - keep :]
        return buffer[: len(buffer) - keep], False

    def release(self) -> str:
        """End of output: held text can no longer become a stop string."""
        held, self._held = self._held, ""
        return held

    def _undecided_suffix(self, buffer: str) -> int:
        """Length of the longest end of `buffer` that some stop string starts with."""
        for length in range(min(self._longest - 1, len(buffer)), 0, -1):
            tail = buffer[-length:]
            if any(stop.startswith(tail) for stop in self._stops):
                return length
        return 0
