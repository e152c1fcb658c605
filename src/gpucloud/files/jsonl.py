"""The Batch API's input format, one request per line (OpenAI's):
`{"custom_id": "...", "method": "POST", "url": "/v1/chat/completions", "body": {...}}`.

`LineChecker` takes an upload as it streams in and refuses it at the first bad line (a 400 that
names the line and says what is wrong), so a mistake is found at upload, not hours into a batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from gpucloud.errors import InvalidRequest

BATCH_ENDPOINTS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses")
# The job's idempotency key is "batch:{batch_id}:{custom_id}" and holds 255 characters.
MAX_CUSTOM_ID = 200


@dataclass(frozen=True, slots=True)
class BatchRequestLine:
    custom_id: str
    url: str
    body: dict[str, Any]


def parse_batch_line(raw: bytes, number: int) -> BatchRequestLine:
    """One line of a batch input file, or InvalidRequest naming line `number` (1-based)."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise _bad(number, "it is not valid JSON") from None
    if not isinstance(value, dict):
        raise _bad(number, "it is not a JSON object")
    custom_id = value.get("custom_id")
    if not isinstance(custom_id, str) or not 1 <= len(custom_id) <= MAX_CUSTOM_ID:
        raise _bad(number, f"custom_id must be a string of 1 to {MAX_CUSTOM_ID} characters")
    if value.get("method") != "POST":
        raise _bad(number, "method must be 'POST'")
    url = value.get("url")
    if url not in BATCH_ENDPOINTS:
        raise _bad(number, f"url must be one of {', '.join(BATCH_ENDPOINTS)}")
    body = value.get("body")
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        raise _bad(number, "body must be a JSON object with a string 'model'")
    if body.get("stream"):
        raise _bad(number, "a batch request cannot stream (body.stream must be false)")
    return BatchRequestLine(custom_id, str(url), body)


def _bad(number: int, why: str) -> InvalidRequest:
    return InvalidRequest(
        f"Line {number} of the batch input file is invalid: {why}.", param="file", code="invalid_batch_line"
    )


class LineChecker:
    """Checks a batch input file chunk by chunk: every line well formed, custom_ids unique."""

    def __init__(self, max_lines: int, *, keep: bool = False) -> None:
        self._max_lines = max_lines
        self.kept: list[BatchRequestLine] | None = [] if keep else None  # the requests, when asked
        self._rest = b""
        self._seen: set[str] = set()
        self.number = 0  # lines read so far, blank ones included (they are skipped)
        self.requests = 0

    def feed(self, chunk: bytes) -> None:
        *complete, self._rest = (self._rest + chunk).split(b"\n")
        for raw in complete:
            self._line(raw)

    def finish(self) -> int:
        """Check the last line; the number of requests. An empty file is refused."""
        if self._rest:
            self._line(self._rest)
            self._rest = b""
        if self.requests == 0:
            raise InvalidRequest("The batch input file holds no requests.", param="file", code="empty_file")
        return self.requests

    def _line(self, raw: bytes) -> None:
        self.number += 1
        if not raw.strip():
            return
        line = parse_batch_line(raw, self.number)
        if line.custom_id in self._seen:
            raise _bad(self.number, f"custom_id {line.custom_id!r} is used by an earlier line")
        self._seen.add(line.custom_id)
        self.requests += 1
        if self.kept is not None:
            self.kept.append(line)
        if self.requests > self._max_lines:
            raise InvalidRequest(
                f"A batch input file may hold at most {self._max_lines} requests.",
                param="file",
                code="too_many_lines",
            )
